import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL, callEcho, DAVE, startControlFixture } from '../helpers/control.ts';
import { ALICE, BOB, type Fixture } from '../helpers/fixture.ts';
import { signIn, signInAdmin, tokenRequest, type TokenSet } from '../helpers/oauth.ts';
import { Selections } from '../../server/vault/selections.ts';
import type { AuditEntry, AuditLog } from '../../server/audit/audit.ts';
import { UserAgent } from '../helpers/user-agent.ts';

// Offboarding (MCP Manager's model): deactivating a person ends every grant
// they hold at once (their still-valid access tokens are refused as revoked at
// the next MCP and API request, cache or not, and across a restart; their
// refresh tokens are gone; their browser sessions at the registry end), while
// the global identities they set up belong to the organization and keep
// serving everyone else. Enabling the account lets them sign in anew; the
// ended grants stay ended.

let f: Fixture;
let base: string;
let carol: ReturnType<typeof apiClient>;
let alice: { clientId: string; tokens: TokenSet };
/** Another of alice's clients, whose refresh token is not presented while she is deactivated. */
let aliceSpare: { clientId: string; tokens: TokenSet };
let bobToken: string;
let daveToken: string;
let aliceGlobal: string;
/** Alice's browser, signed in at the registry (single sign-on) through the connect pages. */
const browser = new UserAgent();

/** Open /connect in `ua`; sign in as alice if the registry asks. Returns where it ended and whether a login form was shown. */
async function openConnect(ua: UserAgent): Promise<{ path: string; status: number; askedToSignIn: boolean }> {
  let step = await ua.follow(`${base}/connect`);
  let askedToSignIn = false;
  for (let i = 0; i < 3 && step.response; i++) {
    const html = await step.response.clone().text();
    if (!/name="password"/.test(html) || !step.url.pathname.startsWith('/oauth/')) break;
    askedToSignIn = true;
    const submitted = await ua.submit({ html, url: step.url }, { username: ALICE.username, password: ALICE.password });
    step = await ua.follow(step.url, () => false, submitted);
  }
  return { path: step.url.pathname, status: step.response?.status ?? 0, askedToSignIn };
}

const browserSessionsOf = async (sub: string) => (await f.registry.store.findBy('browser_sessions', 'subject', sub)).length;

before(async () => {
  f = await startControlFixture((config) => {
    config.gateways.push({ id: 'personal', visibility: 'private', servers: [{ upstream: 'demo', name: 'mine', identity: 'per_user' }] });
  });
  base = f.registry.url;
  carol = apiClient(base, (await signInAdmin(base, CAROL)).tokens.access_token);
  alice = await signIn(base, ALICE);
  aliceSpare = await signIn(base, ALICE);
  bobToken = (await signIn(base, BOB)).tokens.access_token;
  daveToken = (await signInAdmin(base, DAVE)).tokens.access_token;

  // Alice made one of her identities global; Bob chose it for his per-user server.
  aliceGlobal = (await f.registry.registry.identities.put({ upstream: 'demo', owner: 'alice', availability: 'global', label: 'team key (alice)', secret: { kind: 'bearer', token: f.apiKey }, created_by: 'alice' })).id;
  await new Selections(f.registry.store).set('bob', 'personal', 'mine', aliceGlobal);

  // Dave, an admin, stood up a service account and a gateway that uses it.
  const dave = apiClient(base, daveToken);
  assert.equal((await dave.post('/admin/identities', { id: 'dave-bot', upstream: 'demo', label: 'Bot by Dave', token: f.apiKey })).status, 201);
  assert.equal((await dave.post('/admin/gateways', { id: 'ops', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'dave-bot' }] })).status, 201);
});
after(() => f.close());

async function auditOf(sub: string): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  for await (const e of (f.registry.registry.audit as AuditLog).read({ kind: 'mcp', subject: sub }, { order: 'asc' })) if (e.kind !== 'admin') entries.push(e);
  return entries;
}

