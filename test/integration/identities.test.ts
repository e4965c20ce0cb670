import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { encodeClientCredentials } from '../../server/gateway/client-credentials.ts';
import { ALICE, BOB } from '../helpers/fixture.ts';
import { signIn } from '../helpers/oauth.ts';
import { startOAuthUpstream } from '../helpers/oauth-upstream.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { UserAgent } from '../helpers/user-agent.ts';

// Whose credentials: per-user identities of every kind (fields kept by the
// registry or by the client, OAuth at the upstream's own authorization
// server), shared client-credentials service accounts, the self-service API
// and the connect pages.

const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

let demo: DemoUpstream;
let idp: TestIdp;
let linear: Awaited<ReturnType<typeof startOAuthUpstream>>;
let r: TestRegistry;
let base: string;
let alice: string;
let bob: string;
const demoKey = `demo-${randomBytes(12).toString('hex')}`;

before(async () => {
  demo = await startDemoUpstream({ apiKey: demoKey });
  idp = await startOidcProvider({
    registration: true,
    accounts: [{ sub: 'alice-at-linear', password: 'linear-pw' }],
    clients: [{ client_id: 'keygate-cc', client_secret: 'cc-secret-0123456789abcdef', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' }],
  });
  linear = await startOAuthUpstream(idp.issuer);
  const fields = {
    type: 'fields',
    fields: [
      { name: 'api_key', label: 'API key', placeholder: 'demo-…', description: 'From the demo dashboard', secret: true },
      { name: 'team', label: 'Team', secret: false, required: false },
    ],
    inject: { header: 'Authorization', value: 'Bearer {api_key}' },
  };
  r = await startRegistry(
    {
      outbound: { allow_loopback: true },
      oauth_server: { builtin: { users: [{ username: 'alice', password_env: 'A', scopes: ['mcp:read', 'mcp:write'] }, { username: 'bob', password_env: 'B', scopes: ['mcp:read', 'mcp:write'] }] } },
      upstreams: [
        { id: 'demo-fields', name: 'Demo', url: demo.url, credential: fields },
        { id: 'linear', name: 'Linear', url: linear.url, credential: { type: 'oauth', scopes: ['mcp:read'] } },
        { id: 'linear-bot', name: 'Linear (bot)', url: linear.url, credential: { type: 'client_credentials', token_url: `${idp.issuer}/token`, client_id: 'keygate-cc', client_secret_env: 'CC_SECRET' } },
      ],
      gateways: [
        {
          id: 'team',
          servers: [
            { upstream: 'demo-fields', name: 'fields', identity: 'per_user' },
            { upstream: 'demo-fields', name: 'client-fields', identity: 'per_user', storage: 'client' },
            { upstream: 'linear', identity: 'per_user' },
            { upstream: 'linear-bot', name: 'bot', identity: 'shared' },
          ],
        },
      ],
    },
    { A: ALICE.password, B: BOB.password, CC_SECRET: 'cc-secret-0123456789abcdef' },
  );
  base = r.url;
  alice = (await signIn(base, ALICE)).tokens.access_token;
  bob = (await signIn(base, BOB)).tokens.access_token;
});
after(async () => {
  await r?.close();
  await linear?.close();
  await idp?.close();
  await demo?.close();
});

async function call(server: string, token: string, tool = 'echo', args: Record<string, unknown> = { message: 'hi' }, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/mcp/team/${server}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: args, _meta: meta } }),
  });
  return { status: res.status, text: await res.text() };
}

