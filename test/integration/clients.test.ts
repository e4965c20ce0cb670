import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authorizeWithLogin, parseForms, submitLogin } from '../helpers/form.ts';
import { newClient } from '../helpers/mcp-oauth.ts';
import { authorizeUrl, pkce, tokenRequest } from '../helpers/oauth.ts';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

// How clients come to exist: replayed registrations of the MCP clients in use
// today, admin-configured clients, and Client ID Metadata Documents; and the
// metadata paths those clients probe.

let f: Fixture;
let base: string;
let docs: Server;
let docsBase: string;
let docFetches = 0;
const documents = new Map<string, { status?: number; body: unknown; cacheControl?: string }>();

before(async () => {
  docs = createServer((req, res) => {
    docFetches++;
    const doc = documents.get(req.url!);
    if (!doc) return void res.writeHead(404).end();
    res.writeHead(doc.status ?? 200, { 'content-type': 'application/json', ...(doc.cacheControl && { 'cache-control': doc.cacheControl }) });
    res.end(typeof doc.body === 'string' ? doc.body : JSON.stringify(doc.body));
  });
  await new Promise<void>((resolve) => docs.listen(0, '127.0.0.1', resolve));
  docsBase = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`;
  f = await startFixture((config) => {
    config.outbound = { allow_loopback: true };
    config.oauth_server.clients = [
      { client_id: 'dashboard', name: 'Team Dashboard', client_secret_env: 'DASHBOARD_SECRET', redirect_uris: ['https://dashboard.example.com/cb'], scopes: ['mcp:read'] },
      { client_id: 'cli', name: 'Keygate CLI', redirect_uris: ['http://127.0.0.1/callback'] },
    ];
  }, { DASHBOARD_SECRET: 'dashboard-secret-value' });
  base = f.registry.url;
});
after(async () => {
  docs.close();
  await f.close();
});

async function register(body: Record<string, unknown>) {
  const res = await fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Authorize with the given redirect URI, sign in, consent, and redeem the code. */
async function completeFlow(clientId: string, redirectUri: string, extra: Record<string, string> = {}, tokenExtra: Record<string, string> = {}) {
  const { verifier, challenge } = pkce();
  const callback = await authorizeWithLogin(
    authorizeUrl(base, { response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 's1', resource: `${base}/mcp/team`, ...extra }),
    ALICE.username,
    ALICE.password,
  );
  assert.equal(callback.get('state'), 's1');
  const res = await tokenRequest(base, { grant_type: 'authorization_code', client_id: clientId, code: callback.get('code')!, redirect_uri: redirectUri, code_verifier: verifier, ...tokenExtra });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { access_token: string; refresh_token: string; scope: string };
}

/** Refresh as the client would (with the resource it asked for), and return the new access token. */
async function refreshed(clientId: string, refreshToken: string): Promise<string> {
  const res = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken, resource: `${base}/mcp/team` });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { access_token: string; refresh_token: string };
  assert.notEqual(body.refresh_token, refreshToken);
  return body.access_token;
}

/** A real MCP client (2026-07-28) calls a tool with the token. */
async function callWith(token: string) {
  const client = newClient('2026-07-28');
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp/team/demo`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  const result = await client.callTool({ name: 'echo', arguments: { message: 'registered' } });
  assert.deepEqual(result.content, [{ type: 'text', text: 'registered' }]);
  await client.close();
}

describe('registrations real clients send', () => {
  test("VS Code's registration succeeds; its loopback redirect completes the flow, refreshes and calls a tool", async () => {
    const { status, body } = await register({
      client_name: 'Visual Studio Code',
      client_uri: 'https://code.visualstudio.com',
      redirect_uris: ['https://insiders.vscode.dev/redirect', 'https://vscode.dev/redirect', 'http://127.0.0.1/', 'http://127.0.0.1:33418/'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    });
    assert.equal(status, 201);
    const tokens = await completeFlow(body.client_id, 'http://127.0.0.1:51234/');
    await callWith(tokens.access_token);
    await callWith(await refreshed(body.client_id, tokens.refresh_token));
  });

  test("Cursor's three redirect URIs register in one request; its cursor:// callback completes the flow, refreshes and calls a tool", async () => {
    const { status, body } = await register({
      client_name: 'Cursor',
      redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback', 'https://www.cursor.com/agents/mcp/oauth/callback', 'http://localhost:8787/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    assert.equal(status, 201);
    assert.deepEqual(body.redirect_uris.length, 3);
    const tokens = await completeFlow(body.client_id, 'cursor://anysphere.cursor-mcp/oauth/callback');
    await callWith(tokens.access_token);
    await callWith(await refreshed(body.client_id, tokens.refresh_token));
  });

  test("claude.ai's registration (a confidential client) succeeds and completes the flow with client_secret_post", async () => {
    const web = await register({
      client_name: 'Claude',
      redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      scope: 'mcp:read mcp:write claudeai',
    });
    assert.equal(web.status, 201);
    assert.ok(web.body.client_secret, 'a confidential client gets its secret once');
    assert.equal(web.body.scope, 'mcp:read mcp:write', 'scopes this server does not know are left out of the registration');
    const tokens = await completeFlow(web.body.client_id, 'https://claude.ai/api/mcp/auth_callback', {}, { client_secret: web.body.client_secret });
    await callWith(tokens.access_token);
  });

  test('Claude Code registers on loopback and calls a tool', async () => {
    const cli = await register({ client_name: 'Claude Code (keygate)', redirect_uris: ['http://localhost:54212/callback'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    assert.equal(cli.status, 201);
    await callWith((await completeFlow(cli.body.client_id, 'http://localhost:60001/callback')).access_token);
  });

  test('application_type web refuses loopback and app-scheme redirect URIs', async () => {
    for (const uri of ['http://127.0.0.1:8080/cb', 'cursor://x/cb', 'https://localhost/cb']) {
      const { status, body } = await register({ application_type: 'web', redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      assert.equal(status, 400, uri);
      assert.equal(body.error, 'invalid_redirect_uri');
    }
    assert.equal((await register({ application_type: 'web', redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'none' })).status, 201);
  });
});

describe('clients from the configuration', () => {
  test('a confidential configured client must present its secret, and is limited to its scopes', async () => {
    const basic = { authorization: `Basic ${Buffer.from('dashboard:dashboard-secret-value').toString('base64')}` };
    const { verifier, challenge } = pkce();
    const page = await submitLogin(authorizeUrl(base, { response_type: 'code', client_id: 'dashboard', redirect_uri: 'https://dashboard.example.com/cb', code_challenge: challenge, code_challenge_method: 'S256' }), ALICE.username, ALICE.password);
    const consent = await page.text();
    assert.match(consent, /<strong>Team Dashboard<\/strong>/);
    assert.doesNotMatch(consent, /unverified/, 'an admin-configured client is named as configured');
    const form = parseForms(consent, page.url)[0]!;
    const approved = await fetch(form.action, { method: 'POST', body: new URLSearchParams([...form.fields, ['action', 'approve']]), redirect: 'manual' });
    const code = new URL(approved.headers.get('location')!).searchParams.get('code')!;
    const body = { grant_type: 'authorization_code', code, redirect_uri: 'https://dashboard.example.com/cb', code_verifier: verifier };
    assert.equal((await tokenRequest(base, { ...body, client_id: 'dashboard' })).status, 401);
    const ok = await tokenRequest(base, body, basic);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { scope: string }).scope, 'mcp:read');
  });

  test('a configured client asking for a scope beyond its own is refused with access_denied', async () => {
    const res = await fetch(authorizeUrl(base, { response_type: 'code', client_id: 'dashboard', redirect_uri: 'https://dashboard.example.com/cb', code_challenge: pkce().challenge, code_challenge_method: 'S256', scope: 'mcp:write', state: 'st' }), { redirect: 'manual' });
    assert.equal(new URL(res.headers.get('location')!).searchParams.get('error'), 'access_denied');
  });

  test('a public configured client uses PKCE alone, on any loopback port', async () => {
    await callWith((await completeFlow('cli', 'http://127.0.0.1:40123/callback')).access_token);
  });
});

describe('Client ID Metadata Documents', () => {
  const doc = (path: string, body: Record<string, unknown>, extra: { status?: number; cacheControl?: string } = {}) => {
    documents.set(path, { body, ...extra });
    return `${docsBase}${path}`;
  };

  test('the metadata says they are supported', async () => {
    const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.equal(meta.client_id_metadata_document_supported, true);
  });

  test('a client whose id is its document URL signs in; the document is fetched once and cached', async () => {
    const id = doc('/good.json', { client_id: `${docsBase}/good.json`, client_name: 'Doc Client', redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' }, { cacheControl: 'max-age=600' });
    const before = docFetches;
    const page = await submitLogin(authorizeUrl(base, { response_type: 'code', client_id: id, redirect_uri: 'http://127.0.0.1:5000/cb', code_challenge: pkce().challenge, code_challenge_method: 'S256' }), ALICE.username, ALICE.password);
    const consent = await page.text();
    assert.match(consent, /Doc Client<\/strong> <span class="muted">\(unverified name\)/);
    assert.match(consent, /127\.0\.0\.1:5000/, 'the consent page shows where the browser returns');
    await callWith((await completeFlow(id, 'http://127.0.0.1:5001/cb')).access_token);
    assert.equal(docFetches - before, 1, 'one fetch serves the authorization and token requests');
  });

  const refusals: [string, () => string, RegExp][] = [
    ['a document whose client_id is not its URL', () => doc('/liar.json', { client_id: 'https://other.example/x.json', redirect_uris: ['http://127.0.0.1/cb'] }), /is not its URL/],
    ['a document that is not JSON', () => (documents.set('/html.json', { body: '<html>' }), `${docsBase}/html.json`), /not JSON/],
    ['a missing document', () => `${docsBase}/missing.json`, /HTTP 404/],
    ['a document asking for a client secret', () => doc('/secret.json', { client_id: `${docsBase}/secret.json`, redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'client_secret_basic' }), /must use token_endpoint_auth_method none/],
    ['a document with a javascript: redirect URI', () => doc('/js.json', { client_id: `${docsBase}/js.json`, redirect_uris: ['javascript:alert(1)'] }), /bad redirect URI/],
    ['a document without redirect URIs', () => doc('/none.json', { client_id: `${docsBase}/none.json` }), /redirect_uris/],
  ];
  for (const [name, make, reason] of refusals) {
    test(`refuses ${name}, on an error page`, async () => {
      const id = make();
      const res = await fetch(authorizeUrl(base, { response_type: 'code', client_id: id, redirect_uri: 'http://127.0.0.1/cb', code_challenge: pkce().challenge, code_challenge_method: 'S256' }), { redirect: 'manual' });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('location'), null);
      assert.match(await res.text(), reason);
    });
  }

  test('a redirect URI the document does not list is refused', async () => {
    const id = doc('/narrow.json', { client_id: `${docsBase}/narrow.json`, redirect_uris: ['http://127.0.0.1/cb'] });
    const res = await fetch(authorizeUrl(base, { response_type: 'code', client_id: id, redirect_uri: 'https://attacker.example/cb', code_challenge: pkce().challenge, code_challenge_method: 'S256' }), { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
  });
});

describe('metadata where clients look for it, and the 2025-03-26 fallback endpoints', () => {
  test('path-inserted and path-appended metadata both answer', async () => {
    for (const path of ['/.well-known/oauth-authorization-server/mcp/team', '/.well-known/openid-configuration/mcp/team', '/mcp/team/.well-known/openid-configuration', '/mcp/team/.well-known/oauth-authorization-server']) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(((await res.json()) as { issuer: string }).issuer, base, path);
    }
  });

  test('/authorize, /token and /register at the root work like their /oauth twins', async () => {
    const reg = await fetch(`${base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' }) });
    assert.equal(reg.status, 201);
    const { client_id } = (await reg.json()) as { client_id: string };
    const { verifier, challenge } = pkce();
    const callback = await authorizeWithLogin(
      new URL(`${base}/authorize?${new URLSearchParams({ response_type: 'code', client_id, redirect_uri: 'http://127.0.0.1/cb', code_challenge: challenge, code_challenge_method: 'S256' })}`),
      ALICE.username,
      ALICE.password,
    );
    const res = await fetch(`${base}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code', client_id, code: callback.get('code')!, redirect_uri: 'http://127.0.0.1/cb', code_verifier: verifier }) });
    assert.equal(res.status, 200);
  });
});
