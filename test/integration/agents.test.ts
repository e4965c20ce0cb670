import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { ALICE, BOB } from '../helpers/fixture.ts';
import { auditEntries, connect, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';
import { signIn, signInAdmin, tokenRequest, type TokenSet } from '../helpers/oauth.ts';

// Headless agents. An agent (a configured, confidential client) gets a token
// as itself by client credentials (RFC 6749 §4.4): it reaches the shared
// servers of gateways it is a member of, never per-user ones. An agent an
// admin allowed (oauth_server.clients[].token_exchange) exchanges an end
// user's access token (RFC 8693) for a short-lived one that acts as that user
// (`sub` the user, `act.sub` the agent), bound to a gateway resource: per-user
// servers then get the user's own credential, and the audit names the user as
// the subject and the agent as the actor. Cases in the order RFC 8693 §2.1
// processes a request: client, grant, subject token, actor token, user,
// resource, scope.

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const REFRESH_TOKEN = 'urn:ietf:params:oauth:token-type:refresh_token';
const CAROL = { username: 'carol', password: 'carol admin pass phrase' };
const SECRETS = { REPORTER_SECRET: 'reporter-secret-0123456789', NARROW_SECRET: 'narrow-secret-0123456789', PLAIN_SECRET: 'plain-secret-0123456789', CAROL_PASSWORD: CAROL.password };
const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');
const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
const reporter = basic('reporter', SECRETS.REPORTER_SECRET);

let g: MergedGateway;
let base: string;
let alice: { clientId: string; tokens: TokenSet };

before(async () => {
  g = await startMergedGateway(
    [
      { id: 'crm', eras: 'both' },
      { id: 'docs', eras: 'modern' },
    ],
    (config) => {
      config.oauth_server.builtin.users.push({ username: CAROL.username, password_env: 'CAROL_PASSWORD', scopes: ['mcp:read', 'mcp:admin'] });
      config.oauth_server.clients = [
        {
          // Acts as itself, and for anyone on /mcp/hub.
          client_id: 'reporter',
          name: 'Nightly reporter',
          client_secret_env: 'REPORTER_SECRET',
          grant_types: ['client_credentials'],
          scopes: ['mcp:read', 'mcp:write'],
          token_exchange: { resources: ['/mcp/hub'] },
          // It checks tokens at /oauth/introspect too.
          resource_server: true,
        },
        {
          // Acts only for bob, only with mcp:read, only by exchange.
          client_id: 'narrow',
          name: 'Bob\'s assistant',
          client_secret_env: 'NARROW_SECRET',
          token_endpoint_auth_method: 'client_secret_post',
          grant_types: [],
          scopes: ['mcp:read'],
          token_exchange: { resources: ['/mcp/hub/crm-mine', '/mcp/staff'], users: ['bob'] },
        },
        // Client credentials, but no admin allowed it to act for users.
        { client_id: 'plain', name: 'Plain agent', client_secret_env: 'PLAIN_SECRET', grant_types: ['client_credentials'], scopes: ['mcp:read'] },
        // A public client cannot authenticate: neither grant is for it.
        { client_id: 'public-app', name: 'Public app', redirect_uris: ['http://127.0.0.1:43210/callback'] },
      ];
      config.gateways.push(
        {
          id: 'hub',
          visibility: 'private',
          members: { users: ['alice', 'bob', 'carol', 'reporter'] },
          servers: [
            { upstream: 'crm', name: 'crm-shared', identity: 'shared', shared_identity: 'crm-svc' },
            { upstream: 'crm', name: 'crm-mine', identity: 'per_user' },
            { upstream: 'docs', identity: 'per_user' },
          ],
        },
        // Alice's and bob's only: the agent as itself is not a member.
        { id: 'staff', visibility: 'private', members: { users: ['alice', 'bob'] }, servers: [{ upstream: 'crm', name: 'crm', identity: 'shared', shared_identity: 'crm-svc' }] },
      );
    },
    SECRETS,
  );
  base = g.registry.url;
  alice = await signIn(base, ALICE);
  const { identities } = g.registry.registry;
  await identities.put({ id: 'alice-crm', upstream: 'crm', owner: 'alice', availability: 'private', secret: { kind: 'bearer', token: 'alice-crm-token' } });
  await identities.put({ id: 'bob-crm', upstream: 'crm', owner: 'bob', availability: 'private', secret: { kind: 'bearer', token: 'bob-crm-token' } });
});
after(() => g.close());

async function token(params: Record<string, string | string[]>, headers: Record<string, string> = reporter): Promise<{ status: number; body: Record<string, any>; headers: Headers }> {
  const res = await tokenRequest(base, params, headers);
  return { status: res.status, body: (await res.json()) as Record<string, any>, headers: res.headers };
}

const exchange = (subjectToken: string, extra: Record<string, string | string[]> = {}, headers: Record<string, string> = reporter) =>
  token({ grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, resource: `${base}/mcp/hub`, ...extra }, headers);

async function refused(response: Promise<{ status: number; body: Record<string, any> }>, error: string, description?: RegExp): Promise<void> {
  const { status, body } = await response;
  assert.equal(body.error, error, JSON.stringify(body));
  assert.equal(status, error === 'invalid_client' ? 401 : 400);
  if (description) assert.match(body.error_description, description);
}

/** One JSON-RPC tools/call on the raw path; the status and the parsed answer. */
async function rawCall(path: string, accessToken: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${accessToken}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'whoami',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} } } }),
  });
  const raw = await res.text();
  const data = raw.startsWith('{') ? raw : (raw.split('\n').find((l) => l.startsWith('data:'))?.slice(5) ?? raw);
  let body: unknown = raw;
  try {
    body = JSON.parse(data);
  } catch {}
  return { status: res.status, body };
}

