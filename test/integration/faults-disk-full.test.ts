import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { callMethod } from '../helpers/control.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn, tokenRequest, type TokenSet } from '../helpers/oauth.ts';
import { spawnRegistry, type Spawned } from '../helpers/spawn.ts';

// A full disk under the embedded store and the audit log: the registry's
// data dir (lowdb) and its audit.dir on a small tmpfs, filled to the last
// byte by a filler file while the real `keygate-registry` process runs.
// Writes answer 503 in each endpoint's own error form (and say nothing of
// paths or secrets), the store file keeps its old state (the registry starts
// on it), the audit log says in the registry's log that it is failing and
// keeps its entries, and once the filler is deleted both take writes again
// without a restart; no audit line is torn.

const demoKey = `demo-${randomBytes(12).toString('hex')}`;
const vaultKey = randomBytes(32).toString('base64');
const env = { ALICE_PASSWORD: ALICE.password, VAULT_KEY: vaultKey, DEMO_KEY: demoKey };

let root: string;
let mnt: string;
let mounted = false;
let upstream: DemoUpstream;
let registry: Spawned | undefined;
let base: string;
let port: number;
let configFile: string;
const filler = () => join(mnt, 'filler');
const storeFile = () => join(mnt, 'data', 'store.json');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: p } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return p;
}

async function start(): Promise<Spawned> {
  const spawned = spawnRegistry(['--config', configFile, '--port', String(port), '--data-dir', join(mnt, 'data')], env);
  if (!(await spawned.url)) throw new Error(`the registry did not start:\n${spawned.stderr()}\n${spawned.stdout()}`);
  return spawned;
}

