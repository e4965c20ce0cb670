import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { apiClient, callMethod, CAROL, callEcho, startControlFixture } from '../helpers/control.ts';
import { ALICE, type Fixture } from '../helpers/fixture.ts';
import { authorizeWithLogin } from '../helpers/form.ts';
import { authorizeUrl, pkce, REDIRECT, registerClient, signIn, signInAdmin, tokenRequest } from '../helpers/oauth.ts';

// /api/v1/admin/clients: built-in, configured and metadata-document clients
// listed read-only beside dynamically registered and admin-created ones; a
// secret shown once and kept as a hash; break-glass on a client cuts its
// tokens on the next request and refuses it new ones.

const CONFIG_SECRET = 'config-client-secret-0a1b2c3d4e5f';

let f: Fixture;
let base: string;
let admin: ReturnType<typeof apiClient>;
let alice: ReturnType<typeof apiClient>;
let carolClientId: string;
let docServer: Server;
let docUrl: string;
/** Every admin answer, to check no secret ever appears in a list or get. */
const seen: string[] = [];

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` });

/** Sign alice in through `clientId` and redeem the code (with the secret when given). */
async function tokensFor(clientId: string, secret?: string): Promise<{ access_token: string; refresh_token: string }> {
  const { verifier, challenge } = pkce();
  const callback = await authorizeWithLogin(authorizeUrl(base, { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 's' }), ALICE.username, ALICE.password);
  const params = { grant_type: 'authorization_code', code: callback.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, ...(secret ? {} : { client_id: clientId }) };
  const res = await tokenRequest(base, params, secret ? basic(clientId, secret) : {});
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { access_token: string; refresh_token: string };
}

const refresh = (clientId: string, refreshToken: string, secret?: string) =>
  tokenRequest(base, { grant_type: 'refresh_token', refresh_token: refreshToken, ...(secret ? {} : { client_id: clientId }) }, secret ? basic(clientId, secret) : {});

before(async () => {
  docServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ client_id: docUrl, client_name: 'Doc client', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }));
  });
  await new Promise<void>((resolve) => docServer.listen(0, '127.0.0.1', resolve));
  docUrl = `http://127.0.0.1:${(docServer.address() as AddressInfo).port}/client.json`;
  f = await startControlFixture(
    (config) => {
      config.outbound = { allow_loopback: true };
      config.oauth_server.clients = [{ client_id: 'ci-config', name: 'From the file', client_secret_env: 'CONFIG_CLIENT_SECRET', redirect_uris: [REDIRECT], resource_server: true }];
    },
    { CONFIG_CLIENT_SECRET: CONFIG_SECRET },
  );
  base = f.registry.url;
  const carol = await signInAdmin(base, CAROL);
  carolClientId = carol.clientId;
  const record = (client: ReturnType<typeof apiClient>) => {
    const wrap =
      <A extends unknown[]>(fn: (...args: A) => Promise<{ status: number; body: unknown; headers: Headers }>) =>
      async (...args: A) => {
        const res = await fn(...args);
        seen.push(JSON.stringify(res.body));
        return res;
      };
    return { ...client, get: wrap(client.get), post: wrap(client.post), put: wrap(client.put), delete: wrap(client.delete), call: wrap(client.call) };
  };
  admin = record(apiClient(base, carol.tokens.access_token)) as ReturnType<typeof apiClient>;
  alice = apiClient(base, (await signIn(base, ALICE)).tokens.access_token);
});
after(async () => {
  await f?.close();
  docServer?.closeAllConnections();
  await new Promise<void>((resolve) => docServer?.close(() => resolve()));
});

