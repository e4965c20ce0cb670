import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ALICE, BOB, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authorizeWithLogin, parseForms, submitLogin } from '../helpers/form.ts';
import { callEcho, callMethod } from '../helpers/control.ts';
import { authorizeUrl, pkce, REDIRECT, registerClient, signIn, tokenRequest } from '../helpers/oauth.ts';

// The built-in authorization server, case by case in the order RFC 6749 /
// OAuth 2.1 process a request: metadata, authorization endpoint (client and
// redirect URI first, then what may be redirected), login, token endpoint.

let f: Fixture;
let base: string;
before(async () => {
  f = await startFixture();
  base = f.registry.url;
});
after(() => f.close());

async function expectErrorPage(url: URL, status: number, text: RegExp) {
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, status);
  assert.equal(res.headers.get('location'), null, 'an error about the client or redirect URI is never redirected');
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await res.text(), text);
}

async function expectRedirectError(url: URL, error: string) {
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, 302);
  const location = new URL(res.headers.get('location')!);
  assert.equal(`${location.origin}${location.pathname}`, REDIRECT);
  assert.equal(location.searchParams.get('error'), error);
  assert.equal(location.searchParams.get('state'), 'st');
  assert.equal(location.searchParams.get('iss'), base, 'RFC 9207: iss on error responses too');
  return location.searchParams.get('error_description')!;
}

