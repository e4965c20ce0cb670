import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiClient, CAROL } from '../helpers/control.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authorizeUrl, pkce, REDIRECT, signIn, tokenRequest } from '../helpers/oauth.ts';

// RFC 7591 registration is open to anyone, so it is bounded
// (oauth_server.registration): per address (RFC 6585 429 with Retry-After),
// in number (503 once max_clients dynamic clients are held), in size, and in
// time (a client no code was issued to expires). Distinct client addresses
// are real: on Linux every 127/8 address is the loopback, so a request bound
// to 127.0.0.2 reaches the registry from 127.0.0.2.

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { client_id?: string; client_secret?: string; error?: string; error_description?: string };
}

/** POST a registration from a chosen local address, as a client on another host would. */
function registerFrom(base: string, localAddress: string, metadata: Record<string, unknown> = {}, path = '/oauth/register'): Promise<Answer> {
  const body = JSON.stringify({ client_name: 'limits test', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', ...metadata });
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** What /authorize says about a client: 200 (the login page) when it is known. */
async function authorizeStatus(base: string, clientId: string): Promise<{ status: number; text: string }> {
  const res = await fetch(authorizeUrl(base, { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: 'S256', state: 'st' }), { redirect: 'manual' });
  return { status: res.status, text: await res.text() };
}

/** A configured public client, so the admin signs in without registering one. */
const WEB_APP = { client_id: 'web-app', name: 'Web app', redirect_uris: [REDIRECT] };

/** A registry with these registration limits, and an admin (Carol) signed in through a configured client (registering none). */
async function withAdmin(registration: Record<string, unknown>) {
  const f = await startFixture(
    (config) => {
      config.oauth_server.builtin.users.push({ username: CAROL.username, password_env: 'CAROL_PASSWORD', scopes: ['mcp:read', 'mcp:admin'] });
      config.oauth_server.clients = [WEB_APP];
      config.oauth_server.registration = registration;
    },
    { CAROL_PASSWORD: CAROL.password },
  );
  const base = f.registry.url;
  return { f, base, admin: apiClient(base, (await signIn(base, CAROL, { clientId: WEB_APP.client_id, scope: 'mcp:admin' })).tokens.access_token) };
}

describe('registrations per address (RFC 6585)', () => {
  let f: Fixture;
  let base: string;
  before(async () => {
    f = await startFixture((config) => {
      // Counting loopback addresses too: the tests play other hosts from 127.0.0.x.
      config.oauth_server.registration = { rate_limit: { per_address: 3, window: '1h', loopback: true } };
    });
    base = f.registry.url;
  });
  after(() => f.close());

  test('past the limit an address gets 429 with Retry-After and an OAuth error, at /oauth/register and the root fallback alike, and no client', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await registerFrom(base, '127.0.0.2')).status, 201);
    for (const path of ['/oauth/register', '/register']) {
      const refused = await registerFrom(base, '127.0.0.2', {}, path);
      assert.equal(refused.status, 429, path);
      const wait = Number(refused.headers['retry-after']);
      assert.ok(Number.isInteger(wait) && wait > 0 && wait <= 3600, `Retry-After: ${refused.headers['retry-after']}`);
      assert.equal(refused.headers['cache-control'], 'no-store');
      assert.equal(refused.body.error, 'temporarily_unavailable');
      assert.match(refused.body.error_description!, new RegExp(`too many registrations from this address; try again in ${wait} s`));
      assert.equal(refused.body.client_id, undefined);
    }
  });

  test('loopback callers are not counted unless rate_limit.loopback is set (on a registry bound to 127.0.0.1 they are everyone)', async () => {
    const local = await startFixture((config) => {
      config.oauth_server.registration = { rate_limit: { per_address: 3, window: '1h' } };
    });
    try {
      for (let i = 0; i < 6; i++) assert.equal((await registerFrom(local.registry.url, '127.0.0.2')).status, 201, `registration ${i + 1}`);
    } finally {
      await local.close();
    }
  });

  test('another address is not held back by it', async () => {
    assert.equal((await registerFrom(base, '127.0.0.3')).status, 201);
  });

  test('metadata that cannot be registered does not use up the allowance, and is refused for what it is', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await registerFrom(base, '127.0.0.4', { redirect_uris: ['javascript:alert(1)'] })).body.error, 'invalid_redirect_uri');
    assert.equal((await registerFrom(base, '127.0.0.4')).status, 201);
  });
});

describe('what one registration may hold', () => {
  let f: Fixture;
  let base: string;
  before(async () => {
    f = await startFixture();
    base = f.registry.url;
  });
  after(() => f.close());

  test('at most 10 redirect URIs of at most 256 characters: more is invalid_redirect_uri; 10 of 256 register', async () => {
    const uri = (n: number, length: number) => `https://app.example/cb/${n}/`.padEnd(length, 'x');
    const tooMany = await registerFrom(base, '127.0.0.1', { redirect_uris: Array.from({ length: 11 }, (_, n) => uri(n, 40)) });
    assert.deepEqual([tooMany.status, tooMany.body.error, tooMany.body.error_description], [400, 'invalid_redirect_uri', 'at most 10 redirect URIs may be registered']);
    const tooLong = await registerFrom(base, '127.0.0.1', { redirect_uris: [uri(0, 257)] });
    assert.deepEqual([tooLong.status, tooLong.body.error, tooLong.body.error_description], [400, 'invalid_redirect_uri', 'a redirect URI may have at most 256 characters']);
    const most = await registerFrom(base, '127.0.0.1', { redirect_uris: Array.from({ length: 10 }, (_, n) => uri(n, 256)) });
    assert.equal(most.status, 201);
  });

  test('a body over 16 KB is 413 invalid_request', async () => {
    const res = await registerFrom(base, '127.0.0.1', { client_name: 'x', padding: 'p'.repeat(17 * 1024) });
    assert.deepEqual([res.status, res.body.error], [413, 'invalid_request']);
  });
});

