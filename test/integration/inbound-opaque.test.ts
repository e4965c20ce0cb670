import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { signIn } from '../helpers/oauth.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';

// Opaque tokens of a real external IdP (oidc-provider), judged by the IdP
// itself: RFC 7662 introspection (the seed's short form: introspection_url,
// client_id, client_secret) and OpenID Connect UserInfo; and the seed's remote
// bearer validation endpoint. Each verdict is reused briefly, never past the
// token's exp, and a judge that cannot be reached is 503, not the token's fault.

const AGENT_SECRET = 'agent-secret-0123456789abcdef0123456789';
const INTROSPECTOR_SECRET = 'introspector-secret-0123456789abcdef';
const REDIRECT = 'http://127.0.0.1:9/cb';
const OPAQUE_AUDIENCE = 'urn:keygate:opaque';

let idp: TestIdp;
/** Lifetime of the next access tokens the IdP issues (seconds). */
let accessTokenTtl = 3600;

const MODERN = { 'mcp-protocol-version': '2026-07-28', accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

async function call(base: string, token: string) {
  const res = await fetch(`${base}/mcp/team/demo`, {
    method: 'POST',
    headers: { ...MODERN, authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' }, _meta: meta } }),
  });
  const body = (await res.json()) as { error?: { message: string; data: { reason: string } } };
  return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '', message: body.error?.message ?? '', reason: body.error?.data.reason };
}

function me(base: string, token: string) {
  return fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
}

const introspections = () => idp.seen.filter((s) => s === 'POST /token/introspection').length;
const userinfoCalls = () => idp.seen.filter((s) => s === 'GET /me').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function userToken(scope: string, resource?: string) {
  return idp.userTokens({ clientId: 'mcp-agent', clientSecret: AGENT_SECRET, redirectUri: REDIRECT, login: 'alice-idp', password: 'pw', scope, ...(resource && { resource }) });
}

before(async () => {
  idp = await startOidcProvider({
    clients: [
      { client_id: 'mcp-agent', client_secret: AGENT_SECRET, grant_types: ['client_credentials', 'authorization_code', 'refresh_token'], redirect_uris: [REDIRECT], response_types: ['code'], scope: 'openid email profile groups mcp:read mcp:write' },
      { client_id: 'keygate-introspector', client_secret: INTROSPECTOR_SECRET, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
    ],
    accounts: [{ sub: 'alice-idp', password: 'pw', email: 'alice@corp.example', email_verified: true, name: 'Alice Idp', groups: ['eng'] }],
    ttl: { AccessToken: () => accessTokenTtl },
  });
});
after(() => idp?.close());

describe('introspection (RFC 7662), the seed\'s short form', () => {
  let f: Fixture;
  let base: string;
  before(async () => {
    f = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = {
        type: 'oauth',
        oauth: {
          discovery_url: idp.issuer,
          audience: OPAQUE_AUDIENCE,
          required_scopes: ['mcp:read'],
          introspection_url: `${idp.issuer}/token/introspection`,
          client_id: 'keygate-introspector',
          client_secret: INTROSPECTOR_SECRET,
        },
      };
    });
    base = f.registry.url;
  });
  after(() => f?.close());

  test('an active opaque token reaches the upstream, and the principal comes from the introspection answer', async () => {
    const { access_token } = await userToken('openid mcp:read', OPAQUE_AUDIENCE);
    assert.doesNotMatch(String(access_token), /\./, 'an opaque token');
    assert.equal((await call(base, String(access_token))).status, 200);
    const res = await me(base, String(access_token));
    assert.deepEqual(await res.json(), { authenticated: true, subject: 'alice-idp', name: 'Alice Idp', email: 'alice@corp.example', scopes: ['mcp:read'], provider: 'oauth' });
  });

  test('the introspection answer is reused: many calls, one introspection', async () => {
    const { access_token } = await userToken('openid mcp:read', OPAQUE_AUDIENCE);
    const before = introspections();
    for (let i = 0; i < 5; i++) assert.equal((await call(base, String(access_token))).status, 200);
    assert.equal(introspections() - before, 1);
  });

  test('an introspected token is not used past its exp, however long the cache', async () => {
    accessTokenTtl = 2;
    const { access_token } = await userToken('openid mcp:read', OPAQUE_AUDIENCE);
    accessTokenTtl = 3600;
    assert.equal((await call(base, String(access_token))).status, 200);
    await sleep(2200);
    const r = await call(base, String(access_token));
    assert.equal(r.status, 401);
    assert.match(r.message, /not active/);
  });

  test('a token the IdP does not know is refused as not active', async () => {
    const r = await call(base, 'this-token-was-never-issued-by-anyone');
    assert.equal(r.status, 401);
    assert.match(r.challenge, /error="invalid_token"/);
    assert.match(r.message, /the identity provider says the access token is not active \(RFC 7662 introspection\)/);
  });

  test('a refresh token (active, but for no audience) is not accepted as an access token', async () => {
    const { refresh_token } = await userToken('openid mcp:read', OPAQUE_AUDIENCE);
    assert.ok(refresh_token, 'the IdP issued a refresh token');
    const r = await call(base, String(refresh_token));
    assert.equal(r.status, 401);
    assert.match(r.message, /names no audience \(aud\): it must be issued for urn:keygate:opaque/);
  });

  test('an opaque token for another audience is refused', async () => {
    const { access_token } = await userToken('openid mcp:read', 'urn:another-api:opaque');
    const r = await call(base, String(access_token));
    assert.equal(r.status, 401);
    assert.match(r.message, /for another audience \(expected urn:keygate:opaque\)/);
  });

  test('an opaque token without the required scope is 403 insufficient_scope', async () => {
    const { access_token } = await userToken('openid mcp:write', OPAQUE_AUDIENCE);
    const r = await call(base, String(access_token));
    assert.equal(r.status, 403);
    assert.match(r.challenge, /error="insufficient_scope".*scope="mcp:read"/);
  });

  test('JWT access tokens of the same IdP are still verified locally, without introspection', async () => {
    const before = introspections();
    const { access_token } = await idp.clientCredentialsToken({ clientId: 'mcp-agent', clientSecret: AGENT_SECRET, resource: 'urn:keygate:jwt', scope: 'mcp:read' });
    // aud urn:keygate:jwt is not the configured audience: refused by the JWT validator, never sent to introspection.
    const r = await call(base, access_token);
    assert.equal(r.status, 401);
    assert.match(r.message, /for another audience/);
    assert.equal(introspections(), before);
  });

  test('the registry\'s own tokens are never sent to the introspection endpoint', async () => {
    const before = introspections();
    const { tokens } = await signIn(base, ALICE, { resource: `${base}/mcp/team/demo` });
    assert.equal((await call(base, tokens.access_token)).status, 200);
    assert.equal(introspections(), before);
  });
});