describe('deactivating a user', () => {
  test('before: everyone works', async () => {
    assert.equal((await callEcho(`${base}/mcp/team/demo`, alice.tokens.access_token)).status, 200);
    assert.equal((await callEcho(`${base}/mcp/personal/mine`, bobToken)).status, 200);
    assert.equal((await callEcho(`${base}/mcp/ops/demo`, bobToken)).status, 200);
    const first = await openConnect(browser);
    assert.deepEqual([first.path, first.status, first.askedToSignIn], ['/connect', 200, true]);
    const again = await openConnect(browser);
    assert.deepEqual([again.path, again.status, again.askedToSignIn], ['/connect', 200, false], 'single sign-on: no second login');
    assert.ok((await browserSessionsOf('alice')) >= 1, 'alice has a browser session at the registry');
  });

  test('cuts MCP and API access at once, even with an unexpired token, and ends her browser sessions', async () => {
    const res = await carol.post('/admin/users/alice/disable', { reason: 'left the company' });
    assert.equal(res.status, 200);
    assert.equal(res.body.disabled, true);
    assert.ok(res.body.browser_sessions_ended >= 1, `browser_sessions_ended: ${res.body.browser_sessions_ended}`);
    assert.deepEqual({ by: res.body.switch.by, reason: res.body.switch.reason }, { by: 'carol', reason: 'left the company' });
    assert.equal(await browserSessionsOf('alice'), 0);

    // Her grants ended: the token (valid, and cached by the gateway since "before") is refused as revoked.
    const mcp = await callEcho(`${base}/mcp/team/demo`, alice.tokens.access_token);
    assert.deepEqual([mcp.status, mcp.reason], [401, 'user_disabled']);
    assert.match(mcp.message!, /the access token was revoked: the account is deactivated/);
    const open = await callEcho(`${base}/mcp/open/tools`, alice.tokens.access_token);
    assert.deepEqual([open.status, open.reason], [401, 'user_disabled'], 'a public gateway too: she is identified by her token');
    const api = await apiClient(base, alice.tokens.access_token).get('/me');
    assert.deepEqual([api.status, api.body.error], [401, 'invalid_token']);
  });

  test('her refresh tokens are gone', async () => {
    for (const session of [alice, aliceSpare]) {
      const res = await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: session.tokens.refresh_token, client_id: session.clientId });
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { error: 'invalid_grant', error_description: 'the refresh token is invalid, expired or revoked' });
    }
  });

  test('introspection says her tokens are not active', async () => {
    // A resource server an admin set up (RFC 7662 §4: only those may introspect).
    const created = await carol.post('/admin/clients', { name: 'Resource server', grant_types: ['client_credentials'], resource_server: true });
    assert.equal(created.status, 201);
    const { client_secret, client_id } = created.body as { client_id: string; client_secret: string };
    const basic = { authorization: `Basic ${Buffer.from(`${client_id}:${client_secret}`).toString('base64')}` };
    for (const token of [alice.tokens.access_token, alice.tokens.refresh_token]) {
      const res = await fetch(`${base}/oauth/introspect`, { method: 'POST', headers: basic, body: new URLSearchParams({ token }) });
      assert.deepEqual(await res.json(), { active: false });
    }
  });

  test('she cannot sign in again', async () => {
    await assert.rejects(signIn(base, ALICE), /sign-in did not redirect|access_denied|error=access_denied/);
  });

  test('the global identity she created keeps serving everyone else', async () => {
    const call = await callEcho(`${base}/mcp/personal/mine`, bobToken, 'still works');
    assert.deepEqual([call.status, call.text], [200, 'still works']);
    const last = (await auditOf('bob')).at(-1)!;
    assert.deepEqual([last.gateway, last.identity, last.outcome], ['personal', aliceGlobal, 'ok']);
    assert.equal((await carol.get(`/admin/identities/${aliceGlobal}`)).body.disabled, false);
  });

  test("a deactivated admin loses the admin API at once, and the service account they created keeps serving", async () => {
    assert.equal((await carol.post('/admin/users/dave/disable')).status, 200);
    const denied = await apiClient(base, daveToken).get('/admin/users');
    assert.deepEqual([denied.status, denied.body.error], [401, 'invalid_token']);
    const call = await callEcho(`${base}/mcp/ops/demo`, bobToken, 'bot lives');
    assert.deepEqual([call.status, call.text], [200, 'bot lives']);
    assert.equal((await auditOf('bob')).at(-1)!.identity, 'dave-bot');
    const users = (await carol.get('/admin/users')).body.users as { username: string; disabled: boolean }[];
    assert.deepEqual(users.filter((u) => u.disabled).map((u) => u.username).sort(), ['alice', 'dave']);
  });

  test('the refused calls are audited with the reason', async () => {
    // Written when each response closed, in batches: wait for them.
    let refused: AuditEntry[] = [];
    for (let i = 0; i < 50 && refused.length < 2; i++) {
      refused = (await auditOf('alice')).filter((e) => e.outcome === 'user_disabled');
      if (refused.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(refused.length >= 2, `${refused.length} refusals audited`);
    // Who tried, with the token she held: the revoked token still names her.
    assert.ok(refused.every((e) => e.status === 401 && e.subject === 'alice' && (e.client_id === alice.clientId || e.client_id === aliceSpare.clientId)), JSON.stringify(refused));
  });
});

