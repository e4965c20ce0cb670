import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg_ from 'pg';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn, tokenRequest } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRegistry } from '../helpers/registry.ts';
import { spawnRegistry } from '../helpers/spawn.ts';

// `keygate-registry migrate` (schema) and `migrate --from lowdb` (a lowdb
// store copied into PostgreSQL), run as a user runs them; then a registry on
// PostgreSQL goes on where the lowdb one stopped.

let pg: TestPostgres;
let upstream: DemoUpstream;
const apiKey = `k-${randomBytes(12).toString('hex')}`;
const vaultKey = randomBytes(32).toString('base64');
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'keygate-migrate-'));
  dirs.push(d);
  return d;
};
before(async () => {
  pg = await startPostgres();
  upstream = await startDemoUpstream({ apiKey });
});
after(async () => {
  await upstream?.close();
  await pg?.stop();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const config = (storage: Record<string, unknown>) => ({
  storage,
  vault: { key_env: 'VAULT_KEY' },
  oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
  upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
  identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
  gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
});
const env = { ALICE_PASSWORD: ALICE.password, DEMO_KEY: apiKey, VAULT_KEY: vaultKey };

function writeConfig(dir: string, storage: Record<string, unknown>): string {
  const file = join(dir, 'keygate.yaml');
  writeFileSync(file, JSON.stringify(config(storage))); // JSON is YAML
  return file;
}

async function callEcho(base: string, token: string): Promise<number> {
  const res = await fetch(`${base}/mcp/team/demo`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('keygate-registry on PostgreSQL', () => {
  test('without vault.key_env it does not start, and says why', { timeout: 60_000 }, async () => {
    const file = join(tempDir(), 'keygate.yaml');
    writeFileSync(file, JSON.stringify({ ...config({ type: 'postgres' }), vault: {} }));
    const run = spawnRegistry(['--config', file, '--port', '0'], { ...env, KEYGATE_DATABASE_URL: pg.url });
    assert.equal(await run.exit, 2);
    assert.match(run.stderr(), /vault\.key_env: required with storage\.type: postgres/);
    assert.ok(!run.stderr().includes(pg.url));
  });

  test('a registry on PostgreSQL starts (migrations applied), answers /healthz, and signs in and calls through', { timeout: 60_000 }, async () => {
    const dbEnv = { ...env, KEYGATE_DATABASE_URL: await pg.createDatabase() };
    const r = await startRegistry(config({ type: 'postgres' }), dbEnv);
    try {
      assert.deepEqual(await (await fetch(`${r.url}/healthz`)).json(), { status: 'ok' });
      const { tokens } = await signIn(r.url, ALICE, { resource: `${r.url}/mcp/team` });
      assert.equal(await callEcho(r.url, tokens.access_token), 200);
    } finally {
      await r.close();
    }
  });
});

describe('keygate-registry migrate', () => {
  test('migrate applies the schema once, and says so', { timeout: 60_000 }, async () => {
    const file = writeConfig(tempDir(), { type: 'postgres' });
    const dbEnv = { ...env, KEYGATE_DATABASE_URL: await pg.createDatabase() };
    const first = spawnRegistry(['migrate', '--config', file], dbEnv);
    assert.equal(await first.exit, 0, first.stderr());
    assert.match(first.stdout(), /^applied: 1 records, 2 audit, 3 audit server and tool, index keygate_records_by_\w+/);
    const second = spawnRegistry(['migrate', '--config', file], dbEnv);
    assert.equal(await second.exit, 0, second.stderr());
    assert.equal(second.stdout(), 'the schema is up to date\n');
  });

  test('migrate --from lowdb copies every record with its expiry, says what it copied, and the registry goes on on PostgreSQL', { timeout: 120_000 }, async () => {
    const dataDir = tempDir();
    // A registry on lowdb: alice signs in (a client, a grant, a refresh token, her account) and calls through.
    const lowdb = await startRegistry(config({ type: 'lowdb' }), env, { dataDir });
    const { clientId, tokens } = await signIn(lowdb.url, ALICE, { resource: `${lowdb.url}/mcp/team` });
    assert.equal(await callEcho(lowdb.url, tokens.access_token), 200);
    const url = lowdb.url;
    await lowdb.stop();
    const file = JSON.parse(readFileSync(join(dataDir, 'store.json'), 'utf8')) as { collections: Record<string, Record<string, { expires_at?: number }>> };
    const inFile = Object.fromEntries(Object.entries(file.collections).filter(([, r]) => Object.keys(r).length).map(([kind, r]) => [kind, Object.keys(r).length]));

    const configFile = writeConfig(tempDir(), { type: 'postgres' });
    const dbEnv = { ...env, KEYGATE_DATABASE_URL: await pg.createDatabase() };
    const run = spawnRegistry(['migrate', '--from', 'lowdb', '--data-dir', dataDir, '--config', configFile], dbEnv);
    assert.equal(await run.exit, 0, run.stderr());
    const total = Object.values(inFile).reduce((a, b) => a + b, 0);
    assert.match(run.stdout(), new RegExp(`copied ${total} records from ${dataDir} into PostgreSQL \\(expiry kept\\):`));
    const printed = Object.fromEntries([...run.stdout().matchAll(/^ {2}(\w+) +(\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
    assert.deepEqual(printed, inFile, 'the count per kind is what the lowdb file held');
    assert.ok(inFile.refresh_tokens && inFile.accounts && inFile.identities, JSON.stringify(inFile));
    assert.match(run.stdout(), /copied 1 signing key from .*signing-keys\.json into PostgreSQL, sealed with the vault key/);
    // What the database holds: every record of the file, its expiry kept (and the signing keys of the data dir, sealed).
    const db = new pg_.Client({ connectionString: dbEnv.KEYGATE_DATABASE_URL });
    await db.connect();
    try {
      const { rows } = await db.query<{ kind: string; id: string; expires_at: string | null }>('SELECT kind, id, expires_at FROM keygate_records');
      const held = Object.fromEntries(rows.filter((r) => r.kind !== 'signing_keys').map((r) => [`${r.kind}/${r.id}`, r.expires_at === null ? undefined : Number(r.expires_at)]));
      const wanted = Object.fromEntries(Object.entries(file.collections).flatMap(([kind, records]) => Object.entries(records).map(([id, r]) => [`${kind}/${id}`, r.expires_at])));
      assert.deepEqual(held, wanted);
    } finally {
      await db.end();
    }

    // The same registry (its keys in the data dir, the vault key in the environment, its address) on PostgreSQL:
    // the access token issued on lowdb still calls through, and its refresh token is good exactly once.
    const onPg = await startRegistry({ ...config({ type: 'postgres' }), server: { public_url: url } }, dbEnv, { dataDir });
    try {
      assert.equal(await callEcho(onPg.url, tokens.access_token), 200);
      const refreshed = await tokenRequest(onPg.url, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token! });
      assert.equal(refreshed.status, 200, await refreshed.clone().text());
      const next = (await refreshed.json()) as { access_token: string };
      assert.equal(await callEcho(onPg.url, next.access_token), 200);
      const replayed = await tokenRequest(onPg.url, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token! });
      assert.equal(replayed.status, 400, 'the copied refresh token was used once');
    } finally {
      await onPg.close();
    }
  });
});
