import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { callMethod } from '../helpers/control.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authorizeUrl, pkce, REDIRECT, registerClient, signIn } from '../helpers/oauth.ts';
import { parseForms, submitLogin } from '../helpers/form.ts';

// Scopes bind on the MCP endpoints (issue 9, item 3), attacked from outside
// over HTTP on both endpoints and both eras: a token granted only
// offline_access reaches nothing, an mcp:read token lists and reads but a
// tools/call is 403 insufficient_scope naming mcp:write (RFC 6750 §3.1, the
// MCP step-up challenge), and the upstream never sees what was refused. A
// gateway may name its own scopes (gateways[].scopes).

const ROOT = { username: 'root', password: 'root admin pass phrase' };
const OPS_SECRET = 'ops bot secret of some length';
let f: Fixture;
let base: string;
const LEGACY = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25' };

before(async () => {
  f = await startFixture((config) => {
    config.oauth_server.scopes_supported = ['mcp:read', 'mcp:write', 'mcp:admin', 'offline_access', 'crm:call'];
    config.oauth_server.builtin.users.push({ username: 'erin', password_env: 'ERIN_PASSWORD', scopes: ['mcp:read', 'crm:call'] });
    config.oauth_server.builtin.users.push({ username: 'root', password_env: 'ROOT_PASSWORD', scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] });
    // An admin-configured agent that holds mcp:admin among its scopes.
    config.oauth_server.clients = [{ client_id: 'ops-bot', name: 'Ops bot', client_secret_env: 'OPS_SECRET', grant_types: ['client_credentials'], scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] }];
    // Two servers: /mcp/team is the merged endpoint.
    config.gateways[0].servers.push({ upstream: 'demo', name: 'second', identity: 'shared', shared_identity: 'svc' });
    // A gateway whose tools/call needs a scope of its own.
    config.gateways.push({ id: 'crm', visibility: 'private', scopes: { write: 'crm:call' }, servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] });
  }, { ERIN_PASSWORD: 'erin pass phrase long', ROOT_PASSWORD: ROOT.password, OPS_SECRET });
  base = f.registry.url;
});
after(() => f?.close());

/** Calls of `tool` the upstream has seen so far. */
const upstreamCalls = () => f.upstream.seen.filter((r) => (r.mcpMethod ?? r.rpcMethod) === 'tools/call').length;

async function legacy(url: string, token: string, session: string | undefined, message: Record<string, unknown>) {
  const res = await fetch(url, { method: 'POST', headers: { ...LEGACY, authorization: `Bearer ${token}`, ...(session && { 'mcp-session-id': session }) }, body: JSON.stringify(message) });
  const text = await res.text();
  const data = text.split('\n').find((l) => l.startsWith('data: ') && l.length > 6);
  const body = data ? JSON.parse(data.slice(6)) : text ? JSON.parse(text) : undefined;
  return { status: res.status, session: res.headers.get('mcp-session-id') ?? session, challenge: res.headers.get('www-authenticate'), body };
}
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'scope-test', version: '1' } } };