describe('re-enabling', () => {
  test('the revocation outlives a restart of the registry', async () => {
    await f.registry.stop();
    await f.registry.start();
    const mcp = await callEcho(`${base}/mcp/team/demo`, alice.tokens.access_token);
    assert.deepEqual([mcp.status, mcp.reason], [401, 'user_disabled']);
  });

  test('lets her sign in anew; the grants that ended stay ended', async () => {
    assert.equal((await carol.post('/admin/users/alice/enable')).body.disabled, false);
    for (const session of [alice, aliceSpare]) {
      assert.equal((await callEcho(`${base}/mcp/team/demo`, session.tokens.access_token)).status, 401, 'an old token stays revoked');
      const res = await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: session.tokens.refresh_token, client_id: session.clientId });
      assert.equal(res.status, 400, 'an old refresh token stays gone');
    }
    const fresh = await signIn(base, ALICE);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, fresh.tokens.access_token)).status, 200);
    assert.equal((await apiClient(base, fresh.tokens.access_token).get('/me')).status, 200);
    await carol.post('/admin/users/dave/enable');
    assert.equal((await apiClient(base, daveToken).get('/admin/users')).status, 401);
    assert.equal((await apiClient(base, (await signInAdmin(base, DAVE)).tokens.access_token).get('/admin/users')).status, 200);
  });

  test('her browser session stayed ended: the registry asks her to sign in again', async () => {
    const page = await openConnect(browser);
    assert.deepEqual([page.path, page.status, page.askedToSignIn], ['/connect', 200, true]);
  });
});

describe('across a restart', () => {
  test('a deactivated user stays deactivated when the registry starts again', async () => {
    const { startRegistry } = await import('../helpers/registry.ts');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dataDir = mkdtempSync(join(tmpdir(), 'keygate-offboarding-'));
    const config = () => ({
      server: { public_url: 'http://127.0.0.1:1' },
      oauth_server: { builtin: { users: [{ username: 'erin', password_env: 'ERIN_PASSWORD', scopes: ['mcp:read'] }] } },
      upstreams: [{ id: 'demo', url: f.upstream.url, credential: { type: 'bearer', token_env: 'DEMO_KEY' } }],
      gateways: [{ id: 'g', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared' }] }],
    });
    const env = { ERIN_PASSWORD: 'erin pass phrase long', DEMO_KEY: f.apiKey };
    try {
      const first = await startRegistry(config(), env, { dataDir });
      await first.store.upsert('accounts', 'erin', { sub: 'erin', username: 'erin', scopes: ['mcp:read'], groups: [], provider: 'builtin', disabled: true, last_login: 0 });
      await first.close();
      const second = await startRegistry(config(), env, { dataDir });
      try {
        const { SignJWT } = await import('jose');
        const key = second.registry.signingKey;
        const now = Math.floor(Date.now() / 1000);
        const token = await new SignJWT({ scope: 'mcp:read', client_id: 'c' })
          .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
          .setIssuer(second.registry.issuer)
          .setSubject('erin')
          .setAudience('http://127.0.0.1:1')
          .setIssuedAt(now)
          .setExpirationTime(now + 600)
          .setJti('erin-1')
          .sign(key.privateKey);
        const call = await callEcho(`${second.url}/mcp/g/demo`, token);
        assert.deepEqual([call.status, call.reason], [403, 'user_disabled']);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