describe('who may call /admin/clients', () => {
  const routes: [string, string][] = [
    ['GET', '/admin/clients'],
    ['POST', '/admin/clients'],
    ['GET', '/admin/clients/keygate-vscode'],
    ['PUT', '/admin/clients/keygate-vscode'],
    ['PATCH', '/admin/clients/keygate-vscode'],
    ['DELETE', '/admin/clients/keygate-vscode'],
    ['POST', '/admin/clients/keygate-vscode/secret'],
    ['POST', '/admin/clients/keygate-vscode/disable'],
    ['POST', '/admin/clients/keygate-vscode/enable'],
  ];
  test('no token is 401 with the challenge; a token without mcp:admin is 403 insufficient_scope', async () => {
    for (const [method, path] of routes) {
      const anonymous = await apiClient(base, undefined).call(method, path, method === 'GET' || method === 'DELETE' ? undefined : {});
      assert.equal(anonymous.status, 401, `${method} ${path}`);
      assert.equal(anonymous.body.error, 'invalid_token');
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /resource_metadata=/);
      const user = await alice.call(method, path, method === 'GET' || method === 'DELETE' ? undefined : {});
      assert.equal(user.status, 403, `${method} ${path}`);
      assert.equal(user.body.error, 'insufficient_scope');
    }
  });
});

describe('listing and reading clients', () => {
  test('built-in, configured, dynamic and metadata-document clients are listed, each with its source; only stored ones are editable', async () => {
    const dynamic = await registerClient(base, { client_name: 'DCR client' });
    // The registry fetches a metadata document when the client first shows up.
    assert.equal((await fetch(authorizeUrl(base, { response_type: 'code', client_id: docUrl, redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: 'S256' }))).status, 200);
    const res = await admin.get('/admin/clients');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const byId = new Map<string, any>(res.body.clients.map((c: any) => [c.client_id, c]));
    assert.deepEqual([byId.get('keygate-vscode')?.source, byId.get('keygate-vscode')?.read_only, byId.get('keygate-vscode')?.type], ['builtin', true, 'public']);
    assert.deepEqual([byId.get('keygate-web')?.source, byId.get('keygate-web')?.read_only], ['builtin', true]);
    assert.deepEqual([byId.get('ci-config')?.source, byId.get('ci-config')?.read_only, byId.get('ci-config')?.type, byId.get('ci-config')?.name], ['config', true, 'confidential', 'From the file']);
    assert.deepEqual([byId.get(dynamic.client_id)?.source, byId.get(dynamic.client_id)?.read_only, byId.get(dynamic.client_id)?.name], ['dynamic', false, 'DCR client']);
    assert.deepEqual([byId.get(docUrl)?.source, byId.get(docUrl)?.read_only, byId.get(docUrl)?.name], ['metadata_document', true, 'Doc client']);
    const only = await admin.get('/admin/clients?source=config');
    assert.deepEqual(only.body.clients.map((c: any) => c.client_id), ['ci-config']);
    const bad = await admin.get('/admin/clients?source=nope');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error_description, /^query: source/);
    const unknownQuery = await admin.get('/admin/clients?colour=red');
    assert.equal(unknownQuery.status, 400);
  });

  test('one client by id, a metadata-document URL percent-encoded; an unknown id is 404', async () => {
    const one = await admin.get('/admin/clients/keygate-vscode');
    assert.equal(one.status, 200);
    assert.equal(one.body.client_id, 'keygate-vscode');
    assert.ok(one.body.redirect_uris.some((u: string) => u.startsWith('vscode://')));
    const doc = await admin.get(`/admin/clients/${encodeURIComponent(docUrl)}`);
    assert.equal(doc.status, 200);
    assert.equal(doc.body.source, 'metadata_document');
    for (const [method, path] of [
      ['GET', '/admin/clients/ghost'],
      ['PUT', '/admin/clients/ghost'],
      ['PATCH', '/admin/clients/ghost'],
      ['DELETE', '/admin/clients/ghost'],
      ['POST', '/admin/clients/ghost/secret'],
      ['POST', '/admin/clients/ghost/disable'],
      ['POST', '/admin/clients/ghost/enable'],
    ] as const) {
      const res = await admin.call(method, path, method === 'GET' || method === 'DELETE' ? undefined : { name: 'x', redirect_uris: [REDIRECT] });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.deepEqual(res.body, { error: 'not_found', error_description: 'there is no client "ghost"' });
    }
  });
});