describe('the number of dynamic clients (oauth_server.registration.max_clients)', () => {
  let f: Fixture;
  let base: string;
  let admin: ReturnType<typeof apiClient>;
  before(async () => {
    ({ f, base, admin } = await withAdmin({ max_clients: 3 }));
    // Configured and admin-created clients are not dynamic ones: they do not count.
    assert.equal((await admin.post('/admin/clients', { client_id: 'by-admin', name: 'By an admin', redirect_uris: [REDIRECT] })).status, 201);
  });
  after(() => f.close());

  test('once max_clients are registered, any address gets 503 temporarily_unavailable saying so; configured and admin-created clients do not count', async () => {
    const held: string[] = [];
    for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
      const res = await registerFrom(base, address);
      assert.equal(res.status, 201);
      held.push(res.body.client_id!);
    }
    for (const address of ['127.0.0.5', '127.0.0.2']) {
      const refused = await registerFrom(base, address);
      assert.equal(refused.status, 503, address);
      assert.equal(refused.headers['cache-control'], 'no-store');
      assert.deepEqual(refused.body, { error: 'temporarily_unavailable', error_description: 'this registry holds as many registered clients as it allows; try again later, or ask an admin for a client' });
    }
    assert.match(f.registry.log.lines.join('\n'), /dynamic registration refused: 3 clients registered, the most oauth_server\.registration\.max_clients allows/);
    // The ones held still work.
    assert.equal((await authorizeStatus(base, held[0]!)).status, 200);

    // An admin deleting one frees its place.
    assert.equal((await admin.delete(`/admin/clients/${held[0]}`)).status, 204);
    assert.equal((await registerFrom(base, '127.0.0.6')).status, 201);
    assert.equal((await registerFrom(base, '127.0.0.7')).status, 503);
  });
});

describe('clients nobody used expire (oauth_server.registration.unused_client_ttl)', () => {
  let f: Fixture;
  let base: string;
  let admin: ReturnType<typeof apiClient>;
  before(async () => {
    ({ f, base, admin } = await withAdmin({ unused_client_ttl: '4s', max_clients: 3 }));
  });
  after(() => f.close());

  test('a client no code was issued to is unknown at /authorize and /token once its time is up, and its place is free; one that signed someone in, or that an admin changed, stays', async () => {
    const used = (await registerFrom(base, '127.0.0.1')).body.client_id!;
    const session = await signIn(base, ALICE, { clientId: used });
    const adopted = (await registerFrom(base, '127.0.0.1', { token_endpoint_auth_method: 'client_secret_basic' })).body;
    assert.equal((await admin.call('PATCH', `/admin/clients/${adopted.client_id}`, { resource_server: true })).status, 200);
    const unused = (await registerFrom(base, '127.0.0.1', { token_endpoint_auth_method: 'client_secret_basic' })).body;
    const basic = { authorization: `Basic ${Buffer.from(`${unused.client_id}:${unused.client_secret}`).toString('base64')}` };
    const redeem = () => tokenRequest(base, { grant_type: 'authorization_code', code: 'never-issued', redirect_uri: REDIRECT, code_verifier: pkce().verifier }, basic);
    assert.equal((await registerFrom(base, '127.0.0.1')).status, 503, 'three held: the cap is reached');
    assert.equal((await redeem()).status, 400, 'known: the client authenticates, the code is what is wrong');

    // Wait for the unused one to go (the test's own deadline is generous; nothing is asserted about time).
    let known = true;
    for (let i = 0; i < 120 && known; i++) {
      known = (await authorizeStatus(base, unused.client_id!)).status === 200;
      if (known) await sleep(250);
    }
    const page = await authorizeStatus(base, unused.client_id!);
    assert.equal(page.status, 400);
    assert.match(page.text, /the client_id is not registered with this server/);
    const refused = await redeem();
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), { error: 'invalid_client', error_description: 'unknown client' });

    // The used one outlived the same time: it still signs in and refreshes; the adopted one still introspects.
    assert.equal((await authorizeStatus(base, used)).status, 200);
    const refreshed = await tokenRequest(base, { grant_type: 'refresh_token', client_id: used, refresh_token: session.tokens.refresh_token });
    assert.equal(refreshed.status, 200);
    const introspected = await fetch(`${base}/oauth/introspect`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${adopted.client_id}:${adopted.client_secret}`).toString('base64')}` }, body: new URLSearchParams({ token: session.tokens.access_token }) });
    assert.equal(((await introspected.json()) as { active: boolean }).active, true);
    // The expired one's place is free again.
    assert.equal((await registerFrom(base, '127.0.0.1')).status, 201);
  });
});
