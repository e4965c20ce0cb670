import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn, tokenRequest, type TokenSet } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { spawnRegistry, type Spawned } from '../helpers/spawn.ts';

// `kill -9` of the registry during a stream of writes, on both stores: the
// real `keygate-registry` process, driven over HTTP by a few concurrent
// clients (dynamic registrations, sign-ins redeeming a code, refresh-token
// rotations, identity saves). Every write the registry acknowledged (a 2xx
// received) is recorded; the process is killed with SIGKILL after a random
// number of them, while others are in flight, then started again on the same
// data: every acknowledged write is there, read back as a client would, and
// nothing consumed before the kill (a code, a rotated refresh token) can be
// consumed again. PostgreSQL runs with fsync on (durable: true).

const RUNS = 3;
const WORKERS = 4;
const env = { ALICE_PASSWORD: ALICE.password, VAULT_KEY: randomBytes(32).toString('base64') };

let upstream: DemoUpstream;
let pg: TestPostgres;
const dirs: string[] = [];

before(async () => {
  upstream = await startDemoUpstream({ apiKey: 'unused' });
  pg = await startPostgres({ durable: true });
});
after(async () => {
  await upstream?.close();
  await pg?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Deployment {
  dir: string;
  base: string;
  start(): Promise<Spawned>;
}

/** A registry on a fixed port and data dir (so its public URL, and the audience of its tokens, survive a restart). */
async function deployment(storage: Record<string, unknown> | undefined, extraEnv: NodeJS.ProcessEnv = {}): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-crash-'));
  dirs.push(dir);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const config = {
    server: { public_url: base },
    ...(storage && { storage }),
    vault: { key_env: 'VAULT_KEY' },
    oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
    upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
    gateways: [{ id: 'team', servers: [{ upstream: 'demo', identity: 'per_user' }] }],
  };
  writeFileSync(join(dir, 'keygate.yaml'), JSON.stringify(config));
  return {
    dir,
    base,
    async start() {
      const spawned = spawnRegistry(['--config', join(dir, 'keygate.yaml'), '--port', String(port), '--data-dir', join(dir, 'data')], { ...env, ...extraEnv });
      const url = await spawned.url;
      if (!url) throw new Error(`the registry did not start:\n${spawned.stderr()}\n${spawned.stdout()}`);
      return spawned;
    },
  };
}

interface Family {
  clientId: string;
  /** The newest refresh token the registry acknowledged. */
  refresh: string;
  access: string;
  /** A refresh of it was in flight at the kill: its outcome is unknown. */
  busy: boolean;
}

interface Acked {
  clients: { id: string; secret: string }[];
  codes: { clientId: string; code: string; verifier: string }[];
  families: Family[];
  /** Refresh tokens whose rotation was acknowledged: each was consumed. */
  rotated: { clientId: string; refresh: string; family: Family }[];
  identities: string[];
  writes: number;
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` });

/** One write of a random kind; records it once the registry acknowledged it. Errors (the kill) end the worker. */
async function oneWrite(base: string, acked: Acked, alice: string): Promise<void> {
  const kind = randomInt(4);
  if (kind === 0) {
    const res = await fetch(`${base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'crash test', redirect_uris: ['http://127.0.0.1:43210/callback'], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const body = (await res.json()) as { client_id: string; client_secret: string };
    acked.clients.push({ id: body.client_id, secret: body.client_secret });
  } else if (kind === 1) {
    const s = await signIn(base, ALICE);
    acked.codes.push({ clientId: s.clientId, code: s.code, verifier: s.verifier });
    acked.families.push({ clientId: s.clientId, refresh: s.tokens.refresh_token, access: s.tokens.access_token, busy: false });
  } else if (kind === 2) {
    const family = acked.families.find((f) => !f.busy);
    if (!family) return;
    family.busy = true;
    const res = await tokenRequest(base, { grant_type: 'refresh_token', client_id: family.clientId, refresh_token: family.refresh });
    assert.equal(res.status, 200, await res.clone().text());
    const next = (await res.json()) as TokenSet;
    acked.rotated.push({ clientId: family.clientId, refresh: family.refresh, family });
    family.refresh = next.refresh_token;
    family.access = next.access_token;
    family.busy = false;
  } else {
    const res = await fetch(`${base}/api/v1/me/identities`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${alice}` },
      body: JSON.stringify({ upstream: 'demo', token: `tok-${randomBytes(8).toString('hex')}`, label: `crash ${acked.identities.length}` }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    acked.identities.push(((await res.json()) as { id: string }).id);
  }
  acked.writes++;
}

async function expectInvalidGrant(res: Response, what: string): Promise<void> {
  assert.equal(res.status, 400, `${what}: ${res.status}`);
  assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant', what);
}

/** Start, write, kill -9 after a random number of acknowledged writes, start again, check. Returns figures for the note. */
async function crashRun(d: Deployment, check: () => void): Promise<{ kinds: string; killedAfter: number; inFlight: number; recoveryMs: number }> {
  let registry = await d.start();
  const alice = (await signIn(d.base, ALICE)).tokens.access_token;
  const acked: Acked = { clients: [], codes: [], families: [], rotated: [], identities: [], writes: 0 };
  const killAt = randomInt(20, 60);
  let inFlight = 0;
  let killed = false;
  const workers = Array.from({ length: WORKERS }, async () => {
    while (!killed) {
      inFlight++;
      try {
        await oneWrite(d.base, acked, alice);
      } catch (err) {
        if (!killed) throw err;
      } finally {
        inFlight--;
      }
    }
  });
  const inFlightAtKill = await new Promise<number>((resolve) => {
    const poll = setInterval(() => {
      if (acked.writes >= killAt) {
        clearInterval(poll);
        killed = true;
        const pending = inFlight;
        registry.child.kill('SIGKILL');
        resolve(pending);
      }
    }, 1);
  });
  const killedAfter = acked.writes;
  await registry.exit;
  await Promise.all(workers);
  check();

  const started = performance.now();
  registry = await d.start();
  const recoveryMs = Math.round(performance.now() - started);
  try {
    // Every acknowledged registration: the client authenticates (a bad grant, not a bad client).
    for (const c of acked.clients) {
      const res = await tokenRequest(d.base, { grant_type: 'refresh_token', refresh_token: 'not-a-token' }, basic(c.id, c.secret));
      await expectInvalidGrant(res, `client ${c.id} authenticates after the crash`);
    }
    // Every acknowledged identity is listed.
    const listed = await fetch(`${d.base}/api/v1/me/identities`, { headers: { authorization: `Bearer ${alice}` } });
    assert.equal(listed.status, 200, 'the access token issued before the crash still works');
    const ids = new Set(((await listed.json()) as { identities: { id: string }[] }).identities.map((i) => i.id));
    for (const id of acked.identities) assert.ok(ids.has(id), `identity ${id} saved before the crash is listed`);
    // Every acknowledged grant: the newest refresh token works (unless its rotation was cut by the kill).
    const settled = acked.families.filter((f) => !f.busy);
    for (const f of settled) {
      const res = await tokenRequest(d.base, { grant_type: 'refresh_token', client_id: f.clientId, refresh_token: f.refresh });
      assert.equal(res.status, 200, `the refresh token acknowledged before the crash works: ${await res.clone().text()}`);
      const next = (await res.json()) as TokenSet;
      f.refresh = next.refresh_token;
    }
    // Nothing consumed before the kill is consumed again.
    for (const c of acked.codes) {
      await expectInvalidGrant(
        await tokenRequest(d.base, { grant_type: 'authorization_code', client_id: c.clientId, code: c.code, redirect_uri: 'http://127.0.0.1:43210/callback', code_verifier: c.verifier }),
        'an authorization code redeemed before the crash',
      );
    }
    for (const r of acked.rotated) {
      await expectInvalidGrant(await tokenRequest(d.base, { grant_type: 'refresh_token', client_id: r.clientId, refresh_token: r.refresh }), 'a refresh token rotated before the crash');
      // RFC 9700 §4.14.2: the reuse revokes the family, its newest token too.
      if (!r.family.busy) await expectInvalidGrant(await tokenRequest(d.base, { grant_type: 'refresh_token', client_id: r.clientId, refresh_token: r.family.refresh }), 'the newest token of a family whose old token was reused');
    }
    assert.ok(acked.clients.length + acked.codes.length + acked.identities.length > 0);
  } finally {
    await registry.stop();
  }
  const kinds = `${acked.clients.length} registrations, ${acked.codes.length} sign-ins, ${acked.rotated.length} refreshes, ${acked.identities.length} identity saves`;
  return { kinds, killedAfter, inFlight: inFlightAtKill, recoveryMs };
}

function report(store: string, figures: Awaited<ReturnType<typeof crashRun>>[]): void {
  for (const [i, f] of figures.entries()) {
    console.log(`# ${store} run ${i + 1}: killed after ${f.killedAfter} acknowledged writes (${f.kinds}) with ${f.inFlight} in flight; restarted and listening in ${f.recoveryMs} ms`);
  }
}

describe('kill -9 during a stream of writes', () => {
  test('lowdb (the embedded default): every acknowledged write survives kill -9, the file is never torn, and no code or rotated refresh token is consumed twice', async () => {
    const d = await deployment(undefined);
    const figures = [];
    for (let run = 0; run < RUNS; run++) {
      figures.push(
        await crashRun(d, () => {
          const text = readFileSync(join(d.dir, 'data', 'store.json'), 'utf8');
          assert.doesNotThrow(() => JSON.parse(text), 'the store file parses after kill -9');
        }),
      );
    }
    report('lowdb', figures);
  });

  test('PostgreSQL (fsync on): every acknowledged write survives kill -9 of the registry, and no code or rotated refresh token is consumed twice', async () => {
    const d = await deployment({ type: 'postgres' }, { KEYGATE_DATABASE_URL: await pg.createDatabase() });
    const figures = [];
    for (let run = 0; run < RUNS; run++) figures.push(await crashRun(d, () => undefined));
    report('postgres', figures);
  });
});