describe('scopes on the MCP endpoints', () => {
  test('a token granted only offline_access reaches nothing: every method is 403 insufficient_scope naming the scope it needs', async () => {
    const { tokens } = await signIn(base, ALICE, { scope: 'offline_access', resource: `${base}/mcp/team` });
    assert.equal(tokens.scope, 'offline_access');
    for (const url of [`${base}/mcp/team`, `${base}/mcp/team/demo`]) {
      for (const method of ['tools/list', 'tools/call', 'resources/list', 'prompts/list', 'ping']) {
        const res = await callMethod(url, tokens.access_token, method, method === 'tools/call' ? { name: 'echo', arguments: { message: 'x' } } : {});
        assert.deepEqual([res.status, res.reason], [403, 'insufficient_scope'], `${method} at ${url}`);
        assert.match(res.body.error.message, method === 'tools/call' ? /needs the scope mcp:write/ : /needs the scope mcp:read/);
      }
      const init = await legacy(url, tokens.access_token, undefined, initialize);
      assert.equal(init.status, 403, 'no 2025 handshake either');
      assert.match(init.challenge!, /error="insufficient_scope".*scope="mcp:read"/);
    }
  });

  test('the consent page says truthfully what each scope allows', async () => {
    const { client_id } = await registerClient(base);
    const { challenge } = pkce();
    const url = authorizeUrl(base, { response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', scope: 'offline_access' });
    const page = await submitLogin(url, ALICE.username, ALICE.password);
    const html = await page.text();
    assert.ok(parseForms(html, base).some((form) => /approve/.test(JSON.stringify(form))), 'the consent form');
    assert.match(html, /Stay connected while you are away \(refresh tokens\); on its own it reaches no MCP server/);
    assert.doesNotMatch(html, /call tools/);
  });

  for (const [era, endpoint] of [
    ['2026-07-28', 'raw'],
    ['2026-07-28', 'merged'],
  ] as const) {
    test(`${era} ${endpoint}: an mcp:read token lists, but its tools/call is 403 with the step-up challenge, and never reaches the upstream`, async () => {
      const url = endpoint === 'raw' ? `${base}/mcp/team/demo` : `${base}/mcp/team`;
      const { tokens } = await signIn(base, ALICE, { scope: 'mcp:read', resource: `${base}/mcp/team` });
      assert.equal((await callMethod(url, tokens.access_token, 'tools/list')).status, 200);
      const before = upstreamCalls();
      const res = await fetch(url, {
        method: 'POST',
        headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': endpoint === 'raw' ? 'echo' : 'demo__echo', authorization: `Bearer ${tokens.access_token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: endpoint === 'raw' ? 'echo' : 'demo__echo', arguments: { message: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
      });
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('www-authenticate'), `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource${new URL(url).pathname}", error="insufficient_scope", error_description="this call needs the scope mcp:write", scope="mcp:write"`);
      const body = (await res.json()) as { id: number; error: { data: { step: string; reason: string } } };
      assert.deepEqual([body.id, body.error.data.step, body.error.data.reason], [7, 'scope', 'insufficient_scope']);
      assert.equal(upstreamCalls(), before, 'the upstream never saw the call');
    });
  }

  for (const endpoint of ['raw', 'merged'] as const) {
    test(`2025-11-25 ${endpoint}: an mcp:read session initializes and lists; each tools/call on it is refused with 403, and the session goes on`, async () => {
      const url = endpoint === 'raw' ? `${base}/mcp/team/demo` : `${base}/mcp/team`;
      const { tokens } = await signIn(base, ALICE, { scope: 'mcp:read', resource: `${base}/mcp/team` });
      const init = await legacy(url, tokens.access_token, undefined, initialize);
      assert.equal(init.status, 200);
      assert.ok(init.session);
      await legacy(url, tokens.access_token, init.session!, { jsonrpc: '2.0', method: 'notifications/initialized' });
      const before = upstreamCalls();
      const call = await legacy(url, tokens.access_token, init.session!, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: endpoint === 'raw' ? 'echo' : 'demo__echo', arguments: { message: 'x' } } });
      assert.equal(call.status, 403);
      assert.match(call.challenge!, /error="insufficient_scope".*scope="mcp:write"/);
      assert.deepEqual([call.body.id, call.body.error.data.reason], [2, 'insufficient_scope']);
      assert.equal(upstreamCalls(), before, 'the upstream never saw the call');
      const list = await legacy(url, tokens.access_token, init.session!, { jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} });
      assert.equal(list.status, 200, 'the session goes on');
      assert.ok(list.body.result.tools.length > 0);
    });
  }

  test('an mcp:read mcp:write token calls tools on both endpoints', async () => {
    const { tokens } = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    for (const [url, name] of [
      [`${base}/mcp/team/demo`, 'echo'],
      [`${base}/mcp/team`, 'demo__echo'],
    ] as const) {
      const res = await callMethod(url, tokens.access_token, 'tools/call', { name, arguments: { message: 'allowed' } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.result.content[0].text, 'allowed');
    }
  });

  test('a gateway naming its own scope (scopes.write: crm:call): erin holds it and calls; mcp:write is not it, and erin cannot call on a gateway with the default', async () => {
    const erin = { username: 'erin', password: 'erin pass phrase long' };
    const crm = (await signIn(base, erin, { resource: `${base}/mcp/crm` })).tokens.access_token;
    const call = await callMethod(`${base}/mcp/crm`, crm, 'tools/call', { name: 'echo', arguments: { message: 'crm' } });
    assert.equal(call.status, 200, JSON.stringify(call.body));
    const alice = (await signIn(base, ALICE, { resource: `${base}/mcp/crm` })).tokens.access_token;
    const refused = await callMethod(`${base}/mcp/crm`, alice, 'tools/call', { name: 'echo', arguments: { message: 'crm' } });
    assert.deepEqual([refused.status, refused.reason], [403, 'insufficient_scope']);
    assert.match(refused.body.error.message, /crm:call/);
    const team = (await signIn(base, erin, { resource: `${base}/mcp/team` })).tokens.access_token;
    const elsewhere = await callMethod(`${base}/mcp/team/demo`, team, 'tools/call', { name: 'echo', arguments: { message: 'x' } });
    assert.deepEqual([elsewhere.status, elsewhere.reason], [403, 'insufficient_scope']);
  });
});

