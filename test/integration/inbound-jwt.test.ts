import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { importJWK, SignJWT, UnsecuredJWT } from 'jose';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { signIn } from '../helpers/oauth.ts';
import { foreignToken, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';

// auth.type oauth with discovery: JWT access tokens of a real external IdP
// (oidc-provider, resource indicators → RFC 9068 JWTs) reach the gateway; each
// kind of bad token is refused with 401 invalid_token (or 403
// insufficient_scope) and a message naming the rule, in the order a verifier
// checks: issuer, header, algorithm, key, signature, claims, scope.

const SECRET = 'agent-secret-0123456789abcdef0123456789';
const AGENT = { client_id: 'mcp-agent', client_secret: SECRET, grant_types: ['client_credentials', 'authorization_code', 'refresh_token'], redirect_uris: ['http://127.0.0.1:9/cb'], response_types: ['code'], scope: 'openid email profile groups mcp:read mcp:write' } as const;
const MODERN = { 'mcp-protocol-version': '2026-07-28', accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } };

let idp: TestIdp;
let f: Fixture;
let base: string;
const now = () => Math.floor(Date.now() / 1000);

before(async () => {
  idp = await startOidcProvider({
    clients: [{ ...AGENT, grant_types: [...AGENT.grant_types], redirect_uris: [...AGENT.redirect_uris], response_types: [...AGENT.response_types] }],
    accounts: [{ sub: 'alice-idp', password: 'pw', email: 'alice@corp.example', email_verified: true, name: 'Alice Idp', groups: ['eng', 'ops'], roles: ['admin'] }],
  });
  f = await startFixture((config) => {
    config.outbound = { allow_loopback: true };
    config.auth = {
      type: 'oauth',
      oauth: {
        discovery_url: idp.issuer,
        required_scopes: ['mcp:read'],
        claims: { roles_claim: 'roles' },
        validation: { max_token_age: '1h' },
      },
    };
  });
  base = f.registry.url;
});
after(async () => {
  await f?.close();
  await idp?.close();
});

async function call(token: string, path = '/mcp/team/demo') {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { ...MODERN, authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' }, _meta: meta } }),
  });
  const body = (await res.json()) as { result?: unknown; error?: { code: number; message: string; data: { step: string; reason: string } } };
  return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '', body };
}

