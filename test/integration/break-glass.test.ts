import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL, callEcho, startControlFixture } from '../helpers/control.ts';
import { ALICE, type Fixture } from '../helpers/fixture.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';
import { Selections } from '../../server/vault/selections.ts';

// Break-glass: an admin disables a gateway, an upstream, an identity or a
// connection; the very next MCP request is refused (naming the step and the
// reason), nothing is deleted, and enabling restores access at once.

let f: Fixture;
let base: string;
let admin: ReturnType<typeof apiClient>;
let aliceToken: string;
let aliceIdentity: string;

before(async () => {
  f = await startControlFixture((config) => {
    config.gateways.push({ id: 'personal', visibility: 'private', servers: [{ upstream: 'demo', name: 'mine', identity: 'per_user' }] });
  });
  base = f.registry.url;
  admin = apiClient(base, (await signInAdmin(base, CAROL)).tokens.access_token);
  aliceToken = (await signIn(base, ALICE)).tokens.access_token;
  // Alice's own (private) identity for the per-user server, chosen explicitly.
  aliceIdentity = (await f.registry.registry.identities.put({ upstream: 'demo', owner: 'alice', availability: 'private', label: 'alice key', secret: { kind: 'bearer', token: f.apiKey }, created_by: 'alice' })).id;
  await new Selections(f.registry.store).set('alice', 'personal', 'mine', aliceIdentity);
});
after(() => f.close());

const team = () => `${base}/mcp/team/demo`;

describe('gateway switch', () => {
  test('a disabled gateway refuses the next call and disappears from the listing; enabling restores it; nothing is deleted', async () => {
    assert.equal((await callEcho(team(), aliceToken)).status, 200);
    const off = await admin.post('/admin/gateways/team/disable', { reason: 'incident 42' });
    assert.equal(off.status, 200);
    assert.deepEqual({ disabled: off.body.disabled, by: off.body.switch.by, reason: off.body.switch.reason }, { disabled: true, by: 'carol', reason: 'incident 42' });

    const refused = await callEcho(team(), aliceToken);
    assert.deepEqual([refused.status, refused.reason], [403, 'gateway_disabled']);
    const listing = await apiClient(base, aliceToken).get('/gateways');
    assert.ok(!listing.body.gateways.some((g: { id: string }) => g.id === 'team'), 'a disabled gateway is not offered');
    const kept = await admin.get('/admin/gateways/team');
    assert.deepEqual([kept.status, kept.body.disabled, kept.body.servers.length], [200, true, 1]);

    const on = await admin.post('/admin/gateways/team/enable');
    assert.deepEqual([on.status, on.body.disabled, on.body.switch.disabled], [200, false, false]);
    assert.equal((await callEcho(team(), aliceToken)).status, 200);
  });

  test('gateways created through the API switch the same way', async () => {
    assert.equal((await admin.post('/admin/gateways', { id: 'side', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] })).status, 201);
    assert.equal((await callEcho(`${base}/mcp/side/demo`, aliceToken)).status, 200);
    await admin.post('/admin/gateways/side/disable');
    assert.equal((await callEcho(`${base}/mcp/side/demo`, aliceToken)).reason, 'gateway_disabled');
    await admin.post('/admin/gateways/side/enable');
    assert.equal((await callEcho(`${base}/mcp/side/demo`, aliceToken)).status, 200);
  });
});

describe('upstream switch', () => {
  test('a disabled upstream is refused on every gateway that assigns it, the upstream is not reached; enabling restores', async () => {
    const off = await admin.post('/admin/upstreams/demo/disable', { reason: 'leaking data' });
    assert.equal(off.body.disabled, true);
    const reached = f.upstream.seen.length;
    for (const url of [team(), `${base}/mcp/open/tools`, `${base}/mcp/personal/mine`]) {
      const refused = await callEcho(url, aliceToken);
      assert.deepEqual([refused.status, refused.reason], [403, 'upstream_disabled'], url);
    }
    assert.equal(f.upstream.seen.length, reached, 'no request reached the upstream');
    assert.equal((await admin.get('/admin/upstreams/demo')).body.switch.reason, 'leaking data');
    await admin.post('/admin/upstreams/demo/enable');
    assert.equal((await callEcho(team(), aliceToken)).status, 200);
    assert.equal((await callEcho(`${base}/mcp/personal/mine`, aliceToken)).status, 200);
  });
});