describe('metadata (RFC 8414, RFC 9728)', () => {
  test('authorization server metadata names every endpoint, S256 only and the refresh grant', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const meta = (await (await fetch(`${base}${path}`)).json()) as Record<string, unknown>;
      assert.equal(meta.issuer, base);
      assert.equal(meta.authorization_endpoint, `${base}/oauth/authorize`);
      assert.equal(meta.token_endpoint, `${base}/oauth/token`);
      assert.equal(meta.registration_endpoint, `${base}/oauth/register`);
      assert.equal(meta.jwks_uri, `${base}/oauth/jwks`);
      assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
      assert.deepEqual(meta.grant_types_supported, ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange']);
      assert.equal(meta.authorization_response_iss_parameter_supported, true);
    }
  });

  test('protected resource metadata exists for the registry and, path-inserted, for each MCP endpoint', async () => {
    const root = (await (await fetch(`${base}/.well-known/oauth-protected-resource`)).json()) as Record<string, unknown>;
    assert.equal(root.resource, base);
    assert.deepEqual(root.authorization_servers, [base]);
    const endpoint = (await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp/team/demo`)).json()) as Record<string, unknown>;
    assert.equal(endpoint.resource, `${base}/mcp/team/demo`);
    const outside = await fetch(`${base}/.well-known/oauth-protected-resource/api/v1`);
    assert.equal(outside.status, 404, 'only the registry and MCP endpoints are protected resources');
    const deeper = await fetch(`${base}/.well-known/oauth-protected-resource/mcp/team/demo/more`);
    assert.equal(deeper.status, 404);
  });

  test('the JWKS publishes the public signing key with its kid, and nothing private', async () => {
    const jwks = (await (await fetch(`${base}/oauth/jwks`)).json()) as { keys: Record<string, unknown>[] };
    assert.equal(jwks.keys.length, 1);
    const key = jwks.keys[0]!;
    assert.equal(key.kid, f.registry.registry.signingKey.kid);
    assert.equal(key.alg, 'ES256');
    assert.equal(key.d, undefined);
  });
});

describe('authorization endpoint', () => {
  let clientId: string;
  const { challenge } = pkce();
  const good = () => ({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'st' });
  before(async () => {
    clientId = (await registerClient(base)).client_id;
  });

  test('an unknown client gets an error page, not a redirect', async () => {
    await expectErrorPage(authorizeUrl(base, { ...good(), client_id: 'no-such-client' }), 400, /not registered/);
  });

  test('an unregistered redirect URI gets an error page, not a redirect', async () => {
    await expectErrorPage(authorizeUrl(base, { ...good(), redirect_uri: 'https://attacker.example/callback' }), 400, /redirect_uri is not registered/);
    await expectErrorPage(authorizeUrl(base, { ...good(), redirect_uri: `${REDIRECT}/extra` }), 400, /redirect_uri is not registered/);
    await expectErrorPage(authorizeUrl(base, { ...good(), redirect_uri: 'http://localhost:43210/callback' }), 400, /redirect_uri is not registered/);
  });

  test('a loopback redirect URI matches on any port (RFC 8252 §7.3)', async () => {
    const res = await fetch(authorizeUrl(base, { ...good(), redirect_uri: 'http://127.0.0.1:5999/callback' }), { redirect: 'manual' });
    assert.equal(res.status, 200);
  });

  test('a repeated parameter is refused', async () => {
    await expectErrorPage(authorizeUrl(base, { ...good(), client_id: [clientId, clientId] }), 400, /must not be repeated/);
  });

  test('without PKCE the request goes back to the client as invalid_request', async () => {
    const description = await expectRedirectError(authorizeUrl(base, { ...good(), code_challenge: undefined, code_challenge_method: undefined }), 'invalid_request');
    assert.match(description, /code_challenge is required/);
  });

  test('PKCE method plain is refused, and so is a missing method (which means plain)', async () => {
    assert.match(await expectRedirectError(authorizeUrl(base, { ...good(), code_challenge_method: 'plain' }), 'invalid_request'), /plain is not allowed/);
    assert.match(await expectRedirectError(authorizeUrl(base, { ...good(), code_challenge_method: undefined }), 'invalid_request'), /must be S256/);
  });

  test('response_type other than code is unsupported_response_type', async () => {
    await expectRedirectError(authorizeUrl(base, { ...good(), response_type: 'token' }), 'unsupported_response_type');
  });

  test('an unknown scope is invalid_scope', async () => {
    await expectRedirectError(authorizeUrl(base, { ...good(), scope: 'mcp:read root' }), 'invalid_scope');
  });

  test('a resource this server does not protect is invalid_target (RFC 8707)', async () => {
    await expectRedirectError(authorizeUrl(base, { ...good(), resource: 'https://elsewhere.example/mcp' }), 'invalid_target');
    await expectRedirectError(authorizeUrl(base, { ...good(), resource: `${base}/mcp/team#frag` }), 'invalid_target');
    await expectRedirectError(authorizeUrl(base, { ...good(), resource: `${base}/api/v1` }), 'invalid_target');
  });

  test('a gateway that does not exist is invalid_target once someone has signed in, not before (an anonymous caller cannot probe for private gateways)', async () => {
    const url = authorizeUrl(base, { ...good(), resource: `${base}/mcp/no-such-gateway` });
    const page = await fetch(url, { redirect: 'manual' });
    assert.equal(page.status, 200, 'the login form, as for a gateway that exists');
    const landed = await authorizeWithLogin(url, ALICE.username, ALICE.password);
    assert.equal(landed.get('error'), 'invalid_target');
    assert.equal(landed.get('code'), null);
  });

  test('the login page is a plain form with username, password and one submit button; it cannot be framed', async () => {
    const res = await fetch(authorizeUrl(base, good()));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = await res.text();
    assert.doesNotMatch(html, /<script/i);
    const [form] = parseForms(html, res.url);
    assert.ok(form);
    assert.equal(form.method, 'post');
    assert.ok(form.inputNames.includes('username') && form.inputNames.includes('password'));
    assert.equal(form.buttons.length, 1);
  });

  test('a wrong password and an unknown user get the same page and status, and no redirect', async () => {
    const wrong = await submitLogin(authorizeUrl(base, good()), ALICE.username, 'not the password');
    const unknown = await submitLogin(authorizeUrl(base, good()), 'mallory', 'whatever');
    for (const res of [wrong, unknown]) {
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('location'), null);
      assert.match(await res.text(), /Wrong username or password/);
    }
  });

  test('success redirects with code, state and iss (RFC 9207)', async () => {
    const params = await authorizeWithLogin(authorizeUrl(base, good()), ALICE.username, ALICE.password);
    assert.match(params.get('code')!, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(params.get('state'), 'st');
    assert.equal(params.get('iss'), base);
  });
});