async function refused(token: string, message: RegExp, expect: { status?: number; error?: string } = {}) {
  const r = await call(token);
  assert.equal(r.status, expect.status ?? 401, JSON.stringify(r.body));
  assert.match(r.challenge, new RegExp(`error="${expect.error ?? 'invalid_token'}"`));
  assert.match(r.challenge, new RegExp(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp/team/demo"`), 'always with resource_metadata (RFC 9728)');
  assert.equal(r.body.error?.data.step, 'inbound');
  assert.match(r.body.error!.message, message);
  return r;
}

/** A token the IdP's key signs, with good claims unless overridden. */
function craft(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  const t = now();
  return idp.sign({ iss: idp.issuer, sub: 'crafted', aud: base, scope: 'mcp:read', iat: t, exp: t + 300, ...claims }, header);
}

describe('good tokens from the external IdP', () => {
  test('a client-credentials JWT for the MCP endpoint reaches the upstream', async () => {
    const { access_token } = await idp.clientCredentialsToken({ clientId: AGENT.client_id, clientSecret: SECRET, resource: `${base}/mcp/team/demo`, scope: 'mcp:read' });
    const r = await call(access_token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual((r.body.result as { content: unknown }).content, [{ type: 'text', text: 'hi' }]);
  });

  test('a person\'s JWT becomes the principal through the claim mapping (subject, email, name, scopes, provider)', async () => {
    const tokens = await idp.userTokens({ clientId: AGENT.client_id, clientSecret: SECRET, redirectUri: AGENT.redirect_uris[0], login: 'alice-idp', password: 'pw', scope: 'openid mcp:read mcp:write', resource: base });
    const me = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(me.status, 200);
    assert.deepEqual(await me.json(), { authenticated: true, subject: 'alice-idp', name: 'Alice Idp', email: 'alice@corp.example', scopes: ['mcp:read', 'mcp:write'], provider: 'oauth' });
  });

  test('the registry\'s own tokens still count beside the external issuer\'s', async () => {
    const { tokens } = await signIn(base, ALICE, { resource: `${base}/mcp/team/demo` });
    assert.equal((await call(tokens.access_token)).status, 200);
  });

  test('a validated token is cached: the JWKS is fetched once for many calls', async () => {
    const { access_token } = await idp.clientCredentialsToken({ clientId: AGENT.client_id, clientSecret: SECRET, resource: base, scope: 'mcp:read' });
    const fetchesBefore = idp.seen.filter((s) => s === 'GET /jwks').length;
    for (let i = 0; i < 5; i++) assert.equal((await call(access_token)).status, 200);
    assert.equal(idp.seen.filter((s) => s === 'GET /jwks').length, fetchesBefore, 'no JWKS fetch per call');
  });

  test('a token within clock_skew of its exp is still accepted (30s leeway by default)', async () => {
    assert.equal((await call(await craft({ exp: now() - 10, iat: now() - 300 }))).status, 200);
  });
});

describe('refused tokens, in the order a verifier checks them', () => {
  test('a token from another issuer is refused, naming the expected issuer', async () => {
    await refused(await craft({ iss: 'https://evil.example' }), /issued by "https:\/\/evil\.example", not by http:\/\/127\.0\.0\.1/);
  });

  for (const name of ['jku', 'x5u', 'jwk', 'x5c'] as const) {
    test(`a token whose header carries ${name} is refused: keys never come from the token`, async () => {
      const value = name === 'jwk' ? { kty: 'oct', k: 'AAAA' } : name === 'x5c' ? ['MIIB'] : 'https://evil.example/keys';
      await refused(await craft({}, { [name]: value }), new RegExp(`header carries "${name}"`));
    });
  }

  test('alg none is refused', async () => {
    const t = now();
    const unsecured = new UnsecuredJWT({ scope: 'mcp:read' }).setIssuer(idp.issuer).setSubject('x').setAudience(base).setIssuedAt(t).setExpirationTime(t + 60).encode();
    await refused(unsecured, /signed with "none", which is not among auth\.oauth\.validation\.allowed_algorithms/);
  });

  test('an HS256 token keyed with the IdP\'s public key is refused (algorithm confusion)', async () => {
    const publicPem = createPublicKey({ key: { kty: idp.key.kty!, n: idp.key.n!, e: idp.key.e! }, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const t = now();
    const confused = await new SignJWT({ scope: 'mcp:read' }).setProtectedHeader({ alg: 'HS256', kid: idp.key.kid }).setIssuer(idp.issuer).setSubject('x').setAudience(base).setIssuedAt(t).setExpirationTime(t + 60).sign(new TextEncoder().encode(publicPem as string));
    await refused(confused, /signed with "HS256", which is not among/);
  });

  test('an algorithm outside allowed_algorithms is refused even with the IdP\'s own key (PS256)', async () => {
    const key = await importJWK({ ...idp.key, alg: 'PS256' }, 'PS256');
    const t = now();
    const ps = await new SignJWT({ scope: 'mcp:read' }).setProtectedHeader({ alg: 'PS256', kid: idp.key.kid }).setIssuer(idp.issuer).setSubject('x').setAudience(base).setIssuedAt(t).setExpirationTime(t + 60).sign(key);
    await refused(ps, /signed with "PS256", which is not among auth\.oauth\.validation\.allowed_algorithms \(RS256, ES256\)/);
  });

  test('a token signed with a key the IdP never published (unknown kid) is refused', async () => {
    const t = now();
    await refused(await foreignToken({ iss: idp.issuer, sub: 'x', aud: base, scope: 'mcp:read', iat: t, exp: t + 60 }, { kid: 'unknown-kid' }), /no key of the issuer's JWKS matches the access token's kid "unknown-kid"/);
  });

  test('a forged signature under the IdP\'s own kid is refused', async () => {
    const t = now();
    await refused(await foreignToken({ iss: idp.issuer, sub: 'x', aud: base, scope: 'mcp:read', iat: t, exp: t + 60 }, { kid: idp.key.kid }), /signature is not valid/);
  });

  test('a tampered payload under a genuine signature is refused', async () => {
    const [h, , s] = (await craft()).split('.');
    const payload = Buffer.from(JSON.stringify({ iss: idp.issuer, sub: 'admin', aud: base, scope: 'mcp:read mcp:admin', iat: now(), exp: now() + 60 })).toString('base64url');
    await refused(`${h}.${payload}.${s}`, /signature is not valid/);
  });

  test('an expired token is refused', async () => {
    await refused(await craft({ iat: now() - 600, exp: now() - 120 }), /has expired/);
  });

  test('a token without exp is refused (require_expiration)', async () => {
    await refused(await craft({ exp: undefined }), /has no expiry \(exp\)/);
  });

  test('a token whose nbf is in the future is refused', async () => {
    await refused(await craft({ nbf: now() + 600 }), /not valid yet \(nbf is in the future\)/);
  });

  test('a token issued longer ago than max_token_age is refused', async () => {
    await refused(await craft({ iat: now() - 2 * 3600, exp: now() + 600 }), /issued more than max_token_age \(3600s\) ago/);
  });

  test('a token without iat is refused when max_token_age is set', async () => {
    await refused(await craft({ iat: undefined }), /has no iat/);
  });

  test('a token for another resource (audience) is refused', async () => {
    const { access_token } = await idp.clientCredentialsToken({ clientId: AGENT.client_id, clientSecret: SECRET, resource: 'https://other-api.example/', scope: 'mcp:read' });
    await refused(access_token, /issued for another resource/);
  });

  test('a token for another MCP endpoint of this registry is refused at this one', async () => {
    const { access_token } = await idp.clientCredentialsToken({ clientId: AGENT.client_id, clientSecret: SECRET, resource: `${base}/mcp/open/tools`, scope: 'mcp:read' });
    await refused(access_token, /issued for another resource/);
  });

  test('a token without aud is refused (it must be issued for this server)', async () => {
    await refused(await craft({ aud: undefined }), /names no audience/);
  });

  test('a token without sub is refused', async () => {
    await refused(await craft({ sub: undefined }), /no "sub" claim/);
  });

  test('a token without a required scope is 403 insufficient_scope naming the scope', async () => {
    const { access_token } = await idp.clientCredentialsToken({ clientId: AGENT.client_id, clientSecret: SECRET, resource: `${base}/mcp/team/demo`, scope: 'mcp:write' });
    const r = await refused(access_token, /lacks the scope mcp:read/, { status: 403, error: 'insufficient_scope' });
    assert.match(r.challenge, /scope="mcp:read"/);
    assert.equal(r.body.error!.code, -32003);
  });

  test('the API answers a token without a required scope with 403 insufficient_scope too', async () => {
    const res = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${await craft({ scope: 'mcp:write' })}` } });
    assert.equal(res.status, 403);
    assert.match(res.headers.get('www-authenticate')!, /error="insufficient_scope".*scope="mcp:read"/);
    assert.match(res.headers.get('www-authenticate')!, /resource_metadata="/);
    assert.equal(((await res.json()) as { error: string }).error, 'insufficient_scope');
  });
});

describe('the token cache', () => {
  let strict: Fixture;
  before(async () => {
    strict = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = { type: 'oauth', oauth: { discovery_url: idp.issuer, validation: { clock_skew: 0 } } };
    });
  });
  after(() => strict?.close());

  test('a validated token is not used past its exp (clock_skew 0)', async () => {
    const t = now();
    const token = await idp.sign({ iss: idp.issuer, sub: 'short-lived', aud: strict.registry.url, iat: t, exp: t + 2 });
    const me = () => fetch(`${strict.registry.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await me()).status, 200);
    assert.equal((await me()).status, 200, 'served from the cache');
    await new Promise((r) => setTimeout(r, (t + 3 - Date.now() / 1000) * 1000));
    const res = await me();
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate')!, /has expired/);
  });
});

describe('key rotation at the IdP', () => {
  let r: Fixture;
  before(async () => {
    r = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = { type: 'oauth', oauth: { discovery_url: idp.issuer, jwks: { cooldown: '1s' } } };
    });
  });
  after(() => r?.close());

  test('an unknown kid within the cooldown is refused without a refetch; after the cooldown the rotated key is picked up', async () => {
    const me = (token: string) => fetch(`${r.registry.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    const sign = (sub: string) => idp.sign({ iss: idp.issuer, sub, aud: r.registry.url, iat: now(), exp: now() + 300 });
    assert.equal((await me(await sign('before-rotation'))).status, 200, 'the keys are fetched now');
    await idp.rotateKeys();
    const fetches = idp.seen.filter((s) => s === 'GET /jwks').length;
    const rotated = await sign('after-rotation');
    const refused = await me(rotated);
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate')!, /no key of the issuer.s JWKS matches/);
    assert.equal(idp.seen.filter((s) => s === 'GET /jwks').length, fetches, 'no fetch within the cooldown');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await me(rotated)).status, 200, 'the unknown kid refetched the JWKS once the cooldown passed');
    assert.equal(idp.seen.filter((s) => s === 'GET /jwks').length, fetches + 1);
  });
});
