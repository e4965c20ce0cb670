import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { connectThroughIdp, federatedTokens, IDP_CLIENT_ID, IDP_CLIENT_SECRET, signInThroughIdp, startFederatedRegistry, type FederatedRegistry } from '../helpers/federated.ts';
import { authorizeUrl, pkce, REDIRECT, registerClient, tokenRequest } from '../helpers/oauth.ts';
import { foreignToken, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { UserAgent } from '../helpers/user-agent.ts';

// oauth_server.mode federated against a real OpenID Connect provider
// (oidc-provider): people sign in at the IdP, the registry validates what
// comes back (state, RFC 9207 iss, code + PKCE, ID token: signature, iss, aud,
// exp, nonce) and issues its own tokens with default and admin scopes. Each
// way the callback can go wrong is a test, named after the rule.

const PEOPLE = {
  alice: { sub: 'alice-1', login: 'alice', password: 'alice-pw', email: 'alice@example.com', email_verified: true, name: 'Alice Example', groups: ['eng'] },
  boss: { sub: 'boss-1', login: 'boss', password: 'boss-pw', email: 'Boss@Example.com', email_verified: true, name: 'The Boss' },
  mallory: { sub: 'mallory-1', login: 'mallory', password: 'mallory-pw', email: 'mallory@elsewhere.example', email_verified: true, name: 'Mallory' },
  unverified: { sub: 'unverified-1', login: 'unverified', password: 'unverified-pw', email: 'unverified@example.com', email_verified: false, name: 'Not Verified' },
};
const person = (p: { login: string; password: string }) => ({ login: p.login, password: p.password });

let idp: TestIdp;
let f: FederatedRegistry;
let base: string;

before(async () => {
  idp = await startOidcProvider({ accounts: Object.values(PEOPLE).map((p) => ({ ...p, sub: p.login })) });
  f = await startFederatedRegistry({
    upstream_issuer: idp.issuer,
    scopes: ['openid', 'email', 'profile', 'groups'],
    allowed_domains: ['example.com'],
    default_scopes: ['mcp:read', 'mcp:write'],
    admin_users: ['boss@example.com'],
    admin_scopes: ['mcp:read', 'mcp:write', 'mcp:admin'],
  });
  base = f.registry.url;
  await idp.addClient({ client_id: IDP_CLIENT_ID, client_secret: IDP_CLIENT_SECRET, redirect_uris: [`${base}/oauth/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
});
after(async () => {
  await f?.close();
  await idp?.close();
});

/** A fresh authorization request of a freshly registered client. */
async function authorization(extra: Record<string, string> = {}) {
  const { client_id } = await registerClient(base);
  const { verifier, challenge } = pkce();
  return { clientId: client_id, verifier, url: authorizeUrl(base, { response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'st', ...extra }) };
}

function expectPage(result: { page?: { status: number; html: string } | undefined; landed?: URL | undefined }, status: number, text: RegExp) {
  assert.equal(result.landed, undefined, `expected an error page, got a redirect to ${result.landed}`);
  assert.equal(result.page?.status, status, result.page?.html);
  assert.match(result.page!.html, text);
}

function expectAccessDenied(landed: URL | undefined, description: RegExp) {
  assert.ok(landed, 'the browser went back to the client');
  assert.equal(landed.searchParams.get('error'), 'access_denied');
  assert.match(landed.searchParams.get('error_description')!, description);
  assert.equal(landed.searchParams.get('state'), 'st');
  assert.equal(landed.searchParams.get('iss'), base);
  assert.equal(landed.searchParams.get('code'), null);
}

/** Run a sign-in with the IdP's token response rewritten (a tampered ID token). */
async function withTamperedIdToken(change: (claims: Record<string, unknown>) => Promise<string>) {
  idp.onTokenResponse = async (body) => ({ ...body, id_token: await change(decodeJwt(String(body.id_token)) as Record<string, unknown>) });
  try {
    return await signInThroughIdp((await authorization()).url, person(PEOPLE.alice));
  } finally {
    idp.onTokenResponse = undefined;
  }
}

describe('signing in at the upstream OpenID Connect provider', () => {
  test('the authorize endpoint sends the browser to the IdP with PKCE S256, state, nonce and the registry\'s callback', async () => {
    const res = await fetch((await authorization()).url, { redirect: 'manual' });
    assert.equal(res.status, 303);
    const to = new URL(res.headers.get('location')!);
    assert.equal(`${to.origin}${to.pathname}`, `${idp.issuer}/auth`);
    assert.equal(to.searchParams.get('client_id'), IDP_CLIENT_ID);
    assert.equal(to.searchParams.get('redirect_uri'), `${base}/oauth/callback`);
    assert.equal(to.searchParams.get('response_type'), 'code');
    assert.equal(to.searchParams.get('scope'), 'openid email profile groups');
    assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
    assert.match(to.searchParams.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(to.searchParams.get('nonce')!.length >= 32);
    assert.ok(to.searchParams.get('state')!.length >= 60);
    assert.equal(to.searchParams.get('client_secret'), null);
  });

  test('a person of an allowed domain signs in and gets the registry\'s own token with default_scopes', async () => {
    const { tokens } = await federatedTokens(base, person(PEOPLE.alice), { resource: `${base}/mcp/team/demo` });
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.iss, base, 'the registry issues its own tokens');
    assert.equal(claims.sub, 'oidc:alice');
    assert.equal(claims.email, 'alice@example.com', 'the email came from UserInfo (the ID token leaves it out)');
    assert.equal(claims.name, 'Alice Example');
    assert.equal(tokens.scope, 'mcp:read mcp:write');
    const account = (await f.registry.store.find('accounts', 'oidc:alice')) as Record<string, unknown>;
    assert.deepEqual({ provider: account.provider, username: account.username, groups: account.groups, scopes: account.scopes }, { provider: 'oidc', username: 'alice@example.com', groups: ['eng'], scopes: ['mcp:read', 'mcp:write'] });
  });

  test('an admin_users email (any case) gets admin_scopes: mcp:admin when asked for by name', async () => {
    const { tokens } = await federatedTokens(base, person(PEOPLE.boss), { scope: 'mcp:read mcp:write mcp:admin' });
    assert.deepEqual(tokens.scope.split(' ').sort(), ['mcp:admin', 'mcp:read', 'mcp:write']);
    const unasked = await federatedTokens(base, person(PEOPLE.boss));
    assert.deepEqual(unasked.tokens.scope.split(' ').sort(), ['mcp:read', 'mcp:write'], 'an MCP client asking for everything does not get mcp:admin');
  });

  test('the browser is signed in at the registry afterwards: a second client skips the IdP', async () => {
    const { ua } = await federatedTokens(base, person(PEOPLE.alice));
    const before = idp.seen.length;
    const second = await authorization();
    const result = await signInThroughIdp(second.url, person(PEOPLE.alice), { ua });
    // A new client still asks for consent, but nobody was sent to the IdP.
    assert.ok(result.landed?.searchParams.get('code'));
    assert.equal(idp.seen.slice(before).filter((s) => s.startsWith('GET /auth')).length, 0);
  });

  test('prompt=login from the client asks the IdP for a fresh sign-in', async () => {
    const res = await fetch((await authorization({ prompt: 'login' })).url, { redirect: 'manual' });
    assert.equal(new URL(res.headers.get('location')!).searchParams.get('prompt'), 'login');
  });

  test('refresh works for a federated account, and the token stays the registry\'s', async () => {
    const { clientId, tokens } = await federatedTokens(base, person(PEOPLE.alice));
    const res = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
    assert.equal(res.status, 200);
    assert.equal(decodeJwt(((await res.json()) as { access_token: string }).access_token).sub, 'oidc:alice');
  });
});

describe('a real MCP SDK client through the federated registry', () => {
  test('signs in at the IdP (dynamic registration, PKCE), calls a tool, refreshes a spoilt token and calls again', async () => {
    const { client, provider } = await connectThroughIdp(`${base}/mcp/team/demo`, '2026-07-28', person(PEOPLE.alice));
    const result = await client.callTool({ name: 'add', arguments: { a: 20, b: 22 } });
    assert.deepEqual(result.structuredContent, { sum: 42 });
    const first = provider.tokens()!;
    provider.spoilAccessToken();
    const again = await client.callTool({ name: 'echo', arguments: { message: 'after refresh' } });
    assert.deepEqual(again.content, [{ type: 'text', text: 'after refresh' }]);
    assert.notEqual(provider.tokens()!.refresh_token, first.refresh_token, 'refresh tokens rotate');
    await client.close();
  });
});

describe('the callback refuses', () => {
  test('a callback without state is an error page, not a sign-in', async () => {
    const res = await fetch(`${base}/oauth/callback?code=abc`);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /does not match a sign-in in progress here/);
  });

  test('a callback whose state names no sign-in in progress is an error page', async () => {
    const res = await fetch(`${base}/oauth/callback?code=abc&state=${'A'.repeat(32)}.${'B'.repeat(43)}`);
    assert.equal(res.status, 400);
    assert.match(res.headers.get('content-type')!, /text\/html/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
  });

  test('a state that differs from the one sent (state mismatch) is an error page', async () => {
    const { url } = await authorization();
    const { callback, ua } = await signInThroughIdp(url, person(PEOPLE.alice), { stopAtCallback: true });
    const forged = new URL(callback!);
    forged.searchParams.set('state', `${forged.searchParams.get('state')!.split('.')[0]}.${'x'.repeat(43)}`);
    const res = await ua.request(forged);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /does not match a sign-in in progress/);
  });

  test('a callback used twice is refused the second time', async () => {
    const { url } = await authorization();
    const { callback, ua } = await signInThroughIdp(url, person(PEOPLE.alice), { stopAtCallback: true });
    const first = await ua.request(callback!);
    assert.ok(first.status === 200 || first.status === 303, `the first use signs in (HTTP ${first.status})`);
    const second = await ua.request(callback!);
    assert.equal(second.status, 400);
    assert.match(await second.text(), /already used/);
  });

  test('a callback delivered to another browser is refused', async () => {
    const { url } = await authorization();
    const { callback } = await signInThroughIdp(url, person(PEOPLE.alice), { stopAtCallback: true });
    const other = new UserAgent();
    await other.request((await authorization()).url); // the other browser has its own binding cookie
    const res = await other.request(callback!);
    assert.equal(res.status, 403);
    assert.match(await res.text(), /started in another browser/);
  });

  test('an authorization response with another issuer (RFC 9207 mix-up) is refused', async () => {
    const { url } = await authorization();
    const { callback, ua } = await signInThroughIdp(url, person(PEOPLE.alice), { stopAtCallback: true });
    const mixed = new URL(callback!);
    mixed.searchParams.set('iss', 'https://evil.example');
    const res = await ua.request(mixed);
    assert.equal(res.status, 502);
    assert.match(await res.text(), /unexpected &quot;iss&quot; \(issuer\) response parameter value/);
  });

  test('the person cancelling at the IdP goes back to the client as access_denied', async () => {
    const result = await signInThroughIdp((await authorization()).url, 'cancel');
    expectAccessDenied(result.landed, /the identity provider refused the sign-in: the person cancelled the sign-in/);
  });

  test('an ID token with another nonce is refused', async () => {
    const result = await withTamperedIdToken((claims) => idp.sign({ ...claims, nonce: 'replayed-nonce' }));
    expectPage(result, 502, /unexpected ID Token &quot;nonce&quot; claim value/);
  });

  test('an ID token signed by a key the IdP never published is refused', async () => {
    const result = await withTamperedIdToken((claims) => foreignToken(claims, { kid: idp.key.kid }));
    expectPage(result, 502, /could not be verified/);
  });

  test('an ID token for another client (aud) is refused', async () => {
    const result = await withTamperedIdToken((claims) => idp.sign({ ...claims, aud: 'another-client' }));
    expectPage(result, 502, /unexpected JWT &quot;aud&quot; \(audience\) claim value/);
  });

  test('an ID token from another issuer is refused', async () => {
    const result = await withTamperedIdToken((claims) => idp.sign({ ...claims, iss: 'https://evil.example' }));
    expectPage(result, 502, /unexpected JWT &quot;iss&quot; \(issuer\) claim value/);
  });

  test('an expired ID token is refused', async () => {
    const result = await withTamperedIdToken((claims) => idp.sign({ ...claims, iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }));
    expectPage(result, 502, /unexpected JWT &quot;exp&quot; \(expiration time\) claim value, expiration is past current timestamp/);
  });

  test('a token response without an ID token is refused for an OpenID Connect IdP', async () => {
    idp.onTokenResponse = ({ id_token: _, ...rest }) => rest;
    try {
      expectPage(await signInThroughIdp((await authorization()).url, person(PEOPLE.alice)), 502, /id_token/);
    } finally {
      idp.onTokenResponse = undefined;
    }
  });

  test('a person outside allowed_domains goes back to the client as access_denied', async () => {
    const result = await signInThroughIdp((await authorization()).url, person(PEOPLE.mallory));
    expectAccessDenied(result.landed, /sign-in here is limited to accounts of example\.com/);
    assert.equal(await f.registry.store.find('accounts', 'oidc:mallory'), undefined, 'no account is remembered');
  });

  test('an unverified email of an allowed domain is not enough', async () => {
    const result = await signInThroughIdp((await authorization()).url, person(PEOPLE.unverified));
    expectAccessDenied(result.landed, /needs a verified email address of example\.com; the identity provider has not verified/);
  });

  test('a deactivated account cannot sign in again, and its refresh token is refused', async () => {
    const { clientId, tokens } = await federatedTokens(base, person(PEOPLE.boss));
    await f.registry.store.update('accounts', 'oidc:boss', (a) => ({ ...(a as object), disabled: true }));
    try {
      const refresh = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
      assert.equal(refresh.status, 400);
      assert.deepEqual(await refresh.json(), { error: 'invalid_grant', error_description: 'the user of this grant is deactivated' });
      const again = await signInThroughIdp((await authorization()).url, person(PEOPLE.boss));
      expectAccessDenied(again.landed, /deactivated/);
    } finally {
      await f.registry.store.update('accounts', 'oidc:boss', (a) => ({ ...(a as object), disabled: false }));
    }
  });

  test('no token, code or client secret appears in the log', async () => {
    const { tokens } = await federatedTokens(base, person(PEOPLE.alice));
    const log = f.registry.log.lines.join('\n');
    assert.ok(!log.includes(IDP_CLIENT_SECRET));
    assert.ok(!log.includes(tokens.access_token));
    assert.ok(!log.includes(tokens.refresh_token));
    assert.ok(!log.includes(PEOPLE.alice.password));
  });
});

describe('policy changes apply at refresh', () => {
  test('a refresh token of a person whose domain is no longer allowed is refused after a restart with the new policy', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keygate-federated-policy-'));
    try {
      let registry = await startFederatedRegistry({ upstream_issuer: idp.issuer, allowed_domains: ['example.com'] }, { dataDir, keepDataDir: true });
      await idp.addClient({ client_id: IDP_CLIENT_ID, client_secret: IDP_CLIENT_SECRET, redirect_uris: [`${base}/oauth/callback`, `${registry.registry.url}/oauth/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
      const { clientId, tokens } = await federatedTokens(registry.registry.url, person(PEOPLE.alice));
      await registry.close();
      registry = await startFederatedRegistry({ upstream_issuer: idp.issuer, allowed_domains: ['corp.example'] }, { dataDir, keepDataDir: true });
      try {
        const res = await tokenRequest(registry.registry.url, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
        assert.equal(res.status, 400);
        assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant');
      } finally {
        await registry.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await idp.addClient({ client_id: IDP_CLIENT_ID, client_secret: IDP_CLIENT_SECRET, redirect_uris: [`${base}/oauth/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
    }
  });

  test('after switching to another provider, refresh tokens of the old provider\'s accounts are refused', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keygate-federated-switch-'));
    try {
      let registry = await startFederatedRegistry({ upstream_issuer: idp.issuer }, { dataDir, keepDataDir: true });
      await idp.addClient({ client_id: IDP_CLIENT_ID, client_secret: IDP_CLIENT_SECRET, redirect_uris: [`${base}/oauth/callback`, `${registry.registry.url}/oauth/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
      const { clientId, tokens } = await federatedTokens(registry.registry.url, person(PEOPLE.alice));
      await registry.close();
      registry = await startFederatedRegistry({ provider: 'keycloak', keycloak: { server_url: 'http://127.0.0.1:9', realm: 'r' } }, { dataDir, keepDataDir: true });
      try {
        const res = await tokenRequest(registry.registry.url, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
        assert.equal(res.status, 400);
        assert.deepEqual(await res.json(), { error: 'invalid_grant', error_description: 'the user of this grant is deactivated' });
      } finally {
        await registry.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await idp.addClient({ client_id: IDP_CLIENT_ID, client_secret: IDP_CLIENT_SECRET, redirect_uris: [`${base}/oauth/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
    }
  });
});
