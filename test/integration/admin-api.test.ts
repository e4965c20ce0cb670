import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL, callEcho, startControlFixture } from '../helpers/control.ts';
import type { Fixture } from '../helpers/fixture.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';

// /api/v1/admin: every route needs mcp:admin; bodies are the configuration's
// own schemas, checked for cross-references against the current catalog;
// config-defined entries are read-only; identities are metadata only.

const ALICE_SECRET = 'alice-private-secret-0f9e8d7c';
const FIELD_SECRET = 'field-secret-value-5a4b3c2d';
const ROTATED_SECRET = 'rotated-wrong-key-11223344';

let f: Fixture;
let base: string;
let admin: ReturnType<typeof apiClient>;
let alice: ReturnType<typeof apiClient>;
let aliceToken: string;
let alicePrivate: string;
/** Every admin response body, to assert no secret ever appears in one. */
const seen: string[] = [];

before(async () => {
  f = await startControlFixture((config) => {
    config.upstreams.push(
      {
        id: 'fieldsy',
        url: 'http://127.0.0.1:9/mcp',
        credential: {
          type: 'fields',
          fields: [
            { name: 'api_key', label: 'API key', secret: true },
            { name: 'workspace', label: 'Workspace', secret: false },
          ],
          inject: { header: 'authorization', value: 'Bearer {api_key}' },
        },
      },
      { id: 'oauthy', url: 'http://127.0.0.1:9/mcp', credential: { type: 'oauth', auth_url: 'http://127.0.0.1:9/authorize', token_url: 'http://127.0.0.1:9/token', client_id: 'x' } },
    );
  });
  base = f.registry.url;
  const carolToken = (await signInAdmin(base, CAROL)).tokens.access_token;
  aliceToken = (await signIn(base, ALICE)).tokens.access_token;
  const record = (client: ReturnType<typeof apiClient>) => {
    const wrap =
      <A extends unknown[]>(fn: (...args: A) => Promise<{ status: number; body: unknown; headers: Headers }>) =>
      async (...args: A) => {
        const res = await fn(...args);
        seen.push(JSON.stringify(res.body));
        return res;
      };
    return { ...client, get: wrap(client.get), post: wrap(client.post), put: wrap(client.put), delete: wrap(client.delete) };
  };
  admin = record(apiClient(base, carolToken)) as ReturnType<typeof apiClient>;
  alice = apiClient(base, aliceToken);
  alicePrivate = (await f.registry.registry.identities.put({ upstream: 'demo', owner: 'alice', availability: 'private', label: 'mine', secret: { kind: 'bearer', token: ALICE_SECRET }, created_by: 'alice' })).id;
});
after(() => f.close());