describe('metadata', () => {
  test('advertises client_credentials and token exchange (RFC 8414 grant_types_supported)', async () => {
    const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as { grant_types_supported: string[] };
    assert.deepEqual(meta.grant_types_supported, ['authorization_code', 'refresh_token', 'client_credentials', TOKEN_EXCHANGE]);
  });
});

describe('client credentials: the agent as itself', () => {
  test('a token whose subject is the agent, audience-bound to the resource, within its scopes, without a refresh token', async () => {
    const { status, body, headers } = await token({ grant_type: 'client_credentials', resource: `${base}/mcp/hub`, scope: 'mcp:read' });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(headers.get('cache-control'), 'no-store');
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, 'mcp:read');
    assert.equal(body.refresh_token, undefined, 'RFC 6749 §4.4.3: no refresh token');
    const claims = decodeJwt(body.access_token);
    assert.deepEqual([claims.sub, claims.client_id, claims.gty, claims.aud, claims.scope, claims.act], ['reporter', 'reporter', 'client_credentials', `${base}/mcp/hub`, 'mcp:read', undefined]);
    // No scope asked: all the admin configured for it.
    assert.equal((await token({ grant_type: 'client_credentials' })).body.scope, 'mcp:read mcp:write');
  });

  test("reaches the shared servers of gateways it is a member of, with the service account's credential", async () => {
    const cc = (await token({ grant_type: 'client_credentials', resource: `${base}/mcp/hub` })).body.access_token as string;
    const { client } = await connect(`${base}/mcp/hub`, '2026-07-28', { token: cc });
    try {
      assert.equal(text(await client.callTool({ name: 'crm-shared__whoami', arguments: {} })), `Bearer ${g.upstreams.crm!.key}`);
    } finally {
      await client.close();
    }
    const entry = (await auditEntries(g.registry)).findLast((e) => e.subject === 'reporter' && e.server === 'crm-shared');
    assert.ok(entry, 'audited');
    assert.deepEqual([entry.subject_type, entry.client_id, entry.actor, entry.outcome], ['client', 'reporter', undefined, 'ok']);
  });

  test('has no per-user identity: a per-user server refuses it, saying how to act for a user', async () => {
    const cc = (await token({ grant_type: 'client_credentials', resource: `${base}/mcp/hub` })).body.access_token as string;
    const { status, body } = await rawCall('/mcp/hub/crm-mine', cc);
    assert.equal(status, 403, JSON.stringify(body));
    assert.match(body.error.message, /client reporter acting as itself has no identity here; exchange the user's token/);
    assert.ok(!g.upstreams.crm!.requests.some((r) => r.authorization === `Bearer ${cc}`), 'never forwarded, never the inbound token');
    assert.equal((await auditEntries(g.registry)).findLast((e) => e.subject === 'reporter' && e.server === 'crm-mine')?.outcome, 'agent_without_user');
    // Nor does it own identities through the self-service API.
    const me = await fetch(`${base}/api/v1/me/identities`, { headers: { authorization: `Bearer ${(await token({ grant_type: 'client_credentials' })).body.access_token}` } });
    assert.equal(me.status, 403);
  });

  test('a gateway that does not list it as a member refuses it', async () => {
    const cc = (await token({ grant_type: 'client_credentials', resource: `${base}/mcp/staff` })).body.access_token as string;
    assert.equal((await rawCall('/mcp/staff/crm', cc)).status, 403);
  });

  test('refusals: wrong secret, public client, a client without the grant, scope beyond its own, unknown resource', async () => {
    await refused(token({ grant_type: 'client_credentials' }, basic('reporter', 'not-the-secret')), 'invalid_client');
    await refused(token({ grant_type: 'client_credentials', client_id: 'public-app' }, {}), 'unauthorized_client', /confidential clients/);
    await refused(token({ grant_type: 'client_credentials', client_id: 'narrow', client_secret: SECRETS.NARROW_SECRET }, {}), 'unauthorized_client', /client_credentials grant/);
    await refused(token({ grant_type: 'client_credentials', scope: 'mcp:read mcp:admin' }), 'invalid_scope', /mcp:admin/);
    await refused(token({ grant_type: 'client_credentials', resource: `${base}/mcp/nowhere` }), 'invalid_target');
  });
});

