import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { federatedSection } from '../../server/config/sections/federated.ts';
import { FederatedPolicy } from '../../server/oauth/federated/policy.ts';
import { presetFor } from '../../server/oauth/federated/presets.ts';
import { readProfile } from '../../server/oauth/federated/profile.ts';
import { UpstreamIdp } from '../../server/oauth/federated/upstream.ts';
import { memoryLogger } from '../../server/log.ts';

// The presets as a table (after VS Code's github-authentication flows): for
// each provider, the endpoints it builds, what it asks for, and how it reads
// the person back.

const preset = (f: Record<string, unknown>) => presetFor(federatedSection.parse({ client_id: 'c', client_secret_env: 'S', ...f }));

describe('presets build the endpoints MXCP documents', () => {
  const table: [string, Record<string, unknown>, { protocol: string; issuer: string; authorization?: string; token?: string; userinfo?: string; jwks?: string; userApi?: string; scopes: string[]; params?: Record<string, string> }][] = [
    ['oidc (any issuer, discovered)', { upstream_issuer: 'https://idp.example.com/tenant/' }, { protocol: 'oidc', issuer: 'https://idp.example.com/tenant', scopes: ['openid', 'email', 'profile'] }],
    [
      'google',
      { provider: 'google', google: { hosted_domain: 'Example.com' } },
      { protocol: 'oidc', issuer: 'https://accounts.google.com', authorization: 'https://accounts.google.com/o/oauth2/v2/auth', token: 'https://oauth2.googleapis.com/token', userinfo: 'https://openidconnect.googleapis.com/v1/userinfo', jwks: 'https://www.googleapis.com/oauth2/v3/certs', scopes: ['openid', 'email', 'profile'], params: { hd: 'example.com' } },
    ],
    [
      'keycloak (server_url + realm)',
      { provider: 'keycloak', keycloak: { server_url: 'https://keycloak.example.com/', realm: 'my-realm' } },
      {
        protocol: 'oidc',
        issuer: 'https://keycloak.example.com/realms/my-realm',
        authorization: 'https://keycloak.example.com/realms/my-realm/protocol/openid-connect/auth',
        token: 'https://keycloak.example.com/realms/my-realm/protocol/openid-connect/token',
        userinfo: 'https://keycloak.example.com/realms/my-realm/protocol/openid-connect/userinfo',
        jwks: 'https://keycloak.example.com/realms/my-realm/protocol/openid-connect/certs',
        scopes: ['openid', 'email', 'profile'],
      },
    ],
    [
      'salesforce (production)',
      { provider: 'salesforce' },
      { protocol: 'oidc', issuer: 'https://login.salesforce.com', authorization: 'https://login.salesforce.com/services/oauth2/authorize', token: 'https://login.salesforce.com/services/oauth2/token', userinfo: 'https://login.salesforce.com/services/oauth2/userinfo', jwks: 'https://login.salesforce.com/id/keys', scopes: ['openid', 'email', 'profile'] },
    ],
    [
      'salesforce (sandbox login_url)',
      { provider: 'salesforce', salesforce: { login_url: 'https://test.salesforce.com' } },
      { protocol: 'oidc', issuer: 'https://test.salesforce.com', authorization: 'https://test.salesforce.com/services/oauth2/authorize', token: 'https://test.salesforce.com/services/oauth2/token', scopes: ['openid', 'email', 'profile'] },
    ],
    ['github (github.com)', { provider: 'github' }, { protocol: 'oauth2', issuer: 'https://github.com', authorization: 'https://github.com/login/oauth/authorize', token: 'https://github.com/login/oauth/access_token', userApi: 'https://api.github.com', scopes: ['read:user', 'user:email'] }],
    [
      'github (Enterprise Server at server_url)',
      { provider: 'github', github: { server_url: 'https://github.example.com/' } },
      { protocol: 'oauth2', issuer: 'https://github.example.com', authorization: 'https://github.example.com/login/oauth/authorize', token: 'https://github.example.com/login/oauth/access_token', userApi: 'https://github.example.com/api/v3', scopes: ['read:user', 'user:email'] },
    ],
    [
      'atlassian',
      { provider: 'atlassian' },
      { protocol: 'oauth2', issuer: 'https://auth.atlassian.com', authorization: 'https://auth.atlassian.com/authorize', token: 'https://auth.atlassian.com/oauth/token', userApi: 'https://api.atlassian.com/me', scopes: ['read:me'], params: { audience: 'api.atlassian.com', prompt: 'consent' } },
    ],
  ];
  for (const [name, config, want] of table) {
    test(name, () => {
      const p = preset(config);
      assert.equal(p.protocol, want.protocol);
      assert.equal(p.issuer, want.issuer);
      if (want.authorization) assert.equal(p.metadata?.authorization_endpoint, want.authorization);
      if (want.token) assert.equal(p.metadata?.token_endpoint, want.token);
      if (want.userinfo) assert.equal(p.metadata?.userinfo_endpoint, want.userinfo);
      if (want.jwks) assert.equal(p.metadata?.jwks_uri, want.jwks);
      if (want.protocol === 'oidc' && !want.authorization) assert.equal(p.metadata, undefined, 'discovered from the issuer');
      assert.equal(p.userApi, want.userApi);
      assert.deepEqual(p.scopes, want.scopes);
      assert.deepEqual(p.authorizeParams, want.params ?? {});
    });
  }

  test('the authorization request of a preset carries its extra parameters, PKCE and (OIDC only) a nonce', async () => {
    for (const [config, nonce] of [[{ provider: 'atlassian' }, false], [{ provider: 'keycloak', keycloak: { server_url: 'https://kc.example', realm: 'r' } }, true]] as const) {
      const p = preset(config);
      const upstream = new UpstreamIdp({ preset: p, clientId: 'app', clientSecret: 's', redirectUri: 'https://kg.example/oauth/callback', scopes: p.scopes, fetch: () => Promise.reject(new Error('no fetch')), log: memoryLogger() });
      const request = UpstreamIdp.newRequest('i'.repeat(32), p.protocol === 'oidc');
      const url = await upstream.authorizationUrl(request, { forceLogin: true });
      assert.equal(url.searchParams.get('redirect_uri'), 'https://kg.example/oauth/callback');
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(url.searchParams.get('state')!.startsWith(`${'i'.repeat(32)}.`));
      assert.equal(url.searchParams.has('nonce'), nonce);
      assert.equal(url.searchParams.get('prompt'), nonce ? 'login' : 'consent', 'prompt=login for OIDC; Atlassian always asks consent');
      for (const [k, v] of Object.entries(p.authorizeParams)) assert.equal(url.searchParams.get(k), v);
    }
  });
});

