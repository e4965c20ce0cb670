import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL, callEcho, DAVE, startControlFixture } from '../helpers/control.ts';
import { ALICE, type Fixture } from '../helpers/fixture.ts';
import { signInAdmin } from '../helpers/oauth.ts';

// Capabilities, not fixed role names: with access.roles configured, each
// admin route group needs its capability, held through the roles whose
// members the caller matches (by user, group, email domain, scope or the
// token's roles). A role's name grants nothing; mcp:admin grants only what a
// role gives it; one's own identities (/api/v1/me/...) are always one's own.

const GWEN = { username: 'gwen', password: 'gwen gateway pass phrase' };
const SAM = { username: 'sam', password: 'sam servers pass phrase' };
const IDA = { username: 'ida', password: 'ida identity pass phrase' };
const UMA = { username: 'uma', password: 'uma users pass phrase' };
const CLEO = { username: 'cleo', password: 'cleo clients pass phrase' };

type Client = ReturnType<typeof apiClient>;
let f: Fixture;
let base: string;
const as: Record<string, Client> = {};
const tokens: Record<string, string> = {};

before(async () => {
  f = await startControlFixture(
    (config) => {
      config.oauth_server.builtin.users.push(
        { username: GWEN.username, password_env: 'GWEN_PASSWORD', scopes: ['mcp:read', 'mcp:write'], groups: ['platform'] },
        { username: SAM.username, password_env: 'SAM_PASSWORD', scopes: ['mcp:read', 'mcp:write'], email: 'sam@servers.example' },
        { username: IDA.username, password_env: 'IDA_PASSWORD', scopes: ['mcp:read', 'mcp:write'], roles: ['identity-admin'] },
        { username: UMA.username, password_env: 'UMA_PASSWORD', scopes: ['mcp:read', 'mcp:write'] },
        { username: CLEO.username, password_env: 'CLEO_PASSWORD', scopes: ['mcp:read', 'mcp:write'], groups: ['oauth-team'] },
      );
      // Dave holds mcp:admin, a token role "admin" and a group "admin": none of it is named by a role's members.
      const dave = config.oauth_server.builtin.users.find((u: { username: string }) => u.username === DAVE.username);
      dave.roles = ['admin'];
      dave.groups = ['admin'];
      config.access = {
        roles: [
          { name: 'admin', description: 'named admin, granted to nobody who merely is called admin', capabilities: ['gateway_management', 'server_management', 'identity_management', 'user_management', 'client_management', 'audit_log'], members: { users: ['root@nowhere.example'] } },
          { name: 'gateways', capabilities: ['gateway_management'], members: { groups: ['platform'] } },
          { name: 'servers', capabilities: ['server_management'], members: { email_domains: ['servers.example'] } },
          { name: 'identities', capabilities: ['identity_management'], members: { roles: ['identity-admin'] } },
          { name: 'people', capabilities: ['user_management', 'audit_log'], members: { users: ['uma'] } },
          { name: 'oauth', capabilities: ['client_management'], members: { groups: ['oauth-team'] } },
          // The scope mcp:admin holds only what a role gives it.
          { name: 'auditors', capabilities: ['audit_log'], members: { scopes: ['mcp:admin'] } },
        ],
      };
    },
    { GWEN_PASSWORD: GWEN.password, SAM_PASSWORD: SAM.password, IDA_PASSWORD: IDA.password, UMA_PASSWORD: UMA.password, CLEO_PASSWORD: CLEO.password },
  );
  base = f.registry.url;
  for (const user of [ALICE, CAROL, DAVE, GWEN, SAM, IDA, UMA, CLEO]) {
    tokens[user.username] = (await signInAdmin(base, user)).tokens.access_token;
    as[user.username] = apiClient(base, tokens[user.username]);
  }
});
after(() => f.close());

const CAPABILITY_OF: Record<string, string> = {
  upstreams: 'server_management',
  gateways: 'gateway_management',
  identities: 'identity_management',
  connections: 'identity_management',
  users: 'user_management',
  clients: 'client_management',
  audit: 'audit_log',
};
/** Who holds which capability, by the roles above. */
const HOLDERS: Record<string, string[]> = {
  server_management: ['sam'],
  gateway_management: ['gwen'],
  identity_management: ['ida'],
  user_management: ['uma'],
  client_management: ['cleo'],
  audit_log: ['uma', 'carol', 'dave'],
};
const EVERYONE = ['alice', 'carol', 'dave', 'gwen', 'sam', 'ida', 'uma', 'cleo'];

