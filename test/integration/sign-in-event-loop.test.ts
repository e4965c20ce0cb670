import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { ask } from '../../bench/process.ts';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn } from '../helpers/oauth.ts';
import { spawnRegistry, type Spawned } from '../helpers/spawn.ts';

// bcrypt must not block the registry's event loop: a sign-in's password check
// (deliberately slow) runs beside the MCP traffic, not in front of it.
//
// The registry process runs through bench/heap-probe.mjs, which measures its
// event loop's delay (perf_hooks.monitorEventLoopDelay) while 6 sign-ins check
// a password hashed at cost 13. The yardstick is one such check, timed in
// this process during the same test: a registry that runs the checks on its
// event loop (bcryptjs's async API runs 100 ms slices, one per pending check
// per turn) stalls it for a whole check or longer; one that runs them on worker
// threads stalls it for a small fraction of one.

const COST = 13;
const SIGN_INS = 6;
let upstream: DemoUpstream;
let registry: Spawned;
let url: string;
let dir: string;
let hash: string;
let oneCheckMs: number;

before(async () => {
  hash = bcrypt.hashSync(ALICE.password, COST);
  const apiKey = `k-${randomBytes(12).toString('hex')}`;
  upstream = await startDemoUpstream({ apiKey });
  dir = mkdtempSync(join(tmpdir(), 'keygate-bcrypt-'));
  const config = {
    oauth_server: { builtin: { users: [{ username: ALICE.username, password_hash: hash, scopes: ['mcp:read', 'mcp:write'] }] } },
    upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
    identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
    gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
  };
  writeFileSync(join(dir, 'keygate.yaml'), JSON.stringify(config));
  registry = spawnRegistry(['--config', join(dir, 'keygate.yaml'), '--port', '0', '--data-dir', join(dir, 'data')], { DEMO_KEY: apiKey }, undefined, { probe: true });
  const address = await registry.url;
  if (!address) throw new Error(`the registry did not start:\n${registry.stderr()}`);
  url = address;
});
after(async () => {
  await registry?.stop();
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function toolsCall(token: string): Promise<Response> {
  return fetch(`${url}/mcp/team/demo`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'add' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'add', arguments: { a: 2, b: 3 }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' } } },
    }),
  });
}

describe('sign-in and the event loop', () => {
  test('concurrent sign-ins checking a costly bcrypt hash do not stall the event loop: MCP calls are answered meanwhile', async () => {
    const { tokens } = await signIn(url, ALICE);
    // The yardstick: one check of this hash, on this machine, now.
    const start = performance.now();
    assert.equal(bcrypt.compareSync(ALICE.password, hash), true);
    oneCheckMs = performance.now() - start;

    await ask(registry.child, 'loop-start');
    let signingIn = true;
    const signIns = Promise.all(Array.from({ length: SIGN_INS }, () => signIn(url, ALICE))).finally(() => (signingIn = false));
    const answered: number[] = [];
    while (signingIn) {
      const res = await toolsCall(tokens.access_token);
      answered.push(res.status);
      await res.text();
    }
    const results = await signIns;
    const delay = await ask<{ maxMs: number; p99Ms: number }>(registry.child, 'loop-stop');
    console.log(`# one bcrypt check at cost ${COST}: ${oneCheckMs.toFixed(0)} ms; during ${SIGN_INS} sign-ins the registry's event loop was delayed ${delay.maxMs.toFixed(1)} ms at most (p99 ${delay.p99Ms.toFixed(1)} ms); ${answered.length} MCP calls answered meanwhile`);

    assert.equal(results.length, SIGN_INS);
    for (const r of results) assert.ok(r.tokens.access_token);
    assert.ok(answered.length > 0);
    assert.deepEqual(new Set(answered), new Set([200]));
    assert.ok(delay.maxMs < oneCheckMs / 2, `the event loop stalled ${delay.maxMs.toFixed(0)} ms, against ${oneCheckMs.toFixed(0)} ms for one bcrypt check`);
  });

  test('the password checks run on a thread that yields to the registry\'s own: a higher nice value than its event loop\'s', async () => {
    // Linux keeps a nice value per thread (/proc/PID/task/TID/stat, field 19). The checks' thread exists: the sign-ins above started it.
    const pid = registry.child.pid!;
    const nice = (tid: string) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const threads = readdirSync(`/proc/${pid}/task`).map((tid) => ({ tid, nice: nice(tid) }));
    const main = threads.find((t) => t.tid === String(pid))!;
    assert.equal(main.nice, getPriority(), 'the event loop keeps the priority the registry was started with');
    assert.ok(threads.some((t) => t.nice > main.nice), `no thread yields to the event loop: ${JSON.stringify(threads)}`);
  });

  test('a wrong password is still refused when checked off the event loop', async () => {
    await assert.rejects(signIn(url, { username: ALICE.username, password: `${ALICE.password}!` }), /sign-in did not redirect/);
  });
});