describe('who may call the admin API', () => {
  const routes: [string, string][] = [
    ['GET', '/admin/upstreams'],
    ['POST', '/admin/upstreams'],
    ['GET', '/admin/upstreams/demo'],
    ['PUT', '/admin/upstreams/demo'],
    ['DELETE', '/admin/upstreams/demo'],
    ['POST', '/admin/upstreams/demo/disable'],
    ['POST', '/admin/upstreams/demo/enable'],
    ['GET', '/admin/gateways'],
    ['POST', '/admin/gateways'],
    ['GET', '/admin/gateways/team'],
    ['PUT', '/admin/gateways/team'],
    ['DELETE', '/admin/gateways/team'],
    ['POST', '/admin/gateways/team/disable'],
    ['POST', '/admin/gateways/team/enable'],
    ['GET', '/admin/identities'],
    ['POST', '/admin/identities'],
    ['GET', '/admin/identities/svc'],
    ['PUT', '/admin/identities/svc'],
    ['DELETE', '/admin/identities/svc'],
    ['POST', '/admin/identities/svc/disable'],
    ['POST', '/admin/identities/svc/enable'],
    ['GET', '/admin/users'],
    ['GET', '/admin/users/alice'],
    ['POST', '/admin/users/alice/disable'],
    ['POST', '/admin/users/alice/enable'],
    ['GET', '/admin/connections'],
    ['GET', '/admin/connections/eA'],
    ['POST', '/admin/connections/eA/disable'],
    ['POST', '/admin/connections/eA/enable'],
    ['GET', '/audit'],
  ];

  test('without a token every route is 401 invalid_token with the RFC 9728 challenge', async () => {
    const anonymous = apiClient(base, undefined);
    for (const [method, path] of routes) {
      const res = await anonymous.call(method, path, method === 'GET' || method === 'DELETE' ? undefined : {});
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(res.body.error, 'invalid_token', `${method} ${path}`);
      assert.match(res.headers.get('www-authenticate')!, /^Bearer resource_metadata="[^"]+\/.well-known\/oauth-protected-resource"/, `${method} ${path}`);
    }
  });

  test('a token without mcp:admin is 403 insufficient_scope naming the scope, and changes nothing', async () => {
    for (const [method, path] of routes) {
      const res = await alice.call(method, path, method === 'GET' || method === 'DELETE' ? undefined : {});
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.error, 'insufficient_scope', `${method} ${path}`);
      assert.match(res.headers.get('www-authenticate')!, /error="insufficient_scope".*scope="mcp:admin"/, `${method} ${path}`);
    }
    assert.equal(f.registry.registry.catalog.current.gateways.get('team')!.disabled, false);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, aliceToken)).status, 200);
  });

  test('a body that is not JSON is 400 invalid_request', async () => {
    const res = await admin.call('POST', '/admin/upstreams', '{"id": ', { 'content-type': 'application/json' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_request');
  });
});