describe('admin-created clients', () => {
  test('a confidential client: 201 with Location and the secret once; only its hash is kept; it signs in with it', async () => {
    const res = await admin.post('/admin/clients', { client_id: 'ci-bot', name: 'CI bot', redirect_uris: [REDIRECT], scopes: ['mcp:read', 'mcp:write'] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.get('location'), '/api/v1/admin/clients/ci-bot');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const { client_secret: secret, ...rest } = res.body;
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(res.body.client_secret_expires_at, 0);
    assert.deepEqual(
      { ...rest, created_at: typeof rest.created_at, updated_at: typeof rest.updated_at, client_secret_expires_at: undefined },
      {
        client_id: 'ci-bot',
        name: 'CI bot',
        source: 'admin',
        read_only: false,
        type: 'confidential',
        token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        scopes: ['mcp:read', 'mcp:write'],
        resource_server: false,
        disabled: false,
        created_at: 'number',
        updated_at: 'number',
        created_by: 'carol',
        client_secret_expires_at: undefined,
      },
    );
    // Never again: not in a get, not in the list, not in the store in clear.
    assert.ok(!JSON.stringify((await admin.get('/admin/clients/ci-bot')).body).includes(secret));
    assert.ok(!JSON.stringify((await admin.get('/admin/clients')).body).includes(secret));
    assert.ok(!readFileSync(join(f.registry.dataDir, 'store.json'), 'utf8').includes(secret));
    // The secret works at the token endpoint, and nothing else does.
    const tokens = await tokensFor('ci-bot', secret);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.access_token)).status, 200);
    const wrong = await refresh('ci-bot', tokens.refresh_token, 'not-the-secret');
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: string }).error, 'invalid_client');
    // Scopes are a ceiling: mcp:admin is not given to this client.
    const { challenge } = pkce();
    const page = await fetch(authorizeUrl(base, { response_type: 'code', client_id: 'ci-bot', redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', scope: 'mcp:admin' }), { redirect: 'manual' });
    assert.match(page.headers.get('location') ?? '', /error=access_denied&error_description=this\+client\+may\+not\+ask\+for\+mcp%3Aadmin/);
  });

  test('a public client gets no secret and signs in with PKCE alone; an id is generated when none is given', async () => {
    const res = await admin.post('/admin/clients', { name: 'Desktop app', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], application_type: 'native' });
    assert.equal(res.status, 201);
    assert.equal(res.body.client_secret, undefined);
    assert.equal(res.body.type, 'public');
    assert.match(res.body.client_id, /^[0-9a-f-]{36}$/);
    const tokens = await tokensFor(res.body.client_id);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.access_token)).status, 200);
  });

  test('a headless agent: a confidential client_credentials client gets tokens as itself until it is disabled; its tokens stay revoked, new ones work once enabled', async () => {
    const created = await admin.post('/admin/clients', { client_id: 'agent', name: 'Agent', grant_types: ['client_credentials'], scopes: ['mcp:read', 'mcp:write'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.redirect_uris, []);
    const tokenOf = () => tokenRequest(base, { grant_type: 'client_credentials' }, basic('agent', created.body.client_secret));
    const res = await tokenOf();
    assert.equal(res.status, 200, await res.clone().text());
    const { access_token: token } = (await res.json()) as { access_token: string };
    assert.equal((await callEcho(`${base}/mcp/team/demo`, token)).status, 200, 'a shared server');
    assert.equal((await admin.post('/admin/clients/agent/disable', {})).status, 200);
    assert.equal((await tokenOf()).status, 401);
    const cut = await callEcho(`${base}/mcp/team/demo`, token);
    assert.deepEqual([cut.status, cut.reason], [401, 'client_disabled']);
    assert.equal((await admin.post('/admin/clients/agent/enable', {})).status, 200);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, token)).status, 401, 'the grant ended with the disable');
    const again = (await (await tokenOf()).json()) as { access_token: string };
    assert.equal((await callEcho(`${base}/mcp/team/demo`, again.access_token)).status, 200);
  });

  test('bad bodies are 400 invalid_request naming the field; a taken id is 409', async () => {
    const cases: [unknown, RegExp][] = [
      [{ redirect_uris: [REDIRECT] }, /^name: /],
      [{ name: 'x', redirect_uris: [REDIRECT], colour: 'red' }, /^unknown field colour$/],
      [{ name: 'x' }, /^redirect_uris: the authorization_code grant needs at least one redirect URI/],
      [{ name: 'x', redirect_uris: ['javascript:alert(1)'] }, /^redirect_uris\.0: /],
      [{ name: 'x', redirect_uris: [REDIRECT], grant_types: ['password'] }, /^grant_types\.0: grant_types may hold authorization_code, refresh_token, client_credentials/],
      [{ name: 'x', redirect_uris: [REDIRECT], grant_types: [] }, /^grant_types: a client needs at least one grant type/],
      [{ name: 'x', token_endpoint_auth_method: 'none', grant_types: ['client_credentials'] }, /^grant_types: client_credentials is for confidential clients/],
      [{ name: 'x', redirect_uris: [REDIRECT], scopes: ['mcp:root'] }, /^scopes\.0: "mcp:root" is not a scope this server supports/],
      [{ name: 'x', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt' }, /^token_endpoint_auth_method: /],
      [{ name: 'x', redirect_uris: [REDIRECT], client_id: 'has space' }, /^client_id: expected 1-128 letters/],
      [{ name: 'x', redirect_uris: [REDIRECT], client_id: 'https://evil.example/doc' }, /^client_id: /],
      ['not json', /./],
    ];
    for (const [body, message] of cases) {
      const res = await admin.post('/admin/clients', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error, 'invalid_request', JSON.stringify(res.body));
      assert.match(res.body.error_description, message, JSON.stringify(body));
    }
    for (const id of ['ci-bot', 'keygate-vscode', 'ci-config']) {
      const taken = await admin.post('/admin/clients', { client_id: id, name: 'x', redirect_uris: [REDIRECT] });
      assert.equal(taken.status, 409, id);
      assert.deepEqual(taken.body, { error: 'conflict', error_description: `there is already a client "${id}"` });
    }
  });

  test('PUT replaces the editable fields, PATCH changes the given ones; the id and authentication method stay', async () => {
    const put = await admin.put('/admin/clients/ci-bot', { name: 'CI bot v2', redirect_uris: [REDIRECT, 'https://ci.example.com/cb'], scopes: ['mcp:read'] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual([put.body.name, put.body.redirect_uris, put.body.scopes, put.body.grant_types], ['CI bot v2', [REDIRECT, 'https://ci.example.com/cb'], ['mcp:read'], ['authorization_code', 'refresh_token']]);
    const patch = await admin.call('PATCH', '/admin/clients/ci-bot', { name: 'CI bot v3' });
    assert.equal(patch.status, 200);
    assert.deepEqual([patch.body.name, patch.body.scopes, patch.body.redirect_uris.length], ['CI bot v3', ['mcp:read'], 2]);
    const idChange = await admin.put('/admin/clients/ci-bot', { client_id: 'other', name: 'x', redirect_uris: [REDIRECT] });
    assert.equal(idChange.status, 400);
    assert.match(idChange.body.error_description, /^client_id: the id is "ci-bot"/);
    const methodChange = await admin.put('/admin/clients/ci-bot', { name: 'x', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' });
    assert.equal(methodChange.status, 400);
    assert.match(methodChange.body.error_description, /^token_endpoint_auth_method: this client uses client_secret_basic/);
    const badPatch = await admin.call('PATCH', '/admin/clients/ci-bot', { redirect_uris: [] });
    assert.equal(badPatch.status, 400);
    assert.match(badPatch.body.error_description, /^redirect_uris: the authorization_code grant needs/);
    // Dynamically registered clients can be edited too.
    const dynamic = await registerClient(base);
    const renamed = await admin.call('PATCH', `/admin/clients/${dynamic.client_id}`, { name: 'Renamed by an admin' });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.source, 'dynamic');
  });

  test('built-in, configured and metadata-document clients are read-only: 409 naming why', async () => {
    const cases: [string, RegExp][] = [
      ['keygate-vscode', /is built into the registry/],
      ['ci-config', /is defined in the configuration file/],
      [encodeURIComponent(docUrl), /is described by its metadata document/],
    ];
    for (const [id, why] of cases) {
      for (const [method, path, body] of [
        ['PUT', `/admin/clients/${id}`, { name: 'x', redirect_uris: [REDIRECT] }],
        ['PATCH', `/admin/clients/${id}`, { name: 'x' }],
        ['DELETE', `/admin/clients/${id}`, undefined],
        ['POST', `/admin/clients/${id}/secret`, {}],
      ] as const) {
        const res = await admin.call(method, path, body);
        assert.equal(res.status, 409, `${method} ${path}`);
        assert.equal(res.body.error, 'conflict');
        assert.match(res.body.error_description, why);
      }
    }
  });

  test('only an admin makes a client a resource server that may introspect (RFC 7662 §4), by POST or PATCH; taking it back stops it at once; a public client cannot be one', async () => {
    const { tokens } = await signIn(base, ALICE);
    const introspect = (id: string, secret: string) => fetch(`${base}/oauth/introspect`, { method: 'POST', headers: basic(id, secret), body: new URLSearchParams({ token: tokens.refresh_token }) });
    const created = await admin.post('/admin/clients', { client_id: 'rs-api', name: 'Resource server', grant_types: ['client_credentials'], resource_server: true });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.resource_server, true);
    const view = (await (await introspect('rs-api', created.body.client_secret)).json()) as { active: boolean; sub: string };
    assert.deepEqual([view.active, view.sub], [true, 'alice']);

    // A confidential client (admin-created or self-registered) may not, until an admin says so, and no longer once they take it back.
    const plain = await admin.post('/admin/clients', { client_id: 'later-rs', name: 'Later', grant_types: ['client_credentials'] });
    const registered = await registerClient(base, { token_endpoint_auth_method: 'client_secret_basic' });
    for (const [id, secret] of [['later-rs', plain.body.client_secret], [registered.client_id, registered.client_secret!]] as const) {
      assert.equal((await admin.get(`/admin/clients/${id}`)).body.resource_server, false);
      const refused = await introspect(id, secret);
      assert.deepEqual([refused.status, ((await refused.json()) as { error: string }).error], [403, 'unauthorized_client'], id);
      const marked = await admin.call('PATCH', `/admin/clients/${id}`, { resource_server: true });
      assert.deepEqual([marked.status, marked.body.resource_server], [200, true]);
      assert.equal((await introspect(id, secret)).status, 200, id);
      const unmarked = await admin.call('PATCH', `/admin/clients/${id}`, { resource_server: false });
      assert.deepEqual([unmarked.status, unmarked.body.resource_server], [200, false]);
      assert.equal((await introspect(id, secret)).status, 403, id);
    }

    const publicClient = await admin.post('/admin/clients', { name: 'p', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], resource_server: true });
    assert.equal(publicClient.status, 400);
    assert.match(publicClient.body.error_description, /^resource_server: a resource server authenticates to introspect, so it must be a confidential client/);
  });

  test('a new secret replaces the old one at once, and is shown once', async () => {
    const created = await admin.post('/admin/clients', { client_id: 'rotating', name: 'Rotating', redirect_uris: [REDIRECT] });
    const tokens = await tokensFor('rotating', created.body.client_secret);
    const rotated = await admin.post('/admin/clients/rotating/secret', {});
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.client_secret, created.body.client_secret);
    assert.equal((await refresh('rotating', tokens.refresh_token, created.body.client_secret)).status, 401, 'the old secret no longer works');
    assert.equal((await refresh('rotating', tokens.refresh_token, rotated.body.client_secret)).status, 200);
    assert.ok(!JSON.stringify((await admin.get('/admin/clients/rotating')).body).includes(rotated.body.client_secret));
    const publicClient = await admin.post('/admin/clients', { name: 'p', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] });
    const none = await admin.post(`/admin/clients/${publicClient.body.client_id}/secret`, {});
    assert.equal(none.status, 409);
    assert.match(none.body.error_description, /is public/);
  });
});