describe('token exchange: the agent acting for a user', () => {
  test("a new token: sub the user, act the agent, aud the gateway, short-lived, the user's scopes, no refresh token", async () => {
    const { status, body, headers } = await exchange(alice.tokens.access_token);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(headers.get('cache-control'), 'no-store');
    assert.equal(body.issued_token_type, ACCESS_TOKEN);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.refresh_token, undefined);
    assert.ok(body.expires_in > 0 && body.expires_in <= 300, `expires_in ${body.expires_in}`);
    assert.notEqual(body.access_token, alice.tokens.access_token, 'a new token, never the one presented');
    const claims = decodeJwt(body.access_token);
    assert.deepEqual([claims.sub, claims.client_id, claims.act, claims.aud, claims.gty], ['alice', 'reporter', { sub: 'reporter' }, `${base}/mcp/hub`, undefined]);
    assert.equal(claims.email, 'alice@example.com');
    assert.equal(body.scope, 'mcp:read mcp:write', 'offline_access is not carried over: nothing to refresh');
  });

  test("per-user servers get the user's own credential; the audit names the user and the agent", async () => {
    const exchanged = (await exchange(alice.tokens.access_token)).body.access_token as string;
    const { client } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: exchanged });
    try {
      assert.equal(text(await client.callTool({ name: 'crm-mine__whoami', arguments: {} })), 'Bearer alice-crm-token');
      assert.equal(text(await client.callTool({ name: 'crm-shared__whoami', arguments: {} })), `Bearer ${g.upstreams.crm!.key}`);
    } finally {
      await client.close();
    }
    assert.equal((await rawCall('/mcp/hub/crm-mine', exchanged)).body.result.content[0].text, 'Bearer alice-crm-token', 'the raw path too');
    const seen = JSON.stringify(g.upstreams.crm!.requests);
    assert.ok(!seen.includes(exchanged) && !seen.includes(alice.tokens.access_token), 'neither token reaches the upstream');

    const entry = (await auditEntries(g.registry)).findLast((e) => e.server === 'crm-mine' && e.subject === 'alice');
    assert.ok(entry);
    assert.deepEqual([entry.subject, entry.actor, entry.client_id, entry.identity, entry.subject_type, entry.outcome], ['alice', 'reporter', 'reporter', 'alice-crm', undefined, 'ok']);
    // Alice sees what the agent did as her, with the agent named.
    const mine = (await (await fetch(`${base}/api/v1/me/audit?actor=reporter`, { headers: { authorization: `Bearer ${alice.tokens.access_token}` } })).json()) as { entries: { subject: string; actor: string }[] };
    assert.ok(mine.entries.length > 0 && mine.entries.every((e) => e.subject === 'alice' && e.actor === 'reporter'));
  });

  test('bound to the resource it was exchanged for: another gateway refuses it', async () => {
    const exchanged = (await exchange(alice.tokens.access_token)).body.access_token as string;
    const res = await rawCall('/mcp/staff/crm', exchanged);
    assert.equal(res.status, 401, 'alice is a member of staff, but the token is for /mcp/hub');
  });

  test('introspection shows who acts (RFC 8693 §4.1 act), and the client-credentials token is active', async () => {
    const exchanged = (await exchange(alice.tokens.access_token)).body.access_token as string;
    const view = (await (await fetch(`${base}/oauth/introspect`, { method: 'POST', body: new URLSearchParams({ token: exchanged }), headers: reporter })).json()) as Record<string, unknown>;
    assert.deepEqual([view.active, view.sub, view.client_id, view.act], [true, 'alice', 'reporter', { sub: 'reporter' }]);
    const cc = (await token({ grant_type: 'client_credentials' })).body.access_token as string;
    const own = (await (await fetch(`${base}/oauth/introspect`, { method: 'POST', body: new URLSearchParams({ token: cc }), headers: reporter })).json()) as Record<string, unknown>;
    assert.deepEqual([own.active, own.sub, own.act], [true, 'reporter', undefined]);
  });

  test('an actor_token, when sent, must be the authenticated agent\'s own client-credentials token', async () => {
    const own = (await token({ grant_type: 'client_credentials' })).body.access_token as string;
    const ok = await exchange(alice.tokens.access_token, { actor_token: own, actor_token_type: ACCESS_TOKEN });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(decodeJwt(ok.body.access_token).act, { sub: 'reporter' });
    const other = (await token({ grant_type: 'client_credentials' }, basic('plain', SECRETS.PLAIN_SECRET))).body.access_token as string;
    await refused(exchange(alice.tokens.access_token, { actor_token: other, actor_token_type: ACCESS_TOKEN }), 'invalid_request', /actor_token does not name the authenticated client/);
    await refused(exchange(alice.tokens.access_token, { actor_token: alice.tokens.access_token, actor_token_type: ACCESS_TOKEN }), 'invalid_request', /actor_token/);
    await refused(exchange(alice.tokens.access_token, { actor_token: own }), 'invalid_request', /actor_token_type is required/);
  });

  test('a users allow-list: the agent acts for the people listed, and within its own scopes and resources', async () => {
    const narrow = { client_id: 'narrow', client_secret: SECRETS.NARROW_SECRET };
    const bob = (await signIn(base, BOB)).tokens.access_token;
    const ok = await exchange(bob, { ...narrow, resource: `${base}/mcp/hub/crm-mine` }, {});
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.scope, 'mcp:read');
    // Its token reads for bob; calling a tool needs mcp:write, which the agent may not hold.
    const call = await rawCall('/mcp/hub/crm-mine', ok.body.access_token);
    assert.deepEqual([call.status, call.body.error.data.reason], [403, 'insufficient_scope']);
    assert.match(call.body.error.message, /needs the scope mcp:write/);
    await refused(exchange(alice.tokens.access_token, { ...narrow, resource: `${base}/mcp/hub/crm-mine` }, {}), 'invalid_request', /may not act for alice \(token_exchange.users\)/);
    // Two resources allowed: it must say which.
    await refused(exchange(bob, { ...narrow, resource: [] }, {}), 'invalid_target', /name the resource/);
  });
});