describe('upstreams', () => {
  test('config-defined upstreams are listed with their source and no secret value', async () => {
    const res = await admin.get('/admin/upstreams');
    assert.equal(res.status, 200);
    const demo = res.body.upstreams.find((u: { id: string }) => u.id === 'demo');
    assert.deepEqual({ source: demo.source, url: demo.url, credential: demo.credential, disabled: demo.disabled }, { source: 'config', url: f.upstream.url, credential: { type: 'bearer' }, disabled: false });
    assert.ok(!JSON.stringify(res.body).includes(f.apiKey), 'no secret in the answer');
    assert.equal((await admin.get('/admin/upstreams/nope')).status, 404);
    assert.equal((await admin.get('/admin/upstreams/nope')).body.error, 'not_found');
  });

  test('create, read, update and delete an upstream; each change is answered once in effect', async () => {
    const created = await admin.post('/admin/upstreams', { id: 'extra', name: 'Extra', url: f.upstream.url, credential: { type: 'bearer', token_env: 'DEMO_KEY' }, timeout: '30s' });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('location'), '/api/v1/admin/upstreams/extra');
    assert.deepEqual({ id: created.body.id, name: created.body.name, source: created.body.source, timeout: created.body.timeout }, { id: 'extra', name: 'Extra', source: 'api', timeout: 30 });
    assert.equal(f.registry.registry.catalog.current.upstreams.get('extra')?.name, 'Extra', 'in the catalog when the call answers');

    assert.equal((await admin.post('/admin/upstreams', { id: 'extra', url: f.upstream.url })).status, 409, 'the id is taken');
    assert.equal((await admin.post('/admin/upstreams', { id: 'demo', url: f.upstream.url })).body.error, 'conflict', 'a config id is taken too');

    const updated = await admin.put('/admin/upstreams/extra', { name: 'Extra 2', url: f.upstream.url, credential: { type: 'bearer', token_env: 'DEMO_KEY' } });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.name, 'Extra 2');
    assert.equal(f.registry.registry.catalog.current.upstreams.get('extra')?.name, 'Extra 2');
    assert.equal((await admin.get('/admin/upstreams/extra')).body.name, 'Extra 2');

    // A gateway on it serves at once, with the upstream's env-backed credential.
    assert.equal((await admin.post('/admin/gateways', { id: 'extra-gw', visibility: 'private', servers: [{ upstream: 'extra', identity: 'shared' }] })).status, 201);
    const call = await callEcho(`${base}/mcp/extra-gw/extra`, aliceToken, 'via api');
    assert.deepEqual([call.status, call.text], [200, 'via api']);

    const inUse = await admin.delete('/admin/upstreams/extra');
    assert.equal(inUse.status, 409);
    assert.match(inUse.body.error_description, /assigned on gateway "extra-gw"/);
    assert.equal((await admin.delete('/admin/gateways/extra-gw')).status, 204);
    assert.equal((await callEcho(`${base}/mcp/extra-gw/extra`, aliceToken)).reason, 'unknown_gateway', 'gone on the next request');
    assert.equal((await admin.delete('/admin/upstreams/extra')).status, 204);
    assert.equal((await admin.get('/admin/upstreams/extra')).status, 404);
    assert.equal(f.registry.registry.catalog.current.upstreams.has('extra'), false);
  });

  test('malformed bodies are 400 invalid_request naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ id: 'x' }, /^url: /],
      [{ id: 'x', url: 'ftp://example.com' }, /^url: expected an http\(s\) URL/],
      [{ id: 'Bad Id', url: 'http://127.0.0.1:1/mcp' }, /^id: expected a lowercase id/],
      [{ id: 'x', url: 'http://127.0.0.1:1/mcp', credential: { type: 'magic' } }, /^credential.type: expected credential.type to be one of/],
      [{ id: 'x', url: 'http://127.0.0.1:1/mcp', credential: { type: 'header' } }, /^credential.name: /],
      [{ id: 'x', url: 'http://127.0.0.1:1/mcp', timeout: 'soon' }, /^timeout: expected a positive duration/],
      [{ id: 'x', url: 'http://127.0.0.1:1/mcp', colour: 'red' }, /^unknown field colour/],
    ];
    for (const [body, message] of cases) {
      const res = await admin.post('/admin/upstreams', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error, 'invalid_request');
      assert.match(res.body.error_description, message, JSON.stringify(body));
    }
    assert.equal((await admin.get('/admin/upstreams/x')).status, 404, 'nothing was created');
  });

  test('config-defined upstreams are read-only (409), unknown ones 404', async () => {
    const put = await admin.put('/admin/upstreams/demo', { url: f.upstream.url });
    assert.equal(put.status, 409);
    assert.equal(put.body.error, 'conflict');
    assert.match(put.body.error_description, /defined in the configuration file/);
    assert.equal((await admin.delete('/admin/upstreams/demo')).status, 409);
    assert.equal((await admin.put('/admin/upstreams/nope', { url: f.upstream.url })).status, 404);
    assert.equal((await admin.delete('/admin/upstreams/nope')).status, 404);
    assert.equal((await admin.post('/admin/upstreams/nope/disable')).status, 404);
  });

  test('a change that would break a gateway assignment is 400, and the URL id cannot be changed', async () => {
    assert.equal((await admin.post('/admin/upstreams', { id: 'keyed', url: f.upstream.url, credential: { type: 'bearer' } })).status, 201);
    assert.equal((await admin.post('/admin/gateways', { id: 'keyed-gw', servers: [{ upstream: 'keyed', identity: 'per_user' }] })).status, 201);
    const res = await admin.put('/admin/upstreams/keyed', { url: f.upstream.url, credential: { type: 'none' } });
    assert.equal(res.status, 400);
    assert.match(res.body.error_description, /gateway "keyed-gw" servers.0.identity: upstream "keyed" takes no credential/);
    assert.equal((await admin.get('/admin/upstreams/keyed')).body.credential.type, 'bearer', 'unchanged');
    const renamed = await admin.put('/admin/upstreams/keyed', { id: 'other', url: f.upstream.url });
    assert.equal(renamed.status, 400);
    assert.match(renamed.body.error_description, /^id: /);
    await admin.delete('/admin/gateways/keyed-gw');
    await admin.delete('/admin/upstreams/keyed');
  });
});