const api = (path: string, token: string, init: RequestInit = {}) =>
  fetch(`${base}/api/v1/me${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });

type Server = { server: string; state: string; identity?: { id: string; fields_set?: string[]; public_values?: Record<string, string> }; connect_url: string; credential: { fields?: { name: string }[] } };
const servers = async (token: string) => ((await (await api('/servers', token)).json()) as { servers: Server[] }).servers;

describe('per-user credential fields kept by the registry', () => {
  test('before connecting, the server needs credentials and a call says where to connect', async () => {
    const fields = (await servers(alice)).find((s) => s.server === 'fields')!;
    assert.equal(fields.state, 'needs_credentials');
    assert.deepEqual(fields.credential.fields!.map((f) => f.name), ['api_key', 'team']);
    const res = await call('fields', alice);
    assert.ok(res.text.includes(`${base}/connect/team/fields`), res.text);
  });

  test('filling the fields through the API makes the server ready; the upstream gets them through the injection template', async () => {
    const bad = await api('/identities', alice, { method: 'POST', body: JSON.stringify({ upstream: 'demo-fields', values: { team: 'x' } }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error_description: string }).error_description, /API key \(api_key\) is required/);
    const created = await api('/identities', alice, { method: 'POST', body: JSON.stringify({ upstream: 'demo-fields', label: 'my demo key', values: { api_key: demoKey, team: 'red' }, select: { gateway: 'team', server: 'fields' } }) });
    assert.equal(created.status, 201);
    const view = (await created.json()) as Record<string, unknown>;
    assert.deepEqual(view.fields_set, ['api_key', 'team']);
    assert.deepEqual(view.public_values, { team: 'red' }, 'a non-secret field is shown; the secret one never');
    assert.ok(!JSON.stringify(view).includes(demoKey));
    const state = (await servers(alice)).find((s) => s.server === 'fields')!;
    assert.equal(state.state, 'ready');
    const before = demo.seen.length;
    const res = await call('fields', alice);
    assert.equal(res.status, 200, res.text);
    assert.equal(demo.seen.at(-1)!.authorization, `Bearer ${demoKey}`);
    assert.ok(demo.seen.length > before);
    // Nothing of it in clear in the store.
    assert.ok(!readFileSync(join(r.dataDir, 'store.json'), 'utf8').includes(demoKey));
  });

  test("another person cannot use or select someone's private identity, but can select a global one", async () => {
    const aliceIds = ((await (await api('/identities', alice)).json()) as { identities: { id: string }[] }).identities;
    const id = aliceIds[0]!.id;
    const refused = await api('/selections', bob, { method: 'PUT', body: JSON.stringify({ gateway: 'team', server: 'fields', identity: id }) });
    assert.equal(refused.status, 403);
    const bobCall = await call('fields', bob);
    assert.ok(bobCall.text.includes('/connect/team/fields'), 'bob has no identity of his own');
    assert.equal((await api(`/identities/${id}`, alice, { method: 'PATCH', body: JSON.stringify({ availability: 'global' }) })).status, 200);
    const listed = (await (await api('/identities', bob)).json()) as { global: { id: string; owner: string }[] };
    assert.deepEqual(listed.global.map((g) => [g.id, g.owner]), [[id, 'someone else']]);
    assert.equal((await api('/selections', bob, { method: 'PUT', body: JSON.stringify({ gateway: 'team', server: 'fields', identity: id }) })).status, 204);
    assert.equal((await call('fields', bob)).status, 200);
    // Back to private: the selection no longer serves Bob.
    assert.equal((await api(`/identities/${id}`, alice, { method: 'PATCH', body: JSON.stringify({ availability: 'private' }) })).status, 200);
    assert.ok((await call('fields', bob)).text.includes('/connect/team/fields'));
  });

  test('bad bodies are refused with a clear error; only the owner changes or deletes an identity', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['/identities', { upstream: 'nope', values: {} }, /no upstream "nope"/],
      ['/identities', { upstream: 'demo-fields', values: { api_key: 'a\r\nX-Injected: 1' } }, /control character/],
      // A value no header can carry is refused when saved, not left to fail at every call.
      ['/identities', { upstream: 'demo-fields', values: { api_key: 'clé-ключ' } }, /api_key\) contains a character an HTTP header cannot carry/],
      ['/identities', { upstream: 'demo-fields', values: { api_key: 'k', extra: 'x' } }, /there is no field extra/],
      ['/identities', { upstream: 'linear', token: 'x' }, /signs in with OAuth/],
      ['/identities', { upstream: 'demo-fields', values: { api_key: 'k' }, owner: 'bob' }, /unknown field owner/],
    ];
    for (const [path, body, message] of cases) {
      const res = await api(path, alice, { method: 'POST', body: JSON.stringify(body) });
      assert.equal(res.status, 400, JSON.stringify(body));
      const json = (await res.json()) as { error: string; error_description: string };
      assert.equal(json.error, 'invalid_request');
      assert.match(json.error_description, message);
    }
    const id = ((await (await api('/identities', alice)).json()) as { identities: { id: string }[] }).identities[0]!.id;
    assert.equal((await api(`/identities/${id}`, bob, { method: 'DELETE' })).status, 404);
    assert.equal((await fetch(`${base}/api/v1/me/servers`)).status, 401);
  });
});

describe('per-user credential fields kept by the client (storage: client)', () => {
  test('the values travel with the request, reach the upstream, and are never stored', async () => {
    const value = `client-held-${randomBytes(6).toString('hex')}`;
    const missing = await call('client-fields', alice);
    assert.ok(missing.status >= 400 || /fill in the credential fields/.test(missing.text));
    const wrong = await call('client-fields', alice, 'echo', { message: 'x' }, { 'x-keygate-credentials': encodeClientCredentials({ 'client-fields': { api_key: value } }) });
    assert.equal(wrong.status, 502, 'the upstream refused a wrong key');
    const res = await call('client-fields', alice, 'echo', { message: 'x' }, { 'x-keygate-credentials': encodeClientCredentials({ 'client-fields': { api_key: demoKey } }) });
    assert.equal(res.status, 200);
    assert.equal(demo.seen.at(-1)!.authorization, `Bearer ${demoKey}`);
    assert.ok(!demo.seen.at(-1)!.headerNames.includes('x-keygate-credentials'), 'the header itself stays at the gateway');
    assert.ok(!readFileSync(join(r.dataDir, 'store.json'), 'utf8').includes(value));
    assert.equal((await servers(alice)).find((s) => s.server === 'client-fields')!.state, 'client_credentials');
  });
});

describe('per-user OAuth at the upstream, through the connect pages', () => {
  /** Sign in to the registry's connect pages as alice, in a cookie-keeping browser. */
  async function connectPage(ua: UserAgent, path: string) {
    let step = await ua.follow(`${base}${path}`);
    for (let i = 0; i < 3 && step.response; i++) {
      const html = await step.response.clone().text();
      if (!/name="password"/.test(html) || !step.url.pathname.startsWith('/oauth/')) break;
      const submitted = await ua.submit({ html, url: step.url }, { username: ALICE.username, password: ALICE.password });
      step = await ua.follow(step.url, () => false, submitted);
    }
    return { url: step.url, html: await step.response!.text(), status: step.response!.status };
  }

  test('connecting signs the person in at the upstream (Keygate registers itself there) and calls run as them; expiry refreshes', async () => {
    const ua = new UserAgent();
    const page = await connectPage(ua, '/connect/team/linear');
    assert.equal(page.status, 200);
    assert.match(page.html, /Keygate will send you to Linear to sign in/);
    assert.match(page.html, /Needs authorization/);
    // Continue → the upstream's authorization server (a real oidc-provider) → its login → back to /connect/callback.
    const started = await ua.submit({ html: page.html, url: page.url }, {});
    assert.equal(started.status, 303);
    const toIdp = new URL(started.headers.get('location')!);
    assert.equal(toIdp.origin, idp.issuer);
    assert.equal(toIdp.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(toIdp.searchParams.get('resource'), linear.url);
    assert.ok(idp.seen.some((s) => s.startsWith('POST /reg')), 'Keygate registered itself at the upstream (RFC 7591)');
    const login = await ua.follow(toIdp);
    const submitted = await ua.submit({ html: await login.response!.text(), url: login.url }, { login: 'alice-at-linear', password: 'linear-pw' }, { name: 'action', value: 'login' });
    const done = await ua.follow(login.url, () => false, submitted);
    assert.equal(done.url.pathname, '/connect/team/linear', `${done.url}: ${done.response ? await done.response.clone().text() : ''}\n${r.log.lines.join('\n')}`);
    const html = await done.response!.text();
    assert.match(html, /Connected\. Calls to Linear now run as you/);
    assert.match(html, /Ready/);

    const res = await call('linear', alice, 'whoami', {});
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, /alice-at-linear/);
    assert.equal(linear.seen.at(-1)!.sub, 'alice-at-linear');

    // The access token expires: the next call renews it (once) and goes on.
    const identity = (await r.registry.identities.records.findBy('owner', 'alice')).map(([, i]) => i).find((i) => i.kind === 'oauth')!;
    const secret = r.registry.identities.reveal(identity);
    assert.equal(secret.kind, 'oauth');
    await r.registry.identities.replaceSecret(identity, { ...(secret as Extract<typeof secret, { kind: 'oauth' }>), expires_at: Math.floor(Date.now() / 1000) - 10 });
    const results = await Promise.all([call('linear', alice, 'whoami', {}), call('linear', alice, 'whoami', {})]);
    for (const result of results) assert.match(result.text, /alice-at-linear/);
    const refreshed = r.registry.identities.reveal((await r.registry.identities.records.find(identity.id))!);
    assert.ok(refreshed.kind === 'oauth' && refreshed.access_token !== (secret as { access_token: string }).access_token && refreshed.expires_at! > Date.now() / 1000);
    assert.ok(!readFileSync(join(r.dataDir, 'store.json'), 'utf8').includes(refreshed.kind === 'oauth' ? refreshed.access_token : 'x'));
  });

  test('a connect form without its CSRF token, or a callback with a forged state, is refused', async () => {
    const ua = new UserAgent();
    const page = await connectPage(ua, '/connect/team/linear');
    const action = /action="([^"]+\/authorize)"/.exec(page.html)![1]!;
    const forged = await ua.request(new URL(action, base), { method: 'POST', body: new URLSearchParams({ csrf: 'forged' }) });
    assert.equal(forged.status, 403);
    const crossSite = await ua.request(new URL(action, base), { method: 'POST', body: new URLSearchParams({ csrf: /name="csrf" value="([^"]+)"/.exec(page.html)![1]! }), headers: { origin: 'https://evil.example' } });
    assert.equal(crossSite.status, 403);
    const callback = await ua.request(`${base}/connect/callback?code=x&state=never-issued`);
    assert.equal(callback.status, 400);
    assert.match(await callback.text(), /not started here/);
  });

  test("a connection started by one person cannot be finished in another person's browser", async () => {
    const aliceUa = new UserAgent();
    const page = await connectPage(aliceUa, '/connect/team/linear');
    const started = await aliceUa.submit({ html: page.html, url: page.url }, {});
    const state = new URL(started.headers.get('location')!).searchParams.get('state')!;
    const bobUa = new UserAgent();
    let step = await bobUa.follow(`${base}/connect`);
    const html = await step.response!.text();
    const submitted = await bobUa.submit({ html, url: step.url }, { username: BOB.username, password: BOB.password });
    step = await bobUa.follow(step.url, () => false, submitted);
    const res = await bobUa.request(`${base}/connect/callback?code=whatever&state=${state}`);
    assert.equal(res.status, 403);
    assert.match(await res.text(), /belongs to someone else/);
  });

  test('the connect pages list the servers and never show a stored secret', async () => {
    const ua = new UserAgent();
    const index = await connectPage(ua, '/connect');
    assert.match(index.html, /Your MCP servers/);
    for (const name of ['Demo', 'Linear', 'Linear \\(bot\\)']) assert.match(index.html, new RegExp(name));
    const fields = await connectPage(ua, '/connect/team/fields');
    assert.match(fields.html, /type="password"/);
    assert.match(fields.html, /Set\. Leave empty to keep it\./);
    assert.ok(!fields.html.includes(demoKey));
  });
});

describe('shared identity by OAuth client credentials', () => {
  test('Keygate fetches the service account token once, renews it when it expires, and every caller uses it', async () => {
    const before = idp.seen.filter((s) => s === 'POST /token').length;
    for (const token of [alice, bob, alice]) {
      const res = await call('bot', token, 'whoami', {});
      assert.equal(res.status, 200, res.text);
      assert.match(res.text, /client:keygate-cc|keygate-cc/);
    }
    assert.equal(idp.seen.filter((s) => s === 'POST /token').length - before, 1, 'one token for all three calls');
    assert.equal(linear.seen.at(-1)!.client, 'keygate-cc');
  });
});
