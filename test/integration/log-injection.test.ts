import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { logLine } from '../../server/log.ts';
import { spawnRegistry, type Spawned } from '../helpers/spawn.ts';

// Log injection (issue 9, item 8): values a caller chooses reach the
// registry's log (a client's name at registration, a metadata-document URL,
// a tool name, an error message). A newline among them must not forge a line: the
// registry's own stderr, read as an operator's log shipper reads it, has one
// record per line.

let dir: string;
let registry: Spawned;
let base: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keygate-log-'));
  registry = spawnRegistry(['--port', '0', '--data-dir', dir]);
  const url = await registry.url;
  assert.ok(url, registry.stderr());
  base = url;
});
after(async () => {
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const FORGED = 'WARNING: keygate-registry: vault key rotated by admin';

describe('log injection', () => {
  test('a client name with a newline stays inside its own log line', async () => {
    const res = await fetch(`${base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: `innocent\n${FORGED}\r\n\u001b[31mred\u2028`, redirect_uris: ['http://127.0.0.1:5555/cb'] }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const { client_id } = (await res.json()) as { client_id: string };
    let line: string | undefined;
    for (let i = 0; i < 50 && !line; i++) {
      line = registry.stderr().split('\n').find((l) => l.includes(client_id));
      if (!line) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(line, registry.stderr());
    assert.ok(!registry.stderr().split('\n').some((l) => l.startsWith(FORGED)), 'no forged line');
    assert.match(line, /innocent\\nWARNING: keygate-registry: vault key rotated by admin\\r\\n\\u001b\[31mred\\u2028/);
  });

  test('logLine keeps tabs and printable text, and escapes every other control character', () => {
    assert.equal(logLine('a %s b', ['x\ty']), 'a x\ty b');
    assert.equal(logLine('%s', ['1\n2\r3\u00074\u007f5']), '1\\n2\\r3\\u00074\\u007f5');
    // An error's message and stack: one line, its newlines escaped.
    const logged = logLine('%s', [new Error('boom\nforged')]);
    assert.ok(logged.startsWith('Error: boom\\nforged') && !/[\n\r]/.test(logged), logged);
  });
});