describe('gateways', () => {
  test('config-defined gateways are listed and read-only', async () => {
    const list = await admin.get('/admin/gateways');
    const team = list.body.gateways.find((g: { id: string }) => g.id === 'team');
    assert.deepEqual(
      { source: team.source, visibility: team.visibility, mcp_url: team.mcp_url, servers: team.servers },
      { source: 'config', visibility: 'private', mcp_url: `${base}/mcp/team`, servers: [{ upstream: 'demo', name: 'demo', identity: 'shared', shared_identity: 'svc', storage: 'registry', mcp_url: `${base}/mcp/team/demo` }] },
    );
    assert.equal((await admin.get('/admin/gateways/team')).body.id, 'team');
    assert.equal((await admin.get('/admin/gateways/nope')).status, 404);
    const put = await admin.put('/admin/gateways/team', { servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] });
    assert.equal(put.status, 409);
    assert.match(put.body.error_description, /defined in the configuration file/);
    assert.equal((await admin.delete('/admin/gateways/team')).status, 409);
    assert.equal((await admin.put('/admin/gateways/nope', { servers: [{ upstream: 'demo', identity: 'per_user' }] })).status, 404);
    assert.equal((await admin.delete('/admin/gateways/nope')).status, 404);
  });

  test('malformed gateways are 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ id: 'g' }, /^servers: /],
      [{ id: 'g', servers: [] }, /^servers: a gateway needs at least one server/],
      [{ id: 'g', servers: [{ upstream: 'demo', identity: 'sometimes' }] }, /^servers.0.identity: expected identity: shared or per_user/],
      [{ id: 'g', servers: [{ upstream: 'demo', identity: 'per_user', shared_identity: 'svc' }] }, /^servers.0.shared_identity: a per_user server has no shared_identity/],
      [{ id: 'g', visibility: 'secret', servers: [{ upstream: 'demo', identity: 'per_user' }] }, /^visibility: /],
      [{ id: 'g', members: { email_domains: ['not a domain'] }, servers: [{ upstream: 'demo', identity: 'per_user' }] }, /^members.email_domains.0: expected a domain/],
      [{ id: 'g', servers: [{ upstream: 'demo', identity: 'per_user', tools: { allow: 'echo' } }] }, /^servers.0.tools.allow: /],
    ];
    for (const [body, message] of cases) {
      const res = await admin.post('/admin/gateways', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error, 'invalid_request');
      assert.match(res.body.error_description, message, JSON.stringify(body));
    }
  });

  test('dangling references are 400: an unknown upstream, a missing, private or mismatched shared identity, a duplicate name', async () => {
    const cases: [unknown, RegExp][] = [
      [{ id: 'g', servers: [{ upstream: 'ghost', identity: 'per_user' }] }, /^servers.0.upstream: no upstream with id "ghost"/],
      [{ id: 'g', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'ghost' }] }, /^servers.0.shared_identity: no identity "ghost"/],
      [{ id: 'g', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: alicePrivate }] }, /private to its owner; a shared server needs a global identity/],
      [{ id: 'g', servers: [{ upstream: 'fieldsy', identity: 'shared', shared_identity: 'svc' }] }, /identity "svc" is for upstream "demo", not "fieldsy"/],
      [{ id: 'g', servers: [{ upstream: 'demo', identity: 'per_user' }, { upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }, /servers.1.name: two servers of gateway "g" are named "demo"/],
      [{ id: 'g', servers: [{ upstream: 'fieldsy', identity: 'shared' }] }, /servers.0.shared_identity: upstream "fieldsy" has credential.type fields: a shared server names its shared_identity/],
    ];
    for (const [body, message] of cases) {
      const res = await admin.post('/admin/gateways', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error_description, message, JSON.stringify(body));
    }
    assert.equal((await admin.get('/admin/gateways/g')).status, 404, 'nothing was created');
  });

  test('a gateway with two assignments of one upstream and members rules; updates apply on the next request', async () => {
    const body = {
      id: 'crew',
      name: 'Crew',
      visibility: 'private',
      members: { users: ['bob'] },
      servers: [
        { upstream: 'demo', name: 'read', identity: 'shared', shared_identity: 'svc', tools: { allow: ['echo', 'add'], deny: [] } },
        { upstream: 'demo', name: 'write', identity: 'per_user' },
      ],
    };
    const created = await admin.post('/admin/gateways', body);
    assert.equal(created.status, 201);
    assert.deepEqual(created.body.servers.map((s: { name: string; identity: string }) => [s.name, s.identity]), [['read', 'shared'], ['write', 'per_user']]);
    assert.equal((await admin.post('/admin/gateways', body)).status, 409, 'the id is taken');
    assert.equal((await admin.post('/admin/gateways', { ...body, id: 'team' })).status, 409, 'a config id is taken too');
    assert.equal((await callEcho(`${base}/mcp/crew/read`, aliceToken)).reason, 'not_a_member');

    const updated = await admin.put('/admin/gateways/crew', { ...body, id: undefined, members: { users: ['alice'] } });
    assert.equal(updated.status, 200);
    assert.deepEqual(updated.body.members.users, ['alice']);
    const call = await callEcho(`${base}/mcp/crew/read`, aliceToken, 'member now');
    assert.deepEqual([call.status, call.text], [200, 'member now']);

    assert.equal((await admin.delete('/admin/gateways/crew')).status, 204);
    assert.equal((await admin.get('/admin/gateways/crew')).status, 404);
  });
});