const routes: [string, string][] = [
  ['GET', '/admin/upstreams'],
  ['POST', '/admin/upstreams'],
  ['PUT', '/admin/upstreams/demo'],
  ['DELETE', '/admin/upstreams/demo'],
  ['POST', '/admin/upstreams/demo/disable'],
  ['GET', '/admin/gateways'],
  ['POST', '/admin/gateways'],
  ['PUT', '/admin/gateways/team'],
  ['DELETE', '/admin/gateways/team'],
  ['POST', '/admin/gateways/team/disable'],
  ['GET', '/admin/identities'],
  ['POST', '/admin/identities'],
  ['DELETE', '/admin/identities/svc'],
  ['POST', '/admin/identities/svc/disable'],
  ['GET', '/admin/users'],
  ['POST', '/admin/users/alice/disable'],
  ['GET', '/admin/connections'],
  ['POST', '/admin/connections/eA/disable'],
  ['GET', '/admin/clients'],
  ['POST', '/admin/clients'],
  ['GET', '/audit'],
];
const groupOf = (path: string) => (path.startsWith('/audit') ? 'audit' : path.split('/')[2]!);

describe('each route group needs its capability', () => {
  test('a caller without the capability gets 403 insufficient_capability naming it, on every route, and nothing changes', async () => {
    for (const [method, path] of routes) {
      const capability = CAPABILITY_OF[groupOf(path)]!;
      for (const who of EVERYONE.filter((u) => !HOLDERS[capability]!.includes(u))) {
        const res = await as[who]!.call(method, path, method === 'GET' || method === 'DELETE' ? undefined : {});
        assert.equal(res.status, 403, `${who}: ${method} ${path}`);
        assert.equal(res.body.error, 'insufficient_capability', `${who}: ${method} ${path}`);
        assert.match(res.body.error_description, new RegExp(`needs the capability ${capability}`), `${who}: ${method} ${path}`);
        assert.equal(res.headers.get('www-authenticate'), null, 'not a token problem: no Bearer challenge');
      }
    }
    assert.equal(f.registry.registry.catalog.current.gateways.get('team')!.disabled, false);
    assert.equal(f.registry.registry.catalog.current.upstreams.get('demo')!.disabled, false);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).status, 200, 'alice was not deactivated');
  });

  test('the description says what the caller does hold', async () => {
    const res = await as.gwen!.get('/admin/upstreams');
    assert.equal(res.body.error_description, 'this route needs the capability server_management (access.roles); your roles grant gateway_management');
    const none = await as.alice!.get('/admin/upstreams');
    assert.match(none.body.error_description, /none of your roles grants a capability/);
  });

  test('a holder reaches each group (lists answer 200)', async () => {
    for (const [capability, holders] of Object.entries(HOLDERS)) {
      for (const [group, needed] of Object.entries(CAPABILITY_OF)) {
        if (needed !== capability) continue;
        const path = group === 'audit' ? '/audit' : `/admin/${group}`;
        for (const who of holders) {
          const res = await as[who]!.get(path);
          assert.equal(res.status, 200, `${who}: GET ${path}: ${JSON.stringify(res.body)}`);
        }
      }
    }
  });

  test('without a token: 401 invalid_token with the challenge, as before', async () => {
    const res = await apiClient(base, undefined).get('/admin/gateways');
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_token');
    assert.match(res.headers.get('www-authenticate')!, /^Bearer resource_metadata=/);
  });
});

