import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { ALICE } from '../helpers/fixture.ts';
import { submitLogin } from '../helpers/form.ts';
import { authorizeUrl, pkce, REDIRECT } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { spawnRegistry } from '../helpers/spawn.ts';

// server.trust_proxy decides whose X-Forwarded-For is believed: the client
// address the sign-in and registration throttles count by. Two instances on
// PostgreSQL behind the reverse proxy of test/helpers/cluster.ts, which
// appends the caller's address to X-Forwarded-For as nginx does; callers come
// from distinct loopback addresses (127.0.0.2, 127.0.0.3) so the proxy sees
// them apart.

const PER_ADDRESS = 3;
let pg: TestPostgres;
let untrusting: Cluster;
let trusting: Cluster;
const env = { ALICE_PASSWORD: ALICE.password, VAULT_KEY: randomBytes(32).toString('base64') };

function config(server: Record<string, unknown>): Record<string, unknown> {
  return {
    server,
    storage: { type: 'postgres' },
    vault: { key_env: 'VAULT_KEY' },
    oauth_server: {
      builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read'] }] },
      clients: [{ client_id: 'tester', name: 'Tester', redirect_uris: [REDIRECT] }],
      // Loopback callers are counted too: here every caller is on loopback.
      registration: { rate_limit: { per_address: PER_ADDRESS, loopback: true } },
    },
  };
}

before(async () => {
  pg = await startPostgres();
  untrusting = await startCluster(config({}), { ...env, KEYGATE_DATABASE_URL: await pg.createDatabase() });
  trusting = await startCluster(config({ trust_proxy: ['127.0.0.1'] }), { ...env, KEYGATE_DATABASE_URL: await pg.createDatabase() });
});
after(async () => {
  await untrusting?.close();
  await trusting?.close();
  await pg?.stop();
});

/** POST /oauth/register from the loopback address `from`, through the proxy to instance 0, with an X-Forwarded-For of the caller's choosing. */
function register(cluster: Cluster, from: string, forwardedFor?: string): Promise<number> {
  const body = JSON.stringify({ client_name: 'throttle test', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' });
  const url = new URL(`${cluster.url}/oauth/register`);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress: from, headers: { 'content-type': 'application/json', ...cluster.to(0), ...(forwardedFor && { 'x-forwarded-for': forwardedFor }) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('without server.trust_proxy (the default), X-Forwarded-For is not believed', () => {
  test('a caller rotating X-Forwarded-For cannot escape the per-address registration limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i <= PER_ADDRESS; i++) statuses.push(await register(untrusting, '127.0.0.2', `203.0.113.${i + 1}`));
    assert.deepEqual(statuses, [...Array<number>(PER_ADDRESS).fill(201), 429]);
    // Everyone behind the proxy is the proxy's address to the registry: the reason to set trust_proxy.
    assert.equal(await register(untrusting, '127.0.0.3'), 429);
  });

  test('a caller rotating X-Forwarded-For cannot escape the sign-in throttle', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const { challenge } = pkce();
      const url = authorizeUrl(untrusting.url, { response_type: 'code', client_id: 'tester', redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 's' });
      const res = await submitLogin(url, ALICE.username, `wrong-${i}`, { ...untrusting.to(0), 'x-forwarded-for': `198.51.100.${i + 1}` });
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  });
});

describe('with server.trust_proxy set to the proxy address', () => {
  test('two clients behind the proxy are counted apart', async () => {
    const first: number[] = [];
    for (let i = 0; i <= PER_ADDRESS; i++) first.push(await register(trusting, '127.0.0.2'));
    assert.deepEqual(first, [...Array<number>(PER_ADDRESS).fill(201), 429]);
    assert.equal(await register(trusting, '127.0.0.3'), 201, 'another client behind the same proxy is not held by the first one');
  });

  test('what a caller puts in X-Forwarded-For itself is not believed: only what the trusted proxy added', async () => {
    const statuses: number[] = [];
    for (let i = 0; i <= PER_ADDRESS; i++) statuses.push(await register(trusting, '127.0.0.4', `203.0.113.${i + 1}`));
    assert.deepEqual(statuses, [...Array<number>(PER_ADDRESS).fill(201), 429]);
  });
});

describe('server.trust_proxy is validated at start', () => {
  for (const [value, why] of [
    [['not-an-address'], 'a name that is not an address'],
    [['10.0.0.0/33'], 'a CIDR block past /32'],
    ['127.0.0.1', 'a lone string (a list is expected)'],
    [-1, 'a negative hop count'],
  ] as const) {
    test(`refused: ${why}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'keygate-trust-'));
      try {
        const file = join(dir, 'keygate.yaml');
        writeFileSync(file, JSON.stringify({ server: { trust_proxy: value } }));
        const spawned = spawnRegistry(['--config', file, '--port', '0', '--data-dir', join(dir, 'data')]);
        assert.equal(await spawned.exit, 2, 'an invalid configuration');
        assert.match(spawned.stderr(), /server\.trust_proxy(\[0\])?: expected /);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