describe('identities', () => {
  test('the list is metadata only: no secret, no secret field value; private identities show no values at all', async () => {
    const res = await admin.get('/admin/identities');
    assert.equal(res.status, 200);
    const svc = res.body.identities.find((i: { id: string }) => i.id === 'svc');
    assert.deepEqual(svc, { ...svc, upstream: 'demo', owner: 'organization', availability: 'global', kind: 'bearer', disabled: false, created_by: 'config' });
    const mine = res.body.identities.find((i: { id: string }) => i.id === alicePrivate);
    assert.deepEqual({ owner: mine.owner, availability: mine.availability, label: mine.label }, { owner: 'alice', availability: 'private', label: 'mine' });
    for (const identity of res.body.identities) assert.equal('secret' in identity, false);
    const text = JSON.stringify(res.body);
    assert.ok(!text.includes(f.apiKey) && !text.includes(ALICE_SECRET), 'no secret in the list');
    assert.deepEqual((await admin.get(`/admin/identities?owner=alice`)).body.identities.map((i: { id: string }) => i.id), [alicePrivate]);
    assert.equal((await admin.get('/admin/identities/nope')).status, 404);
    assert.equal((await admin.get('/admin/identities?colour=red')).status, 400);
  });

  test('an admin creates a service account: global, owned by the organization, created_by the admin; the value never comes back', async () => {
    const res = await admin.post('/admin/identities', { id: 'bot', upstream: 'demo', label: 'Bot', token: f.apiKey });
    assert.equal(res.status, 201);
    assert.deepEqual(
      { id: res.body.id, owner: res.body.owner, availability: res.body.availability, kind: res.body.kind, created_by: res.body.created_by, label: res.body.label },
      { id: 'bot', owner: 'organization', availability: 'global', kind: 'bearer', created_by: 'carol', label: 'Bot' },
    );
    assert.ok(!JSON.stringify(res.body).includes(f.apiKey), 'no secret in the answer');
    assert.equal((await admin.post('/admin/identities', { id: 'bot', upstream: 'demo', token: 'x' })).status, 409);

    // It serves a shared server at once; a gateway may name it.
    assert.equal((await admin.post('/admin/gateways', { id: 'botgw', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'bot' }] })).status, 201);
    assert.equal((await callEcho(`${base}/mcp/botgw/demo`, aliceToken)).status, 200);
    assert.equal(f.upstream.seen.at(-1)!.authorization, `Bearer ${f.apiKey}`);

    // Rotation: the new value is used on the next call (a wrong one is refused upstream), and never echoed.
    const rotated = await admin.put('/admin/identities/bot', { token: ROTATED_SECRET });
    assert.equal(rotated.status, 200);
    assert.ok(!JSON.stringify(rotated.body).includes(ROTATED_SECRET), 'the new value is not echoed');
    assert.equal((await callEcho(`${base}/mcp/botgw/demo`, aliceToken)).reason, 'upstream_rejected_credential');
    assert.equal((await admin.put('/admin/identities/bot', { token: f.apiKey })).status, 200);
    assert.equal((await callEcho(`${base}/mcp/botgw/demo`, aliceToken)).status, 200);

    // Still referenced: not deletable until the gateway lets go of it.
    const inUse = await admin.delete('/admin/identities/bot');
    assert.equal(inUse.status, 409);
    assert.match(inUse.body.error_description, /shared identity of \/mcp\/botgw\/demo/);
    await admin.delete('/admin/gateways/botgw');
    assert.equal((await admin.delete('/admin/identities/bot')).status, 204);
    assert.equal((await admin.get('/admin/identities/bot')).status, 404);
  });

  test('credential fields are validated against the upstream; public values are shown, secret ones never', async () => {
    const missing = await admin.post('/admin/identities', { upstream: 'fieldsy', values: { workspace: 'acme' } });
    assert.equal(missing.status, 400);
    assert.match(missing.body.error_description, /^values: API key \(api_key\) is required/);
    const unknown = await admin.post('/admin/identities', { upstream: 'fieldsy', values: { api_key: 'k', colour: 'red' } });
    assert.match(unknown.body.error_description, /there is no field colour/);
    const control = await admin.post('/admin/identities', { upstream: 'fieldsy', values: { api_key: 'a\r\nx-evil: 1' } });
    assert.match(control.body.error_description, /contains a control character/);

    const res = await admin.post('/admin/identities', { upstream: 'fieldsy', label: 'Acme', values: { api_key: FIELD_SECRET, workspace: 'acme' } });
    assert.equal(res.status, 201);
    assert.deepEqual(res.body.fields_set.sort(), ['api_key', 'workspace']);
    assert.deepEqual(res.body.public_values, { workspace: 'acme' });
    const all = JSON.stringify((await admin.get('/admin/identities')).body);
    assert.ok(!all.includes(FIELD_SECRET), 'no secret field value in the list');
  });

  test('the body must fit the upstream: token for bearer, value for header, values for fields; OAuth and none take no values', async () => {
    const cases: [unknown, RegExp][] = [
      [{ upstream: 'demo' }, /^token: upstream "demo" has credential.type bearer: the token is required/],
      [{ upstream: 'demo', value: 'v' }, /^value: upstream "demo" has credential.type bearer: send token/],
      [{ upstream: 'demo', token: 'a\nb' }, /^token: contains a control character/],
      [{ upstream: 'oauthy', token: 't' }, /^upstream: upstream "oauthy" uses OAuth/],
      [{ upstream: 'ghost', token: 't' }, /^upstream: no upstream with id "ghost"/],
      [{ upstream: 'demo', token: 't', availability: 'private' }, /^unknown field availability/],
      [{ upstream: 'demo', token: 't', owner: 'alice' }, /^unknown field owner/],
    ];
    for (const [body, message] of cases) {
      const res = await admin.post('/admin/identities', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error, 'invalid_request');
      assert.match(res.body.error_description, message, JSON.stringify(body));
    }
  });

  test("a person's identity can be disabled or deleted, never changed; seeded ones are read-only", async () => {
    const change = await admin.put(`/admin/identities/${alicePrivate}`, { token: 'admin-chosen' });
    assert.equal(change.status, 403);
    assert.equal(change.body.error, 'forbidden');
    const seeded = await admin.put('/admin/identities/svc', { token: 'x' });
    assert.equal(seeded.status, 409);
    assert.match(seeded.body.error_description, /seeded from the configuration file/);
    assert.equal((await admin.delete('/admin/identities/svc')).status, 409);
    assert.equal((await admin.delete('/admin/identities/nope')).status, 404);
    assert.equal((await admin.post('/admin/identities/nope/disable')).status, 404);

    const other = await f.registry.registry.identities.put({ upstream: 'demo', owner: 'bob', availability: 'private', secret: { kind: 'bearer', token: 'bob-secret' } });
    assert.equal((await admin.delete(`/admin/identities/${other.id}`)).status, 204);
    assert.equal(await f.registry.registry.identities.records.find(other.id), undefined);
  });
});