describe('reading the person', () => {
  const fakeFetch = (routes: Record<string, unknown>) => async (input: string | URL | Request) => {
    const url = input.toString();
    if (!(url in routes)) return new Response('not found', { status: 404 });
    return Response.json(routes[url]);
  };
  const redeemed = (p: ReturnType<typeof preset>) => ({ accessToken: 't', idToken: undefined, as: p.metadata! });

  test('Atlassian: /me names the account; an email the response does not call unverified counts', async () => {
    const p = preset({ provider: 'atlassian' });
    const person = await readProfile(p, redeemed(p), fakeFetch({ 'https://api.atlassian.com/me': { account_id: '5b10ac8d82e05b22cc7d4ef5', email: 'mia@example.com', name: 'Mia Krystof', nickname: 'mkrystof', account_status: 'active' } }));
    assert.deepEqual(person, { sub: '5b10ac8d82e05b22cc7d4ef5', username: 'mkrystof', name: 'Mia Krystof', email: 'mia@example.com', unverifiedEmail: undefined, groups: [], roles: [] });
  });

  test('Atlassian: email_verified false is not a verified address', async () => {
    const p = preset({ provider: 'atlassian' });
    const person = await readProfile(p, redeemed(p), fakeFetch({ 'https://api.atlassian.com/me': { account_id: 'a1', email: 'x@example.com', email_verified: false } }));
    assert.equal(person.email, undefined);
    assert.equal(person.unverifiedEmail, 'x@example.com');
  });

  test('a user API answering an unexpected document is a clear error', async () => {
    const p = preset({ provider: 'github' });
    await assert.rejects(readProfile(p, redeemed(p), fakeFetch({ 'https://api.github.com/user': { login: 'x' } })), /GitHub's \/user API answered an unexpected document \(id: /);
  });

  test('an ID token without email_verified true gives no verified email', async () => {
    const p = preset({ upstream_issuer: 'https://idp.example' });
    const person = await readProfile(p, { accessToken: 't', idToken: { sub: 's', email: 'e@example.com', name: 'N', iss: '', aud: '', iat: 0, exp: 0 }, as: { issuer: 'https://idp.example' } }, fakeFetch({}));
    assert.equal(person.email, undefined);
    assert.equal(person.username, 's', 'an unverified email is not a username either');
  });
});

describe('the policy', () => {
  const policy = (f: Record<string, unknown>) => new FederatedPolicy(federatedSection.parse({ client_id: 'c', client_secret_env: 'S', upstream_issuer: 'https://idp.example', ...f }), preset({ upstream_issuer: 'https://idp.example', ...f }));

  test('allowed_domains compares the domain of a verified email, case-insensitively, exactly (no subdomains)', () => {
    const p = policy({ allowed_domains: ['example.com'] });
    assert.equal(p.refusal({ email: 'A@EXAMPLE.COM' }), undefined);
    assert.match(p.refusal({ email: 'a@sub.example.com' })!, /limited to accounts of example\.com/);
    assert.match(p.refusal({ email: 'a@example.com.evil.example' })!, /limited/);
    assert.match(p.refusal({ email: undefined })!, /named none/);
  });

  test('admin_users by username count only where the IdP controls usernames', () => {
    const generic = policy({ admin_users: ['root'], admin_scopes: ['mcp:admin'] });
    assert.deepEqual(generic.scopes({ email: undefined, username: 'root' }), ['mcp:read', 'mcp:write'], 'a preferred_username the person may choose is not trusted');
    const github = new FederatedPolicy(federatedSection.parse({ provider: 'github', client_id: 'c', client_secret_env: 'S', admin_users: ['root'], admin_scopes: ['mcp:admin'] }), preset({ provider: 'github' }));
    assert.deepEqual(github.scopes({ email: undefined, username: 'Root' }), ['mcp:read', 'mcp:write', 'mcp:admin']);
  });
});