describe('what each capability allows', () => {
  test('gateway_management: gwen creates a gateway with tool policies; sam cannot; a bad policy is refused naming the field', async () => {
    const body = {
      id: 'eng',
      visibility: 'private',
      servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc', policies: [{ action: 'deny', tools: ['echo'], when: { users: ['alice'] }, reason: 'Alice may not echo here' }] }],
    };
    assert.equal((await as.sam!.post('/admin/gateways', body)).status, 403);
    assert.equal(f.registry.registry.catalog.current.gateways.has('eng'), false);

    const bad = await as.gwen!.post('/admin/gateways', { ...body, servers: [{ ...body.servers[0], policies: [{ action: 'block' }] }] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_request');
    assert.equal(bad.body.error_description, 'servers.0.policies.0.action: expected action: allow or deny');
    const unknown = await as.gwen!.post('/admin/gateways', { ...body, servers: [{ ...body.servers[0], policies: [{ action: 'deny', condition: 'true' }] }] });
    assert.equal(unknown.body.error_description, 'unknown field servers.0.policies.0.condition');

    const created = await as.gwen!.post('/admin/gateways', body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.servers[0].policies, body.servers[0]!.policies);
    // In effect on the next call: alice is denied with the reason, dave is not.
    const denied = await callEcho(`${base}/mcp/eng/demo`, tokens.alice);
    assert.deepEqual({ status: denied.status, reason: denied.reason, message: denied.message }, { status: 200, reason: 'policy_denied', message: 'Alice may not echo here' });
    assert.equal((await callEcho(`${base}/mcp/eng/demo`, tokens.dave)).text, 'hi');
    assert.equal((await as.gwen!.delete('/admin/gateways/eng')).status, 204);
  });

  test('server_management: sam disables and enables an upstream; gwen cannot', async () => {
    assert.equal((await as.gwen!.post('/admin/upstreams/demo/disable', {})).status, 403);
    assert.equal((await as.sam!.post('/admin/upstreams/demo/disable', { reason: 'maintenance' })).status, 200);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).reason, 'upstream_disabled');
    assert.equal((await as.sam!.post('/admin/upstreams/demo/enable', {})).status, 200);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).status, 200);
  });

  test("identity_management: ida acts on another person's identity; uma cannot", async () => {
    const mine = await as.alice!.post('/me/identities', { upstream: 'demo', token: 'alice-own-token-123', label: 'mine' });
    assert.equal(mine.status, 201, JSON.stringify(mine.body));
    assert.equal((await as.uma!.post(`/admin/identities/${mine.body.id}/disable`, {})).status, 403);
    const disabled = await as.ida!.post(`/admin/identities/${mine.body.id}/disable`, {});
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.equal((await as.ida!.post(`/admin/identities/${mine.body.id}/enable`, {})).status, 200);
  });

  test('user_management: uma deactivates and reactivates an account; ida cannot', async () => {
    assert.equal((await as.ida!.post('/admin/users/bob/disable', {})).status, 403);
    const res = await as.uma!.post('/admin/users/bob/disable', { reason: 'test' });
    assert.equal(res.status, 200);
    assert.equal(res.body.disabled, true);
    assert.equal((await as.uma!.post('/admin/users/bob/enable', {})).status, 200);
  });

  test('audit_log: the scope mcp:admin reads the audit only because the "auditors" role names it', async () => {
    assert.equal((await as.carol!.get('/audit')).status, 200);
    assert.equal((await as.carol!.get('/admin/gateways')).status, 403, 'mcp:admin alone is no longer every capability');
  });
});

describe('names and one\'s own identities', () => {
  test('a role name carries no meaning: dave (token role "admin", group "admin") holds nothing a role named "admin" grants', async () => {
    for (const path of ['/admin/gateways', '/admin/upstreams', '/admin/identities', '/admin/users']) {
      const res = await as.dave!.get(path);
      assert.equal(res.status, 403, path);
      assert.equal(res.body.error, 'insufficient_capability');
    }
    const me = await as.dave!.get('/me/capabilities');
    assert.deepEqual(me.body, { capabilities: ['audit_log'], roles: ['auditors'] }, 'only the role whose members name his scope');
  });

  test('/api/v1/me/capabilities says what each caller may administer', async () => {
    assert.deepEqual((await as.gwen!.get('/me/capabilities')).body, { capabilities: ['gateway_management'], roles: ['gateways'] });
    assert.deepEqual((await as.ida!.get('/me/capabilities')).body, { capabilities: ['identity_management'], roles: ['identities'] });
    assert.deepEqual((await as.alice!.get('/me/capabilities')).body, { capabilities: [], roles: [] });
    assert.equal((await apiClient(base, undefined).get('/me/capabilities')).status, 401);
  });

  test('managing one\'s own identities needs no capability', async () => {
    for (const who of ['alice', 'dave', 'gwen']) {
      const created = await as[who]!.post('/me/identities', { upstream: 'demo', token: `${who}-token-456`, label: `${who}'s` });
      assert.equal(created.status, 201, `${who}: ${JSON.stringify(created.body)}`);
      const listed = await as[who]!.get('/me/identities');
      assert.equal(listed.status, 200);
      assert.ok(listed.body.identities.some((i: { id: string }) => i.id === created.body.id));
      assert.equal((await as[who]!.delete(`/me/identities/${created.body.id}`)).status, 204);
      assert.equal((await as[who]!.get('/me/audit')).status, 200, 'and one\'s own audit entries');
    }
  });
});