describe('users', () => {
  test('lists the accounts (builtin users included before they ever sign in), never a password', async () => {
    const res = await admin.get('/admin/users');
    assert.equal(res.status, 200);
    const byName = new Map(res.body.users.map((u: { username: string }) => [u.username, u]));
    assert.deepEqual([...byName.keys()].sort(), ['alice', 'bob', 'carol', 'dave']);
    assert.deepEqual(byName.get('alice'), { ...(byName.get('alice') as object), sub: 'alice', provider: 'builtin', email: 'alice@example.com', disabled: false });
    assert.ok(!JSON.stringify(res.body).includes(ALICE.password), 'no password');
    assert.equal((await admin.get('/admin/users/bob')).body.username, 'bob');
    assert.equal((await admin.get('/admin/users/nobody')).status, 404);
  });

  test('an unknown user is 404, a malformed reason 400, and an admin cannot deactivate themselves', async () => {
    assert.equal((await admin.post('/admin/users/nobody/disable')).status, 404);
    const bad = await admin.post('/admin/users/bob/disable', { reason: 42 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error_description, /^reason: /);
    const extra = await admin.post('/admin/users/bob/disable', { why: 'x' });
    assert.match(extra.body.error_description, /^unknown field why/);
    const self = await admin.post('/admin/users/carol/disable', { reason: 'oops' });
    assert.equal(self.status, 409);
    assert.equal((await admin.get('/admin/users/bob')).body.disabled, false, 'nothing changed');
  });
});

describe('connections', () => {
  test('a connection appears once its user called the gateway; filters by user and gateway; unknown ids are 404', async () => {
    const signedIn = await signIn(base, ALICE);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, signedIn.tokens.access_token)).status, 200);
    const res = await admin.get(`/admin/connections?user=alice&gateway=team`);
    assert.equal(res.status, 200);
    const mine = res.body.connections.find((c: { client_id: string }) => c.client_id === signedIn.clientId);
    assert.ok(mine, 'the connection is listed');
    assert.deepEqual({ subject: mine.subject, gateway: mine.gateway, disabled: mine.disabled, provider: mine.provider }, { subject: 'alice', gateway: 'team', disabled: false, provider: 'registry' });
    assert.ok(mine.last_seen >= mine.first_seen, 'last_seen after first_seen');
    assert.equal((await admin.get(`/admin/connections/${mine.id}`)).body.client_id, signedIn.clientId);
    assert.deepEqual((await admin.get(`/admin/connections?user=bob`)).body.connections, []);
    assert.equal((await admin.get('/admin/connections/bm9wZQ')).status, 404);
    assert.equal((await admin.post('/admin/connections/bm9wZQ/disable')).status, 404);
    assert.equal((await admin.post('/admin/connections/not*base64/disable')).status, 404);
  });
});

describe('no secret in any admin response', () => {
  test('the seeded secrets never appeared in a body', () => {
    assert.ok(seen.length > 50, `responses recorded: ${seen.length}`);
    for (const secret of [f.apiKey, ALICE_SECRET, FIELD_SECRET, ROTATED_SECRET, 'bob-secret']) {
      assert.ok(!seen.some((body) => body.includes(secret)), `a response contained ${secret}`);
    }
  });
});
