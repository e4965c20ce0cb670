import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { federatedTokens, IDP_CLIENT_ID, IDP_CLIENT_SECRET, signInThroughIdp, startFederatedRegistry, type FederatedRegistry } from '../helpers/federated.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';

// Issue 13: federated sign-in maps roles as well as groups from the IdP's
// claims, where the configuration says they are (federated.claims: dotted
// paths reach nested claims, as Keycloak's realm_access.roles), so gateway
// members, policies and access.roles work for federated people. The IdP is a
// real oidc-provider releasing realm_access.roles and a "teams" claim.

const PEOPLE = {
  ops: { sub: 'ops', login: 'ops', password: 'ops-pw', email: 'ops@example.com', email_verified: true, name: 'Ops', groups: ['platform'], roles: ['operator'] },
  dev: { sub: 'dev', login: 'dev', password: 'dev-pw', email: 'dev@example.com', email_verified: true, name: 'Dev', groups: ['eng'], roles: ['developer'] },
};
const person = (p: { login: string; password: string }) => ({ login: p.login, password: p.password });
const OPERATORS_ONLY = 'Operators only';

let idp: TestIdp;
let f: FederatedRegistry;
let plain: FederatedRegistry;

const gateways = [
  { id: 'ops', visibility: 'private', members: { roles: ['operator'] }, servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] },
  { id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc', policies: [{ action: 'deny', tools: ['add'], unless: { roles: ['operator'] }, reason: OPERATORS_ONLY }] }] },
];

before(async () => {
  idp = await startOidcProvider({ accounts: Object.values(PEOPLE) });
  const federated = { upstream_issuer: idp.issuer, scopes: ['openid', 'email', 'profile', 'groups', 'roles'], default_scopes: ['mcp:read', 'mcp:write'] };
  f = await startFederatedRegistry(
    { ...federated, claims: { roles_claim: 'realm_access.roles' } },
    { config: { gateways, access: { roles: [{ name: 'operators', capabilities: ['audit_log'], members: { roles: ['operator'] } }] } } },
  );
  // The same, without claims.roles_claim: nobody has roles.
  plain = await startFederatedRegistry(federated, { config: { gateways } });
  // The registry's client at the IdP, with the callback of each registry.
  await idp.addClient({ client_id: IDP_CLIENT_ID, client_secret: IDP_CLIENT_SECRET, redirect_uris: [`${f.registry.url}/oauth/callback`, `${plain.registry.url}/oauth/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
});
after(async () => {
  await f?.close();
  await plain?.close();
  await idp?.close();
});

async function call(base: string, token: string, path: string, tool: string, args: Record<string, unknown>) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: args, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
  });
  return { status: res.status, body: (await res.json()) as { result?: unknown; error?: { message: string; data?: { reason?: string } } } };
}

describe('roles from a federated IdP', () => {
  test('the roles claim named in federated.claims (a nested path) reaches the registry\'s token, with the groups', async () => {
    const { tokens } = await federatedTokens(f.registry.url, person(PEOPLE.ops));
    const claims = decodeJwt(tokens.access_token);
    assert.deepEqual(claims.roles, ['operator']);
    assert.deepEqual(claims.groups, ['platform']);
  });

  test('gateway members by role: an operator is let in, a developer is refused', async () => {
    const base = f.registry.url;
    const ops = (await federatedTokens(base, person(PEOPLE.ops), { resource: `${base}/mcp/ops` })).tokens.access_token;
    const dev = (await federatedTokens(base, person(PEOPLE.dev), { resource: `${base}/mcp/ops` })).tokens.access_token;
    assert.equal((await call(base, ops, '/mcp/ops/demo', 'echo', { message: 'hi' })).status, 200);
    const refused = await call(base, dev, '/mcp/ops/demo', 'echo', { message: 'hi' });
    assert.equal(refused.status, 403);
  });

  test('a policy by role: the operator may add, the developer is denied with the rule\'s reason', async () => {
    const base = f.registry.url;
    const ops = (await federatedTokens(base, person(PEOPLE.ops), { resource: `${base}/mcp/team` })).tokens.access_token;
    const dev = (await federatedTokens(base, person(PEOPLE.dev), { resource: `${base}/mcp/team` })).tokens.access_token;
    assert.ok((await call(base, ops, '/mcp/team/demo', 'add', { a: 1, b: 2 })).body.result);
    const denied = await call(base, dev, '/mcp/team/demo', 'add', { a: 1, b: 2 });
    assert.equal(denied.body.error?.message, OPERATORS_ONLY);
  });

  test('access.roles by role: the operator holds audit_log, the developer does not', async () => {
    const base = f.registry.url;
    const audit = async (p: { login: string; password: string }) => {
      const token = (await federatedTokens(base, person(p), { scope: 'mcp:read mcp:write' })).tokens.access_token;
      return (await fetch(`${base}/api/v1/audit`, { headers: { authorization: `Bearer ${token}` } })).status;
    };
    assert.equal(await audit(PEOPLE.ops), 200);
    assert.equal(await audit(PEOPLE.dev), 403);
  });

  test('the admin console in federated mode: signed in at the IdP, the operator (audit_log by role) reads the audit page; the developer gets the 403 page', async () => {
    const base = f.registry.url;
    const visit = async (p: { login: string; password: string }) => {
      // /admin sends the browser through the registry's sign-in, here the IdP's login page, and back to the page asked for.
      const { page, ua } = await signInThroughIdp(`${base}/admin/audit`, person(p), { redirect: 'http://never.invalid/' });
      assert.ok(ua.visited.some((u) => u.startsWith(idp.issuer)), 'signed in at the IdP');
      assert.ok(page, 'stopped on a page of the console');
      assert.equal(page.url.pathname, '/admin/audit', `came back to the page asked for, not ${page.url}`);
      return page;
    };
    const ops = await visit(PEOPLE.ops);
    assert.equal(ops.status, 200);
    assert.match(ops.html, /<h1[^>]*>Audit<\/h1>/);
    assert.match(ops.html, /Signed in as/);
    const dev = await visit(PEOPLE.dev);
    assert.equal(dev.status, 403);
    assert.doesNotMatch(dev.html, /<h1[^>]*>Audit<\/h1>/);
  });

  test('without federated.claims.roles_claim nobody gets roles: the operator is refused where the role is needed', async () => {
    const base = plain.registry.url;
    const { tokens } = await federatedTokens(base, person(PEOPLE.ops), { resource: `${base}/mcp/ops` });
    assert.equal(decodeJwt(tokens.access_token).roles, undefined);
    assert.equal((await call(base, tokens.access_token, '/mcp/ops/demo', 'echo', { message: 'hi' })).status, 403);
  });
});
