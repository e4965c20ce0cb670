import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL, callMethod } from '../helpers/control.ts';
import type { FeatureUpstream } from '../helpers/feature-upstream.ts';
import { connect, eventually, type MergedGateway, openV1Session, rpcError, standaloneStreamsOpen, startMergedGateway } from '../helpers/merged-gateway.ts';
import { signInAdmin } from '../helpers/oauth.ts';

// Issue 14, "one truth about whose identity a call uses": what
// /api/v1/me/servers says (the sidebar reads it) is what the next call does,
// as the upstream sees it.
//
// 1. Bob selects Alice's global identity. When it stops being selectable for
//    him (Alice makes it private, deletes it, an admin deletes it) his
//    selection ends: his next call uses his own identity, or answers "connect
//    your account" when he has none, and /me/servers says so; made global
//    again, it does not serve him until he selects it again. His open
//    sessions are told (tools/list_changed).
// 2. Break-glass on an identity its owner uses by default (never selected):
//    403 identity_disabled (step vault, -32003) on both endpoints in both eras,
//    /me/servers "disabled", the audit's outcome identity_disabled; never
//    someone else's global identity in its place.

const FORBIDDEN = -32003;
const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');

let g: MergedGateway;
let base: string;
let admin: ReturnType<typeof apiClient>;
let alice: ReturnType<typeof apiClient>;
let bob: ReturnType<typeof apiClient>;

before(async () => {
  g = await startMergedGateway(
    [
      { id: 'crm', eras: 'both' },
      { id: 'wiki', eras: 'both' },
      { id: 'notes', eras: 'both' },
      { id: 'tickets', eras: 'both' },
      { id: 'news', eras: 'legacy' },
    ],
    (config) => {
      config.oauth_server.builtin.users.push({ username: CAROL.username, password_env: 'CAROL_PASSWORD', scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] });
      config.gateways.push({
        id: 'hub',
        visibility: 'private',
        servers: [
          // A shared server on a 2025 upstream every session lists: its log messages show a session's standalone stream is open.
          { upstream: 'news', identity: 'shared', shared_identity: 'news-svc' },
          { upstream: 'crm', identity: 'per_user' },
          { upstream: 'wiki', identity: 'per_user' },
          { upstream: 'notes', identity: 'per_user' },
          { upstream: 'tickets', identity: 'per_user' },
        ],
      });
    },
    { CAROL_PASSWORD: CAROL.password },
  );
  base = g.registry.url;
  admin = apiClient(base, (await signInAdmin(base, CAROL)).tokens.access_token);
  alice = apiClient(base, g.aliceToken);
  bob = apiClient(base, g.bobToken);
});
after(() => g.close());

/** A new identity of the caller's, through the self-service API. */
async function newIdentity(who: ReturnType<typeof apiClient>, upstream: string, token: string, availability: 'private' | 'global' = 'private'): Promise<string> {
  const res = await who.post('/me/identities', { upstream, token, availability });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id;
}

async function select(who: ReturnType<typeof apiClient>, server: string, identity: string): Promise<void> {
  assert.equal((await who.put('/me/selections', { gateway: 'hub', server, identity })).status, 204);
}

/** What /me/servers says of one server of the hub. */
async function stateOf(who: ReturnType<typeof apiClient>, server: string): Promise<{ state: string; reason?: string; identity?: { id: string; owner: string }; choices: { id: string }[] }> {
  const res = await who.get('/me/servers');
  assert.equal(res.status, 200);
  return res.body.servers.find((s: { gateway: { id: string }; server: string }) => s.gateway.id === 'hub' && s.server === server);
}

/** A 2026-07-28 whoami on the raw endpoint: what the client sees, and the credentials of the tools/calls that reached the upstream. */
async function whoami(token: string, server: string): Promise<{ text: string; isError: boolean; upstreamSaw: (string | undefined)[] }> {
  const up = g.upstreams[server]!;
  const mark = up.requests.length;
  const { client } = await connect(`${base}/mcp/hub/${server}`, '2026-07-28', { token });
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    return { text: text(result), isError: result.isError === true, upstreamSaw: calls(up, mark) };
  } finally {
    await client.close();
  }
}