describe('token endpoint', () => {
  async function codeFor(user = ALICE, extra: Record<string, string> = {}) {
    const { client_id } = await registerClient(base);
    const { verifier, challenge } = pkce();
    const params = await authorizeWithLogin(
      authorizeUrl(base, { response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', ...extra }),
      user.username,
      user.password,
    );
    return { clientId: client_id, verifier, code: params.get('code')! };
  }
  const redeem = (c: { clientId: string; verifier: string; code: string }, overrides: Record<string, string> = {}) =>
    tokenRequest(base, { grant_type: 'authorization_code', client_id: c.clientId, code: c.code, redirect_uri: REDIRECT, code_verifier: c.verifier, ...overrides });

  async function expectTokenError(res: Response, error: string, status = 400) {
    assert.equal(res.status, status);
    const body = (await res.json()) as { error: string; error_description: string };
    assert.equal(body.error, error);
    assert.ok(body.error_description.length > 0);
    return body.error_description;
  }

  test('a good code exchange returns a short-lived JWT for the resource, a refresh token, and no-store', async () => {
    const c = await codeFor(ALICE, { resource: `${base}/mcp/team` });
    const res = await redeem(c);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const tokens = (await res.json()) as Record<string, string | number>;
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.expires_in, 3600);
    assert.equal(tokens.scope, 'mcp:read mcp:write');
    const [header, payload] = String(tokens.access_token).split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'ES256');
    assert.equal(payload.aud, `${base}/mcp/team`);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.exp - payload.iat, 3600);
    // Refresh tokens are opaque and only their hash is stored.
    assert.match(String(tokens.refresh_token), /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!JSON.stringify(await f.registry.store.findBy('refresh_tokens', 'subject', 'alice')).includes(String(tokens.refresh_token)));
  });

  test('a user is granted only the scopes they hold', async () => {
    const c = await codeFor(BOB, { scope: 'mcp:read mcp:write' });
    const tokens = (await (await redeem(c)).json()) as { scope: string };
    assert.equal(tokens.scope, 'mcp:read');
  });

  test('a missing code_verifier is invalid_request', async () => {
    const c = await codeFor();
    const body = new URLSearchParams({ grant_type: 'authorization_code', client_id: c.clientId, code: c.code, redirect_uri: REDIRECT });
    assert.match(await expectTokenError(await fetch(`${base}/oauth/token`, { method: 'POST', body }), 'invalid_request'), /code_verifier is missing \(PKCE is required\)/);
  });

  test('a wrong code_verifier is invalid_grant', async () => {
    const c = await codeFor();
    assert.match(await expectTokenError(await redeem(c, { code_verifier: pkce().verifier }), 'invalid_grant'), /code_verifier does not match/);
  });

  test('a different redirect_uri is invalid_grant', async () => {
    const c = await codeFor();
    await expectTokenError(await redeem(c, { redirect_uri: 'http://127.0.0.1:43210/other' }), 'invalid_grant');
  });

  test('a code issued to another client is invalid_grant', async () => {
    const c = await codeFor();
    const other = await registerClient(base);
    await expectTokenError(await redeem(c, { client_id: other.client_id }), 'invalid_grant');
  });

  test('a reused authorization code is refused and revokes the tokens issued from it: the refresh token, and the access token at the very next MCP request', async () => {
    const c = await codeFor(ALICE, { resource: `${base}/mcp/team` });
    const first = (await (await redeem(c)).json()) as { access_token: string; refresh_token: string };
    // Valid, and now in the token cache of the gateway (raw and merged endpoints).
    for (const url of [`${base}/mcp/team/demo`, `${base}/mcp/team`]) assert.equal((await callEcho(url, first.access_token)).status, 200, url);
    assert.match(await expectTokenError(await redeem(c), 'invalid_grant'), /already used/);
    const refresh = await tokenRequest(base, { grant_type: 'refresh_token', client_id: c.clientId, refresh_token: first.refresh_token });
    await expectTokenError(refresh, 'invalid_grant');
    for (const url of [`${base}/mcp/team/demo`, `${base}/mcp/team`]) {
      const call = await callEcho(url, first.access_token);
      assert.deepEqual([call.status, call.reason], [401, 'code_replayed'], url);
      assert.match(call.message!, /the authorization code it came from was used twice/);
    }
  });

  test('an expired authorization code is invalid_grant', async () => {
    const c = await codeFor();
    const { tokenHash } = await import('../../server/oauth/grants.ts');
    const { CLOCK_LEEWAY } = await import('../../server/inbound/registry-jwt.ts');
    // Past its lifetime and the clock leeway between instances.
    await f.registry.store.update('authorization_codes', tokenHash(c.code), (current) => ({ ...(current as object), expires_at: Math.floor(Date.now() / 1000) - CLOCK_LEEWAY - 1 }));
    assert.match(await expectTokenError(await redeem(c), 'invalid_grant'), /expired/);
  });

  test('refresh rotates the refresh token; reusing a rotated one revokes the whole family', async () => {
    const { clientId, tokens } = await signIn(base, ALICE);
    const rotated = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
    assert.equal(rotated.status, 200);
    const next = (await rotated.json()) as { refresh_token: string };
    assert.notEqual(next.refresh_token, tokens.refresh_token);
    assert.match(await expectTokenError(await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token }), 'invalid_grant'), /already used/);
    // The newest token of the family is gone too.
    await expectTokenError(await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: next.refresh_token }), 'invalid_grant');
  });

  test('a replayed refresh token ends the grant: the newest access token (AT2) is refused at the very next MCP request, cache or not', async () => {
    const { clientId, tokens } = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    const at2 = (await (await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token })).json()) as { access_token: string };
    for (const token of [tokens.access_token, at2.access_token]) assert.equal((await callEcho(`${base}/mcp/team/demo`, token)).status, 200, 'valid, and cached');
    await expectTokenError(await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token }), 'invalid_grant');
    for (const token of [tokens.access_token, at2.access_token]) {
      for (const url of [`${base}/mcp/team/demo`, `${base}/mcp/team`]) {
        const call = await callEcho(url, token);
        assert.deepEqual([call.status, call.reason], [401, 'refresh_token_replayed'], url);
      }
    }
    // RFC 6750 §3: the challenge says so, in the protocol's own form.
    const res = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${at2.access_token}` } });
    assert.equal(res.status, 401);
  });

  test('a refresh refused for a scope or a resource it was not granted does not use the refresh token up: the retry works', async () => {
    const { clientId, tokens } = await signIn(base, ALICE, { resource: `${base}/mcp/team`, scope: 'mcp:read offline_access' });
    await expectTokenError(await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token, scope: 'mcp:read mcp:write' }), 'invalid_scope');
    await expectTokenError(await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token, resource: base }), 'invalid_target');
    const retried = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
    assert.equal(retried.status, 200, 'not counted as a replay');
    const { access_token } = (await retried.json()) as { access_token: string };
    assert.equal((await callMethod(`${base}/mcp/team/demo`, access_token, 'tools/list')).status, 200);
    // And the grant lives on: the original access token still works.
    assert.equal((await callMethod(`${base}/mcp/team/demo`, tokens.access_token, 'tools/list')).status, 200);
  });

  test('refresh may narrow the resource but not widen it, nor the scope', async () => {
    const { clientId, tokens } = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    const widened = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token, resource: base });
    await expectTokenError(widened, 'invalid_target');
    const again = await signIn(base, ALICE, { resource: `${base}/mcp/team`, scope: 'mcp:read' });
    await expectTokenError(await tokenRequest(base, { grant_type: 'refresh_token', client_id: again.clientId, refresh_token: again.tokens.refresh_token, scope: 'mcp:read mcp:write' }), 'invalid_scope');
    const third = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    const narrowed = await tokenRequest(base, { grant_type: 'refresh_token', client_id: third.clientId, refresh_token: third.tokens.refresh_token, resource: `${base}/mcp/team/demo` });
    assert.equal(narrowed.status, 200);
    const { access_token } = (await narrowed.json()) as { access_token: string };
    assert.equal(JSON.parse(Buffer.from(access_token.split('.')[1]!, 'base64url').toString()).aud, `${base}/mcp/team/demo`);
  });

  test('a refresh token belongs to its client', async () => {
    const { tokens } = await signIn(base, ALICE);
    const other = await registerClient(base);
    await expectTokenError(await tokenRequest(base, { grant_type: 'refresh_token', client_id: other.client_id, refresh_token: tokens.refresh_token }), 'invalid_grant');
  });

  test('an unknown grant type, a missing grant type and a JSON body are refused', async () => {
    await expectTokenError(await tokenRequest(base, { grant_type: 'password', username: 'alice', password: 'x' }), 'unsupported_grant_type');
    await expectTokenError(await tokenRequest(base, {}), 'invalid_request');
    const json = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"refresh_token"}' });
    await expectTokenError(json, 'invalid_request');
  });

  test('a confidential client must authenticate with its registered method', async () => {
    const { client_id, client_secret } = await registerClient(base, { token_endpoint_auth_method: 'client_secret_basic' });
    assert.ok(client_secret);
    const { verifier, challenge } = pkce();
    const params = await authorizeWithLogin(
      authorizeUrl(base, { response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' }),
      ALICE.username,
      ALICE.password,
    );
    const body = { grant_type: 'authorization_code', code: params.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier };
    const noAuth = await tokenRequest(base, { ...body, client_id });
    await expectTokenError(noAuth, 'invalid_client', 401);
    const wrong = await tokenRequest(base, body, { authorization: `Basic ${Buffer.from(`${client_id}:nope`).toString('base64')}` });
    await expectTokenError(wrong, 'invalid_client', 401);
    assert.match(wrong.headers.get('www-authenticate')!, /^Basic/);
    const right = await tokenRequest(base, body, { authorization: `Basic ${Buffer.from(`${client_id}:${client_secret}`).toString('base64')}` });
    assert.equal(right.status, 200);
  });
});

describe('dynamic client registration (RFC 7591)', () => {
  const register = (body: unknown) => fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test("VS Code's registration succeeds", async () => {
    const res = await register({
      client_name: 'Visual Studio Code',
      client_uri: 'https://code.visualstudio.com',
      redirect_uris: ['https://insiders.vscode.dev/redirect', 'https://vscode.dev/redirect', 'http://127.0.0.1/', 'http://127.0.0.1:33418/'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    });
    assert.equal(res.status, 201);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(typeof body.client_id, 'string');
    assert.equal(body.client_secret, undefined, 'a public client gets no secret');
  });

  test('dangerous or malformed redirect URIs are refused with invalid_redirect_uri', async () => {
    for (const uri of ['javascript:alert(1)', 'JavaScript:alert(1)', ' javascript:alert(1)', 'java\tscript:alert(1)', 'data:text/html,hi', 'file:///etc/passwd', 'http://example.com/cb', 'https://example.com/cb#frag', 'not a uri']) {
      const res = await register({ redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      assert.equal(res.status, 400, uri);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_redirect_uri', uri);
    }
  });

  test('invalid metadata is invalid_client_metadata; a malformed body is invalid_request', async () => {
    const bad = await register({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt' });
    assert.equal(((await bad.json()) as { error: string }).error, 'invalid_client_metadata');
    const broken = await fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"redirect_uris": [' });
    assert.equal(broken.status, 400);
    assert.equal(((await broken.json()) as { error: string }).error, 'invalid_request');
  });
});