describe('mcp:admin stays with the admin API (issue 9, item 5)', () => {
  const prm = async (path: string) => (await (await fetch(`${base}/.well-known/oauth-protected-resource${path}`)).json()) as { scopes_supported: string[] };
  const admin = (token: string) => fetch(`${base}/api/v1/admin/gateways`, { headers: { authorization: `Bearer ${token}` } });

  test('MCP endpoints advertise only the scopes their methods need; the registry as a whole (the admin API) lists mcp:admin', async () => {
    for (const path of ['/mcp/team', '/mcp/team/demo']) assert.deepEqual((await prm(path)).scopes_supported, ['mcp:read', 'mcp:write'], path);
    assert.deepEqual((await prm('/mcp/crm')).scopes_supported, ['mcp:read', 'crm:call'], 'a gateway with its own scope names it');
    assert.deepEqual((await prm('/mcp')).scopes_supported.sort(), ['crm:call', 'mcp:read', 'mcp:write']);
    assert.ok((await prm('')).scopes_supported.includes('mcp:admin'));
  });

  test('a 401 from an MCP endpoint names the scopes to ask for, never mcp:admin (missing and invalid token alike)', async () => {
    for (const [path, scope] of [
      ['/mcp/team', 'mcp:read mcp:write'],
      ['/mcp/team/demo', 'mcp:read mcp:write'],
      ['/mcp/crm', 'mcp:read crm:call'],
    ] as const) {
      for (const token of [undefined, 'not-a-token']) {
        const res = await callMethod(`${base}${path}`, token, 'tools/list');
        assert.equal(res.status, 401);
        assert.match(res.headers.get('www-authenticate')!, new RegExp(`scope="${scope}"`), `${path} with ${token ?? 'no token'}`);
        assert.doesNotMatch(res.headers.get('www-authenticate')!, /mcp:admin/);
      }
    }
  });

  test('an admin who asks for no scope (an MCP client asking for "everything") gets no mcp:admin, and the admin API refuses that token', async () => {
    const { tokens } = await signIn(base, ROOT);
    assert.deepEqual(tokens.scope.split(' ').sort(), ['mcp:read', 'mcp:write']);
    assert.equal((await admin(tokens.access_token)).status, 403);
  });

  test('mcp:admin asked for by name, for an MCP endpoint: left out of the token (the admin API is not its audience)', async () => {
    const { tokens } = await signIn(base, ROOT, { scope: 'mcp:read mcp:admin', resource: `${base}/mcp/team` });
    assert.equal(tokens.scope, 'mcp:read');
    const both = await signIn(base, ROOT, { scope: 'mcp:read mcp:admin', resource: [base, `${base}/mcp/team`] });
    assert.equal(both.tokens.scope, 'mcp:read', 'not with a second audience beside the registry either');
    assert.equal((await admin(both.tokens.access_token)).status, 403);
  });

  test('mcp:admin asked for by name for the registry as a whole (no resource, or the registry itself): granted, and the admin API answers', async () => {
    for (const resource of [undefined, base]) {
      const { tokens } = await signIn(base, ROOT, { scope: 'mcp:read mcp:admin', ...(resource && { resource }) });
      assert.equal(tokens.scope, 'mcp:read mcp:admin');
      assert.equal((await admin(tokens.access_token)).status, 200);
    }
  });

  test('an agent configured with mcp:admin gets it from client_credentials only by name and only for the registry', async () => {
    const grant = async (params: Record<string, string>) => {
      const res = await fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`ops-bot:${OPS_SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', ...params }),
      });
      assert.equal(res.status, 200);
      return (await res.json()) as { access_token: string; scope: string };
    };
    const unasked = await grant({});
    assert.equal(unasked.scope, 'mcp:read mcp:write');
    assert.equal((await admin(unasked.access_token)).status, 403);
    assert.equal((await grant({ scope: 'mcp:admin', resource: `${base}/mcp/team` })).scope, '');
    const named = await grant({ scope: 'mcp:admin' });
    assert.equal(named.scope, 'mcp:admin');
    assert.equal((await admin(named.access_token)).status, 200);
  });
});