describe('identity switch', () => {
  test('a disabled shared identity (service account) stops the shared server on the next call; enabling restores it', async () => {
    const off = await admin.post('/admin/identities/svc/disable', { reason: 'key leaked' });
    assert.deepEqual([off.status, off.body.disabled, off.body.switch.by], [200, true, 'carol']);
    const refused = await callEcho(team(), aliceToken);
    assert.deepEqual([refused.status, refused.reason], [403, 'identity_disabled']);
    assert.equal((await admin.get('/admin/identities/svc')).body.disabled, true, 'still there');
    await admin.post('/admin/identities/svc/enable');
    const back = await callEcho(team(), aliceToken, 'restored');
    assert.deepEqual([back.status, back.text], [200, 'restored']);
  });

  test("a disabled per-user identity stops its owner's calls; enabling restores it with the same secret", async () => {
    assert.equal((await callEcho(`${base}/mcp/personal/mine`, aliceToken)).status, 200);
    await admin.post(`/admin/identities/${aliceIdentity}/disable`);
    const refused = await callEcho(`${base}/mcp/personal/mine`, aliceToken);
    assert.deepEqual([refused.status, refused.reason], [403, 'identity_disabled']);
    assert.equal((await callEcho(team(), aliceToken)).status, 200, 'the shared server is unaffected');
    await admin.post(`/admin/identities/${aliceIdentity}/enable`);
    assert.equal((await callEcho(`${base}/mcp/personal/mine`, aliceToken)).status, 200);
    assert.equal(f.upstream.seen.at(-1)!.authorization, `Bearer ${f.apiKey}`);
  });
});

describe('identity switch on an open 2025 session', () => {
  const LEGACY = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25' };
  async function post(session: string | undefined, message: Record<string, unknown>) {
    const res = await fetch(`${base}/mcp/personal/mine`, { method: 'POST', headers: { ...LEGACY, authorization: `Bearer ${aliceToken}`, ...(session && { 'mcp-session-id': session }) }, body: JSON.stringify(message) });
    const text = await res.text();
    const data = text.split('\n').find((l) => l.startsWith('data: ') && l.length > 6);
    return { status: res.status, session: res.headers.get('mcp-session-id') ?? undefined, body: data ? JSON.parse(data.slice(6)) : text ? JSON.parse(text) : undefined };
  }
  const echo = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'on the session' } } });

  test('a disabled identity answers 403 identity_disabled on the open session (not 404 unknown_session); enabled, the same session goes on', async () => {
    const init = await post(undefined, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bg', version: '1' } } });
    assert.equal(init.status, 200);
    const session = init.session!;
    assert.ok(session);
    await post(session, { jsonrpc: '2.0', method: 'notifications/initialized' });
    assert.equal((await post(session, echo(2))).status, 200);

    await admin.post(`/admin/identities/${aliceIdentity}/disable`, { reason: 'leaked key' });
    const refused = await post(session, echo(3));
    assert.deepEqual([refused.status, refused.body?.error?.data?.reason], [403, 'identity_disabled'], JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /disabled by an admin/);

    await admin.post(`/admin/identities/${aliceIdentity}/enable`);
    const again = await post(session, echo(4));
    assert.equal(again.status, 200, 'the session was not lost');
    assert.equal(again.body.result.content[0].text, 'on the session');
  });
});

describe('connection switch', () => {
  test("disabling one client's connection refuses that client on that gateway only; enabling restores it", async () => {
    const laptop = await signIn(base, ALICE);
    const phone = await signIn(base, ALICE);
    for (const t of [laptop, phone]) assert.equal((await callEcho(team(), t.tokens.access_token)).status, 200);
    assert.equal((await callEcho(`${base}/mcp/open/tools`, laptop.tokens.access_token)).status, 200);

    const list = (await admin.get('/admin/connections?user=alice&gateway=team')).body.connections as { id: string; client_id: string }[];
    const connection = list.find((c) => c.client_id === laptop.clientId)!;
    assert.ok(connection && list.some((c) => c.client_id === phone.clientId), 'both clients are listed');
    const off = await admin.post(`/admin/connections/${connection.id}/disable`, { reason: 'lost laptop' });
    assert.deepEqual([off.status, off.body.disabled, off.body.switch.reason], [200, true, 'lost laptop']);

    const refused = await callEcho(team(), laptop.tokens.access_token);
    assert.deepEqual([refused.status, refused.reason], [403, 'connection_disabled']);
    assert.equal((await callEcho(team(), phone.tokens.access_token)).status, 200, 'another client of the same user');
    assert.equal((await callEcho(`${base}/mcp/open/tools`, laptop.tokens.access_token)).status, 200, 'the same client on another gateway');

    const after = (await admin.get('/admin/connections?user=alice&gateway=team')).body.connections as { id: string; disabled: boolean }[];
    assert.equal(after.find((c) => c.id === connection.id)?.disabled, true, 'still listed');
    await admin.post(`/admin/connections/${connection.id}/enable`);
    assert.equal((await callEcho(team(), laptop.tokens.access_token)).status, 200);
  });
});

describe('switch records', () => {
  test('switch records are kept (who, when, why) after enabling: nothing is deleted', async () => {
    const switches = new Map(await f.registry.store.all('switches'));
    for (const id of ['gateway:team', 'upstream:demo', 'identity:svc']) {
      const s = switches.get(id) as { disabled: boolean; by: string; at: number } | undefined;
      assert.ok(s, id);
      assert.deepEqual([s.disabled, s.by, typeof s.at], [false, 'carol', 'number'], id);
    }
  });
});