describe('introspection with a short cache: revocation is noticed', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = {
        type: 'oauth',
        oauth: { discovery_url: idp.issuer, audience: OPAQUE_AUDIENCE, introspection: { client_id: 'keygate-introspector', client_secret: INTROSPECTOR_SECRET, cache_ttl: '1s' } },
      };
    });
  });
  after(() => f?.close());

  test('a token revoked at the IdP is refused once the cached answer (cache_ttl) runs out', async () => {
    const { access_token } = await userToken('openid mcp:read', OPAQUE_AUDIENCE);
    assert.equal((await call(f.registry.url, String(access_token))).status, 200);
    const revoked = await fetch(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      body: new URLSearchParams({ token: String(access_token) }),
      headers: { authorization: `Basic ${Buffer.from(`mcp-agent:${AGENT_SECRET}`).toString('base64')}` },
    });
    assert.equal(revoked.status, 200);
    await sleep(1100);
    const r = await call(f.registry.url, String(access_token));
    assert.equal(r.status, 401);
    assert.match(r.message, /not active/);
  });
});

describe('introspection that the IdP refuses', () => {
  let f: Fixture;
  const WRONG_SECRET = 'wrong-secret-that-must-never-be-logged';
  before(async () => {
    f = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = { type: 'oauth', oauth: { discovery_url: idp.issuer, audience: OPAQUE_AUDIENCE, introspection: { client_id: 'keygate-introspector', client_secret: WRONG_SECRET } } };
    });
  });
  after(() => f?.close());

  test('wrong introspection credentials are 503 temporarily_unavailable, logged without the secret or the token', async () => {
    const { access_token } = await userToken('openid mcp:read', OPAQUE_AUDIENCE);
    const r = await call(f.registry.url, String(access_token));
    assert.equal(r.status, 503);
    assert.equal(r.reason, 'temporarily_unavailable');
    assert.match(r.message, /the introspection endpoint cannot check the token right now/);
    const logged = f.registry.log.lines.join('\n');
    assert.match(logged, /the introspection endpoint cannot be used to check a token: it answered HTTP 401 .*invalid_client/);
    assert.ok(!logged.includes(WRONG_SECRET), 'the client secret is not logged');
    assert.ok(!logged.includes(String(access_token)), 'the token is not logged');
    assert.ok(!r.message.includes(WRONG_SECRET));
  });
});