/** Alice's own audit records of identity_disabled, once there are `count` (a bounded poll). */
async function auditedUntil(count: number): Promise<{ outcome: string; status: number; server: string }[]> {
  for (let i = 0; ; i++) {
    const entries = (await alice.get('/me/audit?outcome=identity_disabled')).body.entries;
    if (entries.length >= count || i >= 100) return entries;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const calls = (up: FeatureUpstream, since: number) => up.requests.slice(since).filter((r) => r.rpc === 'tools/call').map((r) => r.authorization);

describe('a selection of a global identity ends when the identity stops being selectable', () => {
  test('made private: /me/servers names Bob\'s own identity and his next call carries it; made global again, it serves him only once he selects it again', async () => {
    const shared = await newIdentity(alice, 'crm', 'alice-crm-global', 'global');
    const own = await newIdentity(bob, 'crm', 'bob-crm-own');
    await select(bob, 'crm', shared);
    assert.deepEqual((await whoami(g.bobToken, 'crm')).upstreamSaw, ['Bearer alice-crm-global']);
    assert.equal((await stateOf(bob, 'crm')).identity?.id, shared);

    assert.equal((await alice.call('PATCH', `/me/identities/${shared}`, { availability: 'private' })).status, 200);
    const told = await stateOf(bob, 'crm');
    assert.deepEqual([told.state, told.identity?.id, told.identity?.owner], ['ready', own, 'you']);
    assert.ok(!told.choices.some((c) => c.id === shared), 'a private identity is no choice for Bob');
    const next = await whoami(g.bobToken, 'crm');
    assert.deepEqual([next.text, next.upstreamSaw], ['Bearer bob-crm-own', ['Bearer bob-crm-own']]);

    assert.equal((await alice.call('PATCH', `/me/identities/${shared}`, { availability: 'global' })).status, 200);
    const again = await stateOf(bob, 'crm');
    assert.equal(again.identity?.id, own, '/me/servers: still his own');
    assert.ok(again.choices.some((c) => c.id === shared), 'global again: a choice, not a selection');
    assert.deepEqual((await whoami(g.bobToken, 'crm')).upstreamSaw, ['Bearer bob-crm-own'], 'his calls do not go back to Alice\'s credential');

    await select(bob, 'crm', shared);
    assert.equal((await stateOf(bob, 'crm')).identity?.id, shared);
    assert.deepEqual((await whoami(g.bobToken, 'crm')).upstreamSaw, ['Bearer alice-crm-global'], 'chosen again, it serves him');
  });

  test('what does not make it unselectable keeps the selection: a new label, and the owner\'s own selection of her identity made private', async () => {
    const shared = await newIdentity(alice, 'tickets', 'alice-tickets', 'global');
    await select(bob, 'tickets', shared);
    await select(alice, 'tickets', shared);
    assert.equal((await alice.call('PATCH', `/me/identities/${shared}`, { label: 'renamed' })).status, 200);
    assert.deepEqual((await whoami(g.bobToken, 'tickets')).upstreamSaw, ['Bearer alice-tickets'], 'a label change keeps Bob\'s selection');

    assert.equal((await alice.call('PATCH', `/me/identities/${shared}`, { availability: 'private' })).status, 200);
    assert.equal((await stateOf(alice, 'tickets')).identity?.id, shared);
    assert.deepEqual((await whoami(g.aliceToken, 'tickets')).upstreamSaw, ['Bearer alice-tickets'], 'her own selection stays');
    assert.equal((await alice.call('PATCH', `/me/identities/${shared}`, { availability: 'global' })).status, 200);
    assert.equal((await stateOf(bob, 'tickets')).state, 'needs_credentials', 'Bob\'s ended when it turned private, and stays ended');
    assert.equal(await alice.delete(`/me/identities/${shared}`).then((r) => r.status), 204);
  });

  for (const [how, remove] of [
    ['deleted by its owner', (id: string) => alice.delete(`/me/identities/${id}`)],
    ['deleted by an admin', (id: string) => admin.delete(`/admin/identities/${id}`)],
  ] as const) {
    test(`${how}: Bob, who has no identity of his own, is told to connect, by /me/servers and by his next call; nothing reaches the upstream`, async () => {
      const shared = await newIdentity(alice, 'wiki', `alice-wiki-${how.length}`, 'global');
      await select(bob, 'wiki', shared);
      assert.deepEqual((await whoami(g.bobToken, 'wiki')).upstreamSaw, [`Bearer alice-wiki-${how.length}`]);
      assert.equal((await stateOf(bob, 'wiki')).state, 'ready');

      assert.equal((await remove(shared)).status, 204);
      const told = await stateOf(bob, 'wiki');
      assert.deepEqual([told.state, told.identity], ['needs_credentials', undefined]);
      const next = await whoami(g.bobToken, 'wiki');
      assert.equal(next.isError, true);
      assert.match(next.text, new RegExp(`${base}/connect/hub/wiki`));
      assert.deepEqual(next.upstreamSaw, [], 'the connect answer comes from the gateway');
    });
  }

  test('Bob\'s open sessions are told: his 2025-11-25 session hears tools/list_changed, his 2026-07-28 subscriptions/listen too', async () => {
    const shared = await newIdentity(alice, 'notes', 'alice-notes-global', 'global');
    await select(bob, 'notes', shared);
    const session = await openV1Session(`${base}/mcp/hub`, g.bobToken);
    let listened = 0;
    const { client: modern } = await connect(`${base}/mcp/hub`, '2026-07-28', { token: g.bobToken, configure: (c) => c.setNotificationHandler('notifications/tools/list_changed', () => void listened++) });
    try {
      assert.equal(text((await session.client.callTool({ name: 'notes__whoami', arguments: {} })) as { content?: unknown }), 'Bearer alice-notes-global');
      await session.client.listTools();
      await standaloneStreamsOpen(g.upstreams.news!, [session]);
      const listen = await modern.listen({ toolsListChanged: true });
      try {
        const before = session.heard.toolsChanged;
        assert.equal((await alice.call('PATCH', `/me/identities/${shared}`, { availability: 'private' })).status, 200);
        await eventually(() => session.heard.toolsChanged > before, "Bob's 2025 session hears tools/list_changed");
        await eventually(() => listened > 0, "Bob's subscriptions/listen hears tools/list_changed");
        const result = (await session.client.callTool({ name: 'notes__whoami', arguments: {} })) as { content?: unknown; isError?: boolean };
        assert.equal(result.isError, true, 'the same session: his next call is the connect answer');
        assert.match(text(result), new RegExp(`${base}/connect/hub/notes`));
      } finally {
        await listen.close();
      }
    } finally {
      await session.client.close();
      await modern.close();
      await alice.delete(`/me/identities/${shared}`);
    }
  });
});

describe('break-glass on an identity its owner uses by default (never selected)', () => {
  test('403 identity_disabled on /mcp/{gateway}/{server} and /mcp/{gateway}, 2026-07-28 and on 2025-11-25 sessions opened before; /me/servers says disabled; the audit agrees; enabled, the same sessions go on', async () => {
    const own = await newIdentity(alice, 'notes', 'alice-notes-own');
    const endpoints = [
      { url: `${base}/mcp/hub/notes`, tool: 'whoami' },
      { url: `${base}/mcp/hub`, tool: 'notes__whoami' },
    ];
    const sessions = await Promise.all(endpoints.map((e) => connect(e.url, '2025-11-25', { token: g.aliceToken })));
    try {
      for (const [i, e] of endpoints.entries()) {
        assert.equal(text(await sessions[i]!.client.callTool({ name: e.tool, arguments: {} })), 'Bearer alice-notes-own', e.url);
      }
      assert.equal((await stateOf(alice, 'notes')).state, 'ready');

      assert.equal((await admin.post(`/admin/identities/${own}/disable`, { reason: 'leaked' })).status, 200);
      const told = await stateOf(alice, 'notes');
      assert.deepEqual([told.state, told.identity?.id], ['disabled', own]);
      assert.match(told.reason ?? '', /an admin disabled your identity/);

      const mark = g.upstreams.notes!.requests.length;
      for (const [i, e] of endpoints.entries()) {
        const modern = await callMethod(e.url, g.aliceToken, 'tools/call', { name: e.tool, arguments: {} });
        assert.deepEqual([modern.status, modern.body.error?.code, modern.body.error?.data?.step, modern.reason], [403, FORBIDDEN, 'vault', 'identity_disabled'], `2026-07-28 ${e.url}`);
        const legacy = rpcError(await sessions[i]!.client.callTool({ name: e.tool, arguments: {} }).then(() => assert.fail('refused'), (err: unknown) => err));
        assert.deepEqual([legacy.status, legacy.code, legacy.data?.step, legacy.data?.reason], [403, FORBIDDEN, 'vault', 'identity_disabled'], `2025-11-25 ${e.url}`);
      }
      assert.deepEqual(calls(g.upstreams.notes!, mark), [], 'nothing reached the upstream');
      // A call is audited when its answer closes, a moment after the client has it.
      const refused = await auditedUntil(4);
      assert.deepEqual(
        refused.map((r) => [r.outcome, r.status, r.server]),
        Array(4).fill(['identity_disabled', 403, 'notes']),
      );

      assert.equal((await admin.post(`/admin/identities/${own}/enable`)).status, 200);
      assert.equal((await stateOf(alice, 'notes')).state, 'ready');
      for (const [i, e] of endpoints.entries()) {
        assert.equal(text(await sessions[i]!.client.callTool({ name: e.tool, arguments: {} })), 'Bearer alice-notes-own', `the 2025 session on ${e.url} goes on`);
      }
    } finally {
      await Promise.all(sessions.map((s) => s.client.close()));
      await alice.delete(`/me/identities/${own}`);
    }
  });

  test("an owner's disabled identity is not swapped for a colleague's global one: identity_disabled, until they choose the global one themselves; a chosen identity disabled is refused too, not swapped back", async () => {
    const colleague = await newIdentity(alice, 'tickets', 'alice-tickets-global', 'global');
    const own = await newIdentity(bob, 'tickets', 'bob-tickets-own');
    assert.deepEqual((await whoami(g.bobToken, 'tickets')).upstreamSaw, ['Bearer bob-tickets-own']);
    assert.equal((await admin.post(`/admin/identities/${own}/disable`)).status, 200);

    const told = await stateOf(bob, 'tickets');
    assert.deepEqual([told.state, told.identity?.id], ['disabled', own]);
    assert.ok(told.choices.some((c) => c.id === colleague), "the colleague's identity is offered as a choice");
    const mark = g.upstreams.tickets!.requests.length;
    const refused = await callMethod(`${base}/mcp/hub/tickets`, g.bobToken, 'tools/call', { name: 'whoami', arguments: {} });
    assert.deepEqual([refused.status, refused.reason], [403, 'identity_disabled']);
    assert.deepEqual(calls(g.upstreams.tickets!, mark), [], "never Alice's credential in its place");

    await select(bob, 'tickets', colleague);
    assert.equal((await stateOf(bob, 'tickets')).state, 'ready');
    assert.deepEqual((await whoami(g.bobToken, 'tickets')).upstreamSaw, ['Bearer alice-tickets-global'], 'chosen by him, it serves him');

    // The global identity he chose, disabled in turn: refused, not swapped back to his own (enabled again meanwhile).
    assert.equal((await admin.post(`/admin/identities/${own}/enable`)).status, 200);
    assert.equal((await admin.post(`/admin/identities/${colleague}/disable`)).status, 200);
    const chosen = await stateOf(bob, 'tickets');
    assert.deepEqual([chosen.state, chosen.identity?.id], ['disabled', colleague]);
    assert.match(chosen.reason ?? '', /an admin disabled the identity you chose/);
    const next = g.upstreams.tickets!.requests.length;
    const again = await callMethod(`${base}/mcp/hub/tickets`, g.bobToken, 'tools/call', { name: 'whoami', arguments: {} });
    assert.deepEqual([again.status, again.reason], [403, 'identity_disabled']);
    assert.deepEqual(calls(g.upstreams.tickets!, next), []);
  });

  test('a disabled own identity gives way to another own identity that is not disabled (still his own credential)', async () => {
    const tokens = new Map([
      [await newIdentity(bob, 'wiki', 'bob-wiki-first'), 'Bearer bob-wiki-first'],
      [await newIdentity(bob, 'wiki', 'bob-wiki-second'), 'Bearer bob-wiki-second'],
    ]);
    const inUse = (await stateOf(bob, 'wiki')).identity!.id;
    const other = [...tokens.keys()].find((id) => id !== inUse)!;
    assert.deepEqual((await whoami(g.bobToken, 'wiki')).upstreamSaw, [tokens.get(inUse)]);
    assert.equal((await admin.post(`/admin/identities/${inUse}/disable`)).status, 200);
    const told = await stateOf(bob, 'wiki');
    assert.deepEqual([told.state, told.identity?.id], ['ready', other]);
    assert.deepEqual((await whoami(g.bobToken, 'wiki')).upstreamSaw, [tokens.get(other)]);
  });
});