describe('token exchange refusals', () => {
  test('an agent no admin allowed: unauthorized_client', async () => {
    await refused(exchange(alice.tokens.access_token, {}, basic('plain', SECRETS.PLAIN_SECRET)), 'unauthorized_client', /token_exchange/);
  });

  test('a wrong client secret, or none: invalid_client', async () => {
    await refused(exchange(alice.tokens.access_token, {}, basic('reporter', 'wrong')), 'invalid_client');
    await refused(exchange(alice.tokens.access_token, { client_id: 'reporter' }, {}), 'invalid_client');
  });

  test('a public client: unauthorized_client', async () => {
    await refused(exchange(alice.tokens.access_token, { client_id: 'public-app' }, {}), 'unauthorized_client', /confidential clients/);
    await refused(exchange(alice.tokens.access_token, { client_id: alice.clientId }, {}), 'unauthorized_client');
  });

  test('requested_token_type other than an access token: invalid_request', async () => {
    await refused(exchange(alice.tokens.access_token, { requested_token_type: REFRESH_TOKEN }), 'invalid_request', /requested_token_type/);
  });

  test('subject tokens that are not a live access token of one of our users: invalid_request (RFC 8693 §2.2.2)', async () => {
    const { signingKey, issuer } = g.registry.registry;
    const now = Math.floor(Date.now() / 1000);
    const forge = (claims: Record<string, unknown>, key = signingKey.privateKey, kid = signingKey.kid, iss = issuer) =>
      new SignJWT({ client_id: alice.clientId, scope: 'mcp:read', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
        .setIssuer(iss)
        .setSubject('alice')
        .setAudience(base)
        .setIssuedAt(now - 120)
        .setExpirationTime((claims.exp as number | undefined) ?? now + 600)
        .setJti(randomUUID())
        .sign(key);
    const stranger = await generateKeyPair('ES256');
    const revoked = await signIn(base, ALICE);
    assert.equal((await fetch(`${base}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: revoked.tokens.access_token, client_id: revoked.clientId }) })).status, 200);
    const cc = (await token({ grant_type: 'client_credentials' })).body.access_token as string;
    const exchanged = (await exchange(alice.tokens.access_token)).body.access_token as string;
    assert.equal(signingKey.alg, 'ES256');

    for (const [what, subjectToken, type, description] of [
      ['garbage', 'not-a-token', ACCESS_TOKEN, /subject_token/],
      ['revoked', revoked.tokens.access_token, ACCESS_TOKEN, /revoked/],
      ['expired', await forge({ exp: now - 60 }), ACCESS_TOKEN, /expired/],
      ['another issuer (same key)', await forge({}, signingKey.privateKey, signingKey.kid, 'https://elsewhere.example.com'), ACCESS_TOKEN, /not valid here/],
      ['another issuer (its own key)', await forge({}, stranger.privateKey, 'stranger', 'https://elsewhere.example.com'), ACCESS_TOKEN, /key this registry does not know/],
      ['a refresh token', alice.tokens.refresh_token, REFRESH_TOKEN, /refresh token is not accepted/],
      ['an id token type', alice.tokens.access_token, 'urn:ietf:params:oauth:token-type:id_token', /not supported/],
      ["an agent's own client-credentials token", cc, ACCESS_TOKEN, /names a client/],
      ['an already exchanged token', exchanged, ACCESS_TOKEN, /itself obtained by token exchange/],
    ] as const) {
      const res = await token({ grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: type, resource: `${base}/mcp/hub` });
      assert.deepEqual([res.status, res.body.error], [400, 'invalid_request'], `${what}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error_description, description, what);
    }
    // Control: forged with our key and issuer and unexpired, it is accepted, so each refusal above is for the reason it names.
    assert.equal((await exchange(await forge({}))).status, 200);
  });

  test('scope never wider than the user\'s token or than the user holds: invalid_scope', async () => {
    await refused(exchange(alice.tokens.access_token, { scope: 'mcp:read mcp:admin' }), 'invalid_scope', /mcp:admin/);
    // Carol holds no mcp:write.
    const carol = (await signInAdmin(base, CAROL)).tokens.access_token;
    await refused(exchange(carol, { scope: 'mcp:write' }), 'invalid_scope', /mcp:write/);
    const readOnly = (await signIn(base, ALICE, { scope: 'mcp:read' })).tokens.access_token;
    await refused(exchange(readOnly, { scope: 'mcp:write' }), 'invalid_scope');
    assert.equal((await exchange(alice.tokens.access_token, { scope: 'mcp:read' })).body.scope, 'mcp:read', 'narrowing is fine');
  });

  test('resources: unknown, outside the allowance, or beyond the subject token: invalid_target', async () => {
    await refused(exchange(alice.tokens.access_token, { resource: `${base}/mcp/nowhere` }), 'invalid_target', /not a resource of this server/);
    await refused(exchange(alice.tokens.access_token, { resource: 'https://elsewhere.example.com/mcp' }), 'invalid_target');
    await refused(exchange(alice.tokens.access_token, { resource: `${base}/mcp/staff` }), 'invalid_target', /token_exchange.resources/);
    const staffOnly = (await signIn(base, ALICE, { resource: `${base}/mcp/staff` })).tokens.access_token;
    await refused(exchange(staffOnly), 'invalid_target', /never widens/);
    // `audience` (RFC 8693 §2.1) names the same resources.
    const viaAudience = await token({ grant_type: TOKEN_EXCHANGE, subject_token: alice.tokens.access_token, subject_token_type: ACCESS_TOKEN, audience: `${base}/mcp/hub/crm-mine` });
    assert.equal(decodeJwt(viaAudience.body.access_token).aud, `${base}/mcp/hub/crm-mine`);
  });
});

describe('a deactivated user', () => {
  test("their exchanged token stops at once (their grant ended), no new exchange, introspection says inactive; it stays revoked after enabling", async () => {
    const carol = (await signInAdmin(base, CAROL)).tokens.access_token;
    const admin = (path: string) => fetch(`${base}/api/v1/admin/users/${path}`, { method: 'POST', headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json' }, body: '{}' });
    const exchanged = (await exchange(alice.tokens.access_token)).body.access_token as string;
    assert.equal((await rawCall('/mcp/hub/crm-mine', exchanged)).status, 200);
    assert.equal((await admin('alice/disable')).status, 200);
    try {
      const cut = await rawCall('/mcp/hub/crm-mine', exchanged);
      assert.equal(cut.status, 401);
      assert.match(JSON.stringify(cut.body), /revoked: the account is deactivated/);
      await refused(exchange(alice.tokens.access_token), 'invalid_request', /deactivated/);
      const view = (await (await fetch(`${base}/oauth/introspect`, { method: 'POST', body: new URLSearchParams({ token: exchanged }), headers: reporter })).json()) as { active: boolean };
      assert.equal(view.active, false);
    } finally {
      assert.equal((await admin('alice/enable')).status, 200);
    }
    assert.equal((await rawCall('/mcp/hub/crm-mine', exchanged)).status, 401);
  });
});