describe('UserInfo (OpenID Connect Core §5.3) for opaque tokens', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = { type: 'oauth', oauth: { discovery_url: idp.issuer, userinfo: { enabled: true, cache_ttl: '1m' } } };
    });
  });
  after(() => f?.close());

  test('an opaque token UserInfo accepts is a principal named by UserInfo (discovered endpoint), reused without a second call', async () => {
    const { access_token } = await userToken('openid email profile');
    const before = userinfoCalls();
    const res = await me(f.registry.url, String(access_token));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { authenticated: true, subject: 'alice-idp', name: 'Alice Idp', email: 'alice@corp.example', scopes: [], provider: 'oauth' });
    assert.equal((await call(f.registry.url, String(access_token))).status, 200);
    assert.equal(userinfoCalls() - before, 1);
  });

  test('a token UserInfo refuses is invalid_token', async () => {
    const r = await call(f.registry.url, 'not-a-token-the-idp-issued');
    assert.equal(r.status, 401);
    assert.match(r.message, /UserInfo endpoint does not accept the access token/);
  });
});

describe('the seed\'s userinfo_url, with required scopes', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = { type: 'oauth', oauth: { userinfo_url: `${idp.issuer}/me`, required_scopes: ['mcp:read'] } };
    });
  });
  after(() => f?.close());

  test('a UserInfo-validated token carries no scopes, so a required scope is 403 (and the start-up log warned)', async () => {
    const { access_token } = await userToken('openid email');
    const r = await call(f.registry.url, String(access_token));
    assert.equal(r.status, 403);
    assert.match(r.challenge, /insufficient_scope/);
    assert.ok(f.registry.log.lines.some((l) => /tokens validated through UserInfo carry no scopes/.test(l)));
  });
});

describe('bearer.validation_endpoint (the seed\'s remote validation)', () => {
  let validator: Server;
  let validatorUrl: string;
  const seen: string[] = [];
  let mode: 'normal' | 'down' | 'garbage' = 'normal';
  let f: Fixture;

  before(async () => {
    validator = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const { token } = JSON.parse(body) as { token: string };
        seen.push(token);
        if (mode === 'down') return void res.writeHead(500).end('oops');
        if (mode === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":1}');
        const valid = token.startsWith('good-');
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify(valid ? { valid: true, subject: `user-${token.slice(5)}`, scopes: ['mcp:read', 'mcp:write'], claims: { email: 'remote@corp.example', groups: ['g1'] }, metadata: { source: 'test' } } : { valid: false }),
        );
      });
    });
    await new Promise<void>((resolve) => validator.listen(0, '127.0.0.1', resolve));
    validatorUrl = `http://127.0.0.1:${(validator.address() as AddressInfo).port}/validate`;
    f = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = { type: 'bearer', bearer: { valid_tokens: ['static-token-abc'], validation_endpoint: validatorUrl, cache_ttl: '1s' } };
    });
  });
  after(async () => {
    await f?.close();
    validator?.close();
  });

  test('a token the endpoint calls valid is the principal it names', async () => {
    const res = await me(f.registry.url, 'good-one');
    assert.deepEqual(await res.json(), { authenticated: true, subject: 'user-one', email: 'remote@corp.example', scopes: ['mcp:read', 'mcp:write'], provider: 'bearer' });
    assert.equal((await call(f.registry.url, 'good-one')).status, 200);
  });

  test('the verdict is reused for cache_ttl, then asked again', async () => {
    const count = () => seen.filter((t) => t === 'good-two').length;
    await call(f.registry.url, 'good-two');
    await call(f.registry.url, 'good-two');
    assert.equal(count(), 1);
    await sleep(1100);
    await call(f.registry.url, 'good-two');
    assert.equal(count(), 2);
  });

  test('a token the endpoint calls invalid is 401 invalid_token', async () => {
    const r = await call(f.registry.url, 'bad-token');
    assert.equal(r.status, 401);
    assert.match(r.message, /the validation endpoint says the token is not valid/);
  });

  test('static tokens and the registry\'s own tokens are never sent to the validation endpoint', async () => {
    const before = seen.length;
    assert.equal((await call(f.registry.url, 'static-token-abc')).status, 200);
    const { tokens } = await signIn(f.registry.url, ALICE, { resource: `${f.registry.url}/mcp/team/demo` });
    assert.equal((await call(f.registry.url, tokens.access_token)).status, 200);
    assert.equal(seen.length, before);
  });

  test('an endpoint that fails is 503, not invalid_token', async () => {
    mode = 'down';
    try {
      const r = await call(f.registry.url, 'good-down');
      assert.equal(r.status, 503);
      assert.match(f.registry.log.lines.join('\n'), /the bearer validation endpoint cannot be used to check a token: it answered HTTP 500/);
    } finally {
      mode = 'normal';
    }
  });

  test('an endpoint that answers without a verdict is 503', async () => {
    mode = 'garbage';
    try {
      const r = await call(f.registry.url, 'good-garbage');
      assert.equal(r.status, 503);
      assert.match(f.registry.log.lines.join('\n'), /without a verdict/);
    } finally {
      mode = 'normal';
    }
  });
});
