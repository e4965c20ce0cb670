import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { apiClient, CAROL, callEcho, startControlFixture } from '../helpers/control.ts';
import { ALICE, BOB, type Fixture } from '../helpers/fixture.ts';
import { registerClient, signIn, signInAdmin, tokenRequest } from '../helpers/oauth.ts';

// Issue 13: token exchange (RFC 8693) granted to a client an admin made
// through the API (or the CLI, which calls it), not only to one in the file.
// The permission is the client's token_exchange (resources, users, lifetime),
// as in oauth_server.clients[]; confidential clients only; registration can
// never set it; taking it away refuses the next exchange.

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

let f: Fixture;
let base: string;
let admin: ReturnType<typeof apiClient>;
let agent: { id: string; secret: string };

before(async () => {
  f = await startControlFixture();
  base = f.registry.url;
  admin = apiClient(base, (await signInAdmin(base, CAROL)).tokens.access_token);
  const created = await admin.post('/admin/clients', { client_id: 'assistant', name: 'Team assistant', grant_types: ['client_credentials'], token_exchange: { resources: ['/mcp/team'], users: ['alice'], token_lifetime: '2m' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  agent = { id: 'assistant', secret: created.body.client_secret };
});
after(() => f?.close());

const exchange = async (subjectToken: string, who = agent, resource = `${base}/mcp/team`) => {
  const res = await tokenRequest(base, { grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, resource }, basic(who.id, who.secret));
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

describe('token exchange for an admin-created client', () => {
  test('the API shows the permission, and the grant it implies', async () => {
    const { body } = await admin.get('/admin/clients/assistant');
    assert.deepEqual(body.token_exchange, { resources: ['/mcp/team'], users: ['alice'], token_lifetime: 120 });
    assert.ok(body.grant_types.includes(TOKEN_EXCHANGE));
  });

  test('it exchanges alice\'s token for one that acts as her (act: the agent), which calls the MCP endpoint', async () => {
    const alice = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    const { status, body } = await exchange(alice.tokens.access_token);
    assert.equal(status, 200, JSON.stringify(body));
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.sub, 'alice');
    assert.deepEqual(claims.act, { sub: 'assistant' });
    assert.ok(body.expires_in <= 120);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, body.access_token)).status, 200);
  });

  test('only within its permission: not for bob (users), not for another gateway (resources)', async () => {
    const bob = await signIn(base, BOB, { resource: `${base}/mcp/team` });
    const forBob = await exchange(bob.tokens.access_token);
    assert.equal(forBob.status, 400);
    assert.match(forBob.body.error_description, /may not act for bob/);
    const alice = await signIn(base, ALICE, { resource: [`${base}/mcp/team`, `${base}/mcp/open`] });
    const elsewhere = await exchange(alice.tokens.access_token, agent, `${base}/mcp/open`);
    assert.equal(elsewhere.status, 400);
    assert.equal(elsewhere.body.error, 'invalid_target');
  });

  test('an admin-created client without the permission is unauthorized_client', async () => {
    const made = await admin.post('/admin/clients', { client_id: 'bare', name: 'Bare agent', grant_types: ['client_credentials'] });
    const alice = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    const res = await exchange(alice.tokens.access_token, { id: 'bare', secret: made.body.client_secret });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'unauthorized_client');
  });

  test('taking the permission away (PATCH token_exchange: null) refuses the next exchange', async () => {
    const made = await admin.post('/admin/clients', { client_id: 'temp', name: 'Temporary agent', grant_types: ['client_credentials'], token_exchange: { resources: ['/mcp/team'] } });
    const who = { id: 'temp', secret: made.body.client_secret };
    const alice = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    assert.equal((await exchange(alice.tokens.access_token, who)).status, 200);
    const patched = await admin.call('PATCH', '/admin/clients/temp', { token_exchange: null });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.token_exchange, undefined);
    assert.ok(!patched.body.grant_types.includes(TOKEN_EXCHANGE));
    const refused = await exchange(alice.tokens.access_token, who);
    assert.equal(refused.body.error, 'unauthorized_client');
  });

  test('a public client cannot be given it, and a bad permission is refused naming the field', async () => {
    const pub = await admin.post('/admin/clients', { name: 'Public', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1:9/cb'], token_exchange: { resources: ['/mcp/team'] } });
    assert.equal(pub.status, 400);
    assert.match(pub.body.error_description, /token_exchange: .*confidential/);
    const empty = await admin.post('/admin/clients', { name: 'Empty', grant_types: ['client_credentials'], token_exchange: { resources: [] } });
    assert.equal(empty.status, 400);
    assert.match(empty.body.error_description, /token_exchange\.resources/);
  });

  test('registration (RFC 7591) cannot set it: the grant is refused, the field ignored, and the client may not exchange', async () => {
    const asked = await fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['authorization_code', TOKEN_EXCHANGE] }) });
    assert.equal(asked.status, 400);
    const registered = await registerClient(base, { token_endpoint_auth_method: 'client_secret_basic', token_exchange: { resources: ['/mcp/team'] } });
    const alice = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    if (registered.client_secret === undefined) return assert.fail('a confidential registration gets a secret');
    const res = await exchange(alice.tokens.access_token, { id: registered.client_id, secret: registered.client_secret });
    assert.equal(res.body.error, 'unauthorized_client');
  });
});