/** Write zeros until the file system says ENOSPC: not one byte is left. */
function fill(): void {
  const fd = openSync(filler(), 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        size = Math.floor(size / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
}

const logs = () => (registry ? registry.stdout() + registry.stderr() : '');

function auditLines(): string[] {
  const dir = join(mnt, 'audit');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // not written yet
  }
  return names
    .filter((n) => n.endsWith('.jsonl'))
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n'))
    .filter((l) => l !== '');
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}\n${logs().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const register = () =>
  fetch(`${base}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'disk full', redirect_uris: ['http://127.0.0.1:43210/callback'], token_endpoint_auth_method: 'none' }),
  });
const saveIdentity = (token: string, label: string) =>
  fetch(`${base}/api/v1/me/identities`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ upstream: 'demo', token: `secret-${randomBytes(8).toString('hex')}`, label }),
  });
const listIdentities = async (token: string) => {
  const res = await fetch(`${base}/api/v1/me/identities`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { identities: { id: string; label: string }[] }).identities;
};

/** A 503 in the OAuth/API error form that names no path and no secret. */
async function expectUnavailable(res: Response, what: string, secrets: string[] = []): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 503, `${what}: ${res.status} ${text}`);
  const body = JSON.parse(text) as { error: string; error_description: string };
  assert.equal(body.error, 'temporarily_unavailable', what);
  assert.match(body.error_description, /cannot save changes/, what);
  assert.ok(res.headers.get('retry-after'), `${what}: Retry-After`);
  for (const leak of [mnt, 'store.json', 'ENOSPC', vaultKey, demoKey, ...secrets]) assert.ok(!text.includes(leak), `${what}: the answer does not include ${leak}`);
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'keygate-diskfull-'));
  mnt = join(root, 'mnt');
  mkdirSync(mnt);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mnt], { encoding: 'utf8' });
  if (mount.status !== 0) {
    throw new Error(`this test needs to mount a small tmpfs (it runs as root, here and in CI): mount -t tmpfs failed (${mount.error?.message ?? `exit ${mount.status}`}): ${mount.stderr}`);
  }
  mounted = true;
  upstream = await startDemoUpstream({ apiKey: demoKey });
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  configFile = join(root, 'keygate.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      server: { public_url: base },
      audit: { dir: join(mnt, 'audit') },
      vault: { key_env: 'VAULT_KEY' },
      oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
      upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
      identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
      gateways: [{ id: 'team', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
    }),
  );
  registry = await start();
});
after(async () => {
  await registry?.stop();
  await upstream?.close();
  if (mounted) {
    const umount = spawnSync('umount', [mnt], { encoding: 'utf8' });
    if (umount.status !== 0) console.error(`umount ${mnt} failed: ${umount.stderr}`);
  }
  rmSync(root, { recursive: true, force: true });
});

describe('a full disk under the lowdb store and the audit log', () => {
  test('writes are refused with 503 in the endpoint\'s own error form, the file keeps its old state, the audit keeps its entries and says it is failing, and both resume when space returns, without a restart and with no torn line', async () => {
    // Before: a client, a grant, an identity, audited MCP calls.
    const { clientId, tokens } = await signIn(base, ALICE);
    const kept = await saveIdentity(tokens.access_token, 'before');
    assert.equal(kept.status, 201);
    const keptId = ((await kept.json()) as { id: string }).id;
    for (let i = 0; i < 5; i++) assert.equal((await callMethod(`${base}/mcp/team/demo`, tokens.access_token, 'tools/list')).status, 200);
    await until('the first audit lines are written', () => auditLines().length >= 5);
    const auditBefore = auditLines().length;
    const before = readFileSync(storeFile(), 'utf8');

    fill();

    // The store: each write is refused, in its endpoint's own form, and changes nothing.
    await expectUnavailable(await register(), 'a registration');
    await expectUnavailable(await saveIdentity(tokens.access_token, 'refused'), 'an identity save', [tokens.access_token]);
    await expectUnavailable(await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token }), 'a refresh', [tokens.refresh_token]);
    await assert.rejects(signIn(base, ALICE, { clientId }), /HTTP 503|answered 503/, 'a sign-in cannot complete: 503');
    assert.equal(readFileSync(storeFile(), 'utf8'), before, 'the store file holds its old state, byte for byte');
    assert.deepEqual((await listIdentities(tokens.access_token)).map((i) => i.label), ['before'], 'the refused identity is not there, in memory either');
    assert.ok(!readdirSync(join(mnt, 'data')).some((n) => n.endsWith('.tmp')), 'no half-written temporary file is left taking space');

    // The audit: calls are still served; their entries are kept and the log says the audit is failing.
    const calls = 60;
    const served = await Promise.all(Array.from({ length: calls }, () => callMethod(`${base}/mcp/team/demo`, tokens.access_token, 'tools/list')));
    assert.deepEqual(new Set(served.map((c) => c.status)), new Set([200]), 'MCP calls do not wait on the audit disk');
    await until('the registry log says the audit log is failing', () => /audit log .*could not append/.test(logs()));
    const whileFull = auditLines().length - auditBefore;
    assert.ok(whileFull < calls, 'not every entry reached the full disk');

    // Space returns: no restart.
    unlinkSync(filler());
    const freed = performance.now();
    await until('the audit catches up with every entry it kept', () => auditLines().length >= auditBefore + calls);
    const caughtUp = Math.round(performance.now() - freed);
    const lines = auditLines();
    assert.equal(lines.length, auditBefore + calls, 'each entry once');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a torn audit line: ${line}`);

    const again = await register();
    assert.equal(again.status, 201, 'the store takes writes again');
    console.log(`# ${calls} MCP calls served while the disk was full (${whileFull} of their audit entries fitted); all on disk ${caughtUp} ms after space returned`);
    const refreshed = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
    assert.equal(refreshed.status, 200, 'the refresh refused on the full disk was not counted as a use: it works now');
    const next = (await refreshed.json()) as TokenSet;
    const saved = await saveIdentity(next.access_token, 'after');
    assert.equal(saved.status, 201);

    // The registry starts again on what is on disk, every acknowledged write in it.
    await registry!.stop();
    registry = await start();
    assert.deepEqual((await listIdentities(next.access_token)).map((i) => i.label).sort(), ['after', 'before']);
    assert.ok((await listIdentities(next.access_token)).some((i) => i.id === keptId));
    assert.equal((await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: next.refresh_token })).status, 200);
    assert.ok(!logs().includes(vaultKey) && !logs().includes(demoKey) && !logs().includes(tokens.refresh_token), 'no secret in the registry log');
  });
});
