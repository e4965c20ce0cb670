import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { ALICE, BOB } from '../helpers/fixture.ts';
import { submitLogin } from '../helpers/form.ts';
import { authorizeUrl, pkce, REDIRECT } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// Login and registration throttles counted in the database when instances
// share it (oauth/throttle.ts StoreWindow): attempts spread over two
// instances add up to the same limits as on one. Behind the proxy every
// attempt comes from one address (the proxy's, loopback).

let pg_: TestPostgres;
let cluster: Cluster;
let databaseUrl: string;
const PASSWORDS = { ALICE_PASSWORD: ALICE.password, BOB_PASSWORD: BOB.password, DAVE_PASSWORD: 'dave-password-1234', ERIN_PASSWORD: 'erin-password-1234', CAROL_PASSWORD: 'carol-password-1234' };
const PER_ADDRESS_REGISTRATIONS = 3;

before(async () => {
  pg_ = await startPostgres();
  databaseUrl = await pg_.createDatabase();
  const user = (username: string) => ({ username, password_env: `${username.toUpperCase()}_PASSWORD`, scopes: ['mcp:read'] });
  cluster = await startCluster(
    {
      storage: { type: 'postgres' },
      vault: { key_env: 'VAULT_KEY' },
      oauth_server: {
        builtin: { users: ['alice', 'bob', 'carol', 'dave', 'erin'].map(user) },
        // A configured client for the login tests, so the registrations counted are only the registration tests' own.
        clients: [{ client_id: 'web', name: 'Web', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }],
        // Behind the proxy on loopback every caller is loopback: count them.
        registration: { rate_limit: { per_address: PER_ADDRESS_REGISTRATIONS, window: '1h', loopback: true } },
      },
    },
    { ...PASSWORDS, VAULT_KEY: randomBytes(32).toString('base64'), KEYGATE_DATABASE_URL: databaseUrl },
  );
});
after(async () => {
  await cluster?.close();
  await pg_?.stop();
});

const authorize = () =>
  authorizeUrl(cluster.url, { response_type: 'code', client_id: 'web', redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: 'S256', state: 'st' });

/** One sign-in attempt, the login page and its post both through instance i; the status of the post. */
async function attempt(i: number, username: string, password: string): Promise<Response> {
  return submitLogin(authorize(), username, password, cluster.to(i));
}

function register(i: number): Promise<Response> {
  return fetch(`${cluster.url}/oauth/register`, {
    method: 'POST',
    headers: { ...cluster.to(i), 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'throttled', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
  });
}

describe('login throttling across two instances on one PostgreSQL', () => {
  test('failed sign-ins alternating between instance 0 and 1 are throttled after the same count as on one instance (429 with Retry-After on both, even with the right password)', async (t) => {
    const oneInstance: number[] = [];
    for (let n = 0; n < 6; n++) oneInstance.push((await attempt(0, 'erin', `wrong-${n}`)).status);
    const alternating: number[] = [];
    const started = performance.now();
    for (let n = 0; n < 5; n++) alternating.push((await attempt(n % 2, 'dave', `wrong-${n}`)).status);
    t.diagnostic(`a failed sign-in (login page and post) through the cluster: ${((performance.now() - started) / 5).toFixed(1)} ms on average`);
    for (const i of [0, 1]) {
      const throttled = await attempt(i, 'dave', PASSWORDS.DAVE_PASSWORD);
      alternating.push(throttled.status);
      assert.ok(Number(throttled.headers.get('retry-after')) > 0, `instance ${i}: Retry-After`);
      assert.match(await throttled.text(), /Too many failed sign-ins/);
    }
    assert.deepEqual(oneInstance, [401, 401, 401, 401, 401, 429]);
    assert.deepEqual(alternating, [...oneInstance, 429], 'the same count spread over two instances; the right password is refused on both');
  });

  test('another user is not throttled by those failures, on either instance', async () => {
    for (const i of [0, 1]) assert.equal((await attempt(i, BOB.username, BOB.password)).status, 200, `instance ${i} shows bob the consent page`);
  });

  test('a successful sign-in on one instance clears the count the other instance added to', async () => {
    for (let n = 0; n < 4; n++) assert.equal((await attempt(n % 2, 'carol', `wrong-${n}`)).status, 401);
    assert.equal((await attempt(1, 'carol', PASSWORDS.CAROL_PASSWORD)).status, 200);
    const after_: number[] = [];
    for (let n = 0; n < 4; n++) after_.push((await attempt(n % 2, 'carol', `wrong-again-${n}`)).status);
    assert.deepEqual(after_, [401, 401, 401, 401], 'counted from zero again, on both');
  });
});

describe('registration throttling across two instances on one PostgreSQL', () => {
  test('registrations alternating between instance 0 and 1 hit the per-address limit at the count one instance allows (429 with Retry-After and an OAuth error on both, no client)', async () => {
    const statuses: number[] = [];
    for (let n = 0; n < PER_ADDRESS_REGISTRATIONS; n++) statuses.push((await register(n % 2)).status);
    assert.deepEqual(statuses, Array(PER_ADDRESS_REGISTRATIONS).fill(201), 'below the limit both instances register');
    for (const i of [0, 1]) {
      const refused = await register(i);
      assert.equal(refused.status, 429, `instance ${i}`);
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      const body = (await refused.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'temporarily_unavailable');
      assert.match(body.error_description, /too many registrations from this address/);
      assert.equal((body as Record<string, unknown>).client_id, undefined);
    }
  });
});

describe('what the throttles keep in the database', () => {
  test('every count expires with its window, and names no user or address', async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string; payload: unknown; expires_at: string | null }>("SELECT id, payload, expires_at FROM keygate_records WHERE kind = 'throttles'");
      assert.ok(rows.length > 0);
      const now = Date.now() / 1000;
      for (const row of rows) {
        assert.ok(row.expires_at !== null && Number(row.expires_at) > now && Number(row.expires_at) <= now + 3601, `expires within its window: ${row.expires_at}`);
        assert.ok(!/dave|erin|carol|127\.0\.0\.1/.test(`${row.id} ${JSON.stringify(row.payload)}`), 'keyed by a hash');
      }
    } finally {
      await client.end();
    }
  });
});