describe('break-glass on a client', () => {
  test("disabling ends its grants: its tokens are refused on the next MCP and API request, refresh, sign-in and introspection too; enabling lets people sign in anew", async () => {
    const created = await admin.post('/admin/clients', { client_id: 'laptop', name: 'Laptop', redirect_uris: [REDIRECT] });
    const secret = created.body.client_secret as string;
    const tokens = await tokensFor('laptop', secret);
    const other = (await signIn(base, ALICE)).tokens.access_token;
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.access_token)).status, 200);

    const off = await admin.post('/admin/clients/laptop/disable', { reason: 'stolen laptop' });
    assert.equal(off.status, 200);
    assert.equal(off.body.disabled, true);
    assert.deepEqual({ ...off.body.switch, at: typeof off.body.switch.at }, { disabled: true, by: 'carol', at: 'number', reason: 'stolen laptop' });

    // Its unexpired access token (cached by the gateway): revoked at /mcp (step inbound) and /api/v1.
    const mcp = await callEcho(`${base}/mcp/team/demo`, tokens.access_token);
    assert.deepEqual([mcp.status, mcp.reason], [401, 'client_disabled']);
    assert.match(mcp.message!, /the access token was revoked: its client is disabled by an admin/);
    const api = await apiClient(base, tokens.access_token).get('/me');
    assert.deepEqual([api.status, api.body], [401, { error: 'invalid_token', error_description: 'the access token was revoked: its client is disabled by an admin' }]);
    // No refresh, no new sign-in, and introspection calls its tokens inactive.
    const refused = await refresh('laptop', tokens.refresh_token, secret);
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), { error: 'invalid_client', error_description: 'this client is disabled by an admin' });
    const { challenge } = pkce();
    const page = await fetch(authorizeUrl(base, { response_type: 'code', client_id: 'laptop', redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' }), { redirect: 'manual' });
    assert.equal(page.status, 400);
    assert.equal(page.headers.get('location'), null, 'an error page, never a redirect');
    assert.match(await page.text(), /this client is disabled by an admin/);
    const introspected = await fetch(`${base}/oauth/introspect`, { method: 'POST', headers: basic('ci-config', CONFIG_SECRET), body: new URLSearchParams({ token: tokens.access_token }) });
    assert.deepEqual(await introspected.json(), { active: false });
    // Other clients of the same person go on.
    assert.equal((await callEcho(`${base}/mcp/team/demo`, other)).status, 200);
    const listed = (await admin.get('/admin/clients')).body.clients.find((c: any) => c.client_id === 'laptop');
    assert.equal(listed.disabled, true);

    const on = await admin.post('/admin/clients/laptop/enable');
    assert.equal(on.status, 200);
    assert.equal(on.body.disabled, false);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.access_token)).status, 401, 'the grant ended: its token stays revoked');
    assert.equal((await refresh('laptop', tokens.refresh_token, secret)).status, 400, 'and its refresh token is gone');
    const fresh = await tokensFor('laptop', secret);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, fresh.access_token)).status, 200, 'a new sign-in works');
  });

  test('a read-only client can be disabled too; PUT/PATCH with disabled flips the same switch', async () => {
    assert.equal((await admin.post('/admin/clients/ci-config/disable', {})).status, 200);
    const refused = await fetch(`${base}/oauth/introspect`, { method: 'POST', headers: basic('ci-config', CONFIG_SECRET), body: new URLSearchParams({ token: 'x' }) });
    assert.equal(refused.status, 401);
    assert.equal((await admin.post('/admin/clients/ci-config/enable', {})).status, 200);
    assert.equal((await fetch(`${base}/oauth/introspect`, { method: 'POST', headers: basic('ci-config', CONFIG_SECRET), body: new URLSearchParams({ token: 'x' }) })).status, 200);

    const tokens = await tokensFor('ci-bot', (await admin.post('/admin/clients/ci-bot/secret', {})).body.client_secret);
    const patched = await admin.call('PATCH', '/admin/clients/ci-bot', { disabled: true });
    assert.deepEqual([patched.status, patched.body.disabled, patched.body.switch.by], [200, true, 'carol']);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.access_token)).reason, 'client_disabled');
    assert.equal((await admin.call('PATCH', '/admin/clients/ci-bot', { disabled: false })).body.disabled, false);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.access_token)).status, 401, 'its grants ended');
    const fresh = await tokensFor('ci-bot', (await admin.post('/admin/clients/ci-bot/secret', {})).body.client_secret);
    assert.equal((await callMethod(`${base}/mcp/team/demo`, fresh.access_token, 'tools/list')).status, 200, 'a new sign-in works (ci-bot holds mcp:read by now)');
    const bad = await admin.post('/admin/clients/ci-bot/disable', { reason: 'x'.repeat(501) });
    assert.equal(bad.status, 400);
  });

  test("an admin cannot disable or delete the client of their own token (409)", async () => {
    for (const [method, path, body] of [
      ['POST', `/admin/clients/${carolClientId}/disable`, {}],
      ['PATCH', `/admin/clients/${carolClientId}`, { disabled: true }],
      ['DELETE', `/admin/clients/${carolClientId}`, undefined],
    ] as const) {
      const res = await admin.call(method, path, body);
      assert.equal(res.status, 409, `${method} ${path}`);
      assert.match(res.body.error_description, /your own token/);
    }
    assert.equal((await admin.get('/admin/clients')).status, 200, 'still in');
  });

  test('deleting a client ends its refresh tokens and its access tokens at once; it is gone', async () => {
    const created = await admin.post('/admin/clients', { client_id: 'doomed', name: 'Doomed', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] });
    assert.equal(created.status, 201);
    const tokens = await tokensFor('doomed');
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.access_token)).status, 200);
    const deleted = await admin.delete('/admin/clients/doomed');
    assert.equal(deleted.status, 204);
    assert.equal((await admin.get('/admin/clients/doomed')).status, 404);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.access_token)).reason, 'client_disabled');
    const refreshed = await refresh('doomed', tokens.refresh_token);
    assert.equal(refreshed.status, 401);
    assert.equal((await f.registry.store.findBy('refresh_tokens', 'client', 'doomed')).length, 0);
    // The id can be used again, and the new client starts enabled.
    const again = await admin.post('/admin/clients', { client_id: 'doomed', name: 'Reborn', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] });
    assert.equal(again.status, 201);
    assert.equal(again.body.disabled, false);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, (await tokensFor('doomed')).access_token)).status, 200);
  });
});

test('no admin answer ever held a client secret or a secret hash', () => {
  const all = seen.join('\n');
  assert.ok(!all.includes(CONFIG_SECRET));
  assert.ok(!all.includes('client_secret_hash'));
  // Secrets appear only in the answers that made them (create and /secret).
  const secrets = seen.flatMap((s) => [...s.matchAll(/"client_secret":"([^"]+)"/g)].map((m) => m[1]!));
  for (const secret of secrets) assert.equal(seen.filter((s) => s.includes(secret)).length, 1, 'a secret shown twice');
});
