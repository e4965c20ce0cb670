import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL } from '../helpers/control.ts';
import { ALICE, BOB } from '../helpers/fixture.ts';
import { parseForms } from '../helpers/form.ts';
import { connect, eventually, type MergedGateway, openV1Session, standaloneStreamsOpen, startMergedGateway, type V1Session } from '../helpers/merged-gateway.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';
import { UserAgent } from '../helpers/user-agent.ts';

// After a person connects a per-user identity, the sessions they hold open on
// /mcp/{gateway} are told (notifications/tools/list_changed): a 2025 session
// on its standalone stream (here from the SDK v1 client, which many clients
// in the field run), a 2026-07-28 client on its subscriptions/listen stream.
// They list again and see the server's own tools in place of the
// placeholder. Another person's sessions hear nothing. A placeholder a client
// listed before connecting and calls afterwards is answered by the gateway,
// never forwarded upstream (which has no such tool). An admin's change to the
// gateway (an upstream switched off) is told to everyone on it.

const PLACEHOLDER = 'keygate_connect_account';
const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');

let g: MergedGateway;
let base: string;
let carolToken: string;
before(async () => {
  g = await startMergedGateway(
    [
      { id: 'docs', eras: 'legacy' },
      { id: 'personal', eras: 'both' },
      { id: 'notes', eras: 'both' },
    ],
    (config) => {
      config.oauth_server.builtin.users.push({ username: CAROL.username, password_env: 'CAROL_PASSWORD', scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] });
      config.gateways.push({
        id: 'team',
        visibility: 'private',
        servers: [
          { upstream: 'docs', identity: 'shared', shared_identity: 'docs-svc' },
          { upstream: 'personal', identity: 'per_user' },
          { upstream: 'notes', identity: 'per_user' },
        ],
      });
    },
    { CAROL_PASSWORD: CAROL.password },
  );
  base = g.registry.url;
  carolToken = (await signIn(base, CAROL)).tokens.access_token;
});
after(() => g.close());

const v1Session = (token: string) => openV1Session(`${base}/mcp/team`, token);
const streamsOpen = (sessions: V1Session[]) => standaloneStreamsOpen(g.upstreams.docs!, sessions);

/** Connect a bearer identity through the real /connect page, as a person in a browser without JavaScript. */
async function connectThroughPage(user: { username: string; password: string }, server: string, secret: string): Promise<void> {
  const ua = new UserAgent();
  let step = await ua.follow(`${base}/connect/team/${server}`);
  for (let i = 0; i < 3 && step.response; i++) {
    const html = await step.response.clone().text();
    if (!/name="password"/.test(html) || !step.url.pathname.startsWith('/oauth/')) break;
    const submitted = await ua.submit({ html, url: step.url }, { username: user.username, password: user.password });
    step = await ua.follow(step.url, () => false, submitted);
  }
  assert.equal(step.url.pathname, `/connect/team/${server}`);
  const form = parseForms(await step.response!.text(), step.url.toString()).find((f) => f.action.endsWith('/credentials'));
  assert.ok(form, 'the connect page has a credentials form');
  const body = new URLSearchParams(form.fields);
  body.set('secret', secret);
  const saved = await ua.follow(form.action, () => false, await ua.request(form.action, { method: 'POST', body }));
  assert.equal(saved.url.searchParams.get('done'), 'saved', `the connect page saved the identity (HTTP ${saved.response?.status})`);
}

const upstreamCallsOf = (upstream: string, tool: string) => g.upstreams[upstream]!.requests.filter((r) => r.rpc === 'tools/call' && r.name === tool).length;

describe('list_changed after a person connects an identity', () => {
  test('an SDK v1 client (2025-11-25 session) hears tools/list_changed after its person connects through /connect, and lists the server\'s own tools; another person\'s session hears nothing', async () => {
    const alice = await v1Session(g.aliceToken);
    const bob = await v1Session(g.bobToken);
    try {
      const before = (await alice.client.listTools()).tools.map((t) => t.name);
      assert.ok(before.includes(`personal__${PLACEHOLDER}`), `the placeholder before connecting: ${before}`);
      await bob.client.listTools();
      await streamsOpen([alice, bob]);

      await connectThroughPage(ALICE, 'personal', 'alice-personal-token');
      await eventually(() => alice.heard.toolsChanged > 0, "alice's session hears tools/list_changed");
      const after = (await alice.client.listTools()).tools.map((t) => t.name);
      assert.ok(after.includes('personal__whoami') && !after.includes(`personal__${PLACEHOLDER}`), `the server's own tools after connecting: ${after}`);
      assert.equal(text((await alice.client.callTool({ name: 'personal__whoami', arguments: {} })) as { content?: unknown }), 'Bearer alice-personal-token');

      // Bob's stream delivers in order: once this message reached him, anything sent him before it has too.
      await g.upstreams.docs!.broadcastLog('after alice connected');
      await eventually(() => bob.heard.logs.includes('after alice connected'), "bob's stream");
      assert.equal(bob.heard.toolsChanged, 0, "alice's identity changes nothing bob may use");
    } finally {
      await alice.client.close();
      await bob.client.close();
    }
  });

  test('a 2026-07-28 client hears it on its subscriptions/listen stream; another person\'s listener hears nothing', async () => {
    const heard = { bob: 0, alice: 0, aliceUpdates: 0 };
    const { client: bob } = await connect(`${base}/mcp/team`, '2026-07-28', {
      token: g.bobToken,
      configure: (c) => c.setNotificationHandler('notifications/tools/list_changed', () => void heard.bob++),
    });
    const { client: alice } = await connect(`${base}/mcp/team`, '2026-07-28', {
      token: g.aliceToken,
      configure: (c) => {
        c.setNotificationHandler('notifications/tools/list_changed', () => void heard.alice++);
        c.setNotificationHandler('notifications/resources/updated', () => void heard.aliceUpdates++);
      },
    });
    try {
      await bob.listTools();
      const bobListen = await bob.listen({ toolsListChanged: true });
      const aliceListen = await alice.listen({ toolsListChanged: true, resourceSubscriptions: ['note://docs/readme'] });
      try {
        await connectThroughPage(BOB, 'personal', 'bob-personal-token');
        await eventually(() => heard.bob > 0, "bob's listen stream hears tools/list_changed");
        assert.equal(text((await bob.callTool({ name: 'personal__whoami', arguments: {} })) as { content?: unknown }), 'Bearer bob-personal-token');

        // Alice's listen stream delivers in order: once this update reached her, anything sent her before it has too.
        g.upstreams.docs!.touch('note://docs/readme');
        await eventually(() => heard.aliceUpdates > 0, "alice's listen stream");
        assert.equal(heard.alice, 0, "bob's identity changes nothing alice may use");
      } finally {
        await bobListen.close();
        await aliceListen.close();
      }
    } finally {
      await bob.close();
      await alice.close();
    }
  });
});

describe('list_changed through the API, and only for what changes a list', () => {
  test('connecting through the API is told; a new label is not; removing the identity is told', async () => {
    const alice = await v1Session(g.aliceToken);
    const bob = await v1Session(g.bobToken);
    const me = apiClient(base, g.aliceToken);
    /** Every notification sent alice so far has reached her: a change told to bob alone went out after it, then a message on her own stream, which delivers in order. */
    let round = 0;
    const settled = async () => {
      const bobHeard = bob.heard.toolsChanged;
      assert.equal((await apiClient(base, g.bobToken).post('/me/identities', { upstream: 'docs', token: `bob-docs-${++round}` })).status, 201);
      await eventually(() => bob.heard.toolsChanged > bobHeard, "bob's own change");
      await g.upstreams.docs!.broadcastLog(`settled ${round}`);
      await eventually(() => alice.heard.logs.includes(`settled ${round}`), "alice's stream");
    };
    try {
      await alice.client.listTools();
      await bob.client.listTools();
      await streamsOpen([alice, bob]);
      const created = await me.post('/me/identities', { upstream: 'personal', token: 'alice-api-token', select: { gateway: 'team', server: 'personal' } });
      assert.equal(created.status, 201);
      await eventually(() => alice.heard.toolsChanged > 0, 'connecting through the API is told');
      assert.equal(text((await alice.client.callTool({ name: 'personal__whoami', arguments: {} })) as { content?: unknown }), 'Bearer alice-api-token');
      await settled();
      const told = alice.heard.toolsChanged;

      assert.equal((await me.call('PATCH', `/me/identities/${created.body.id}`, { label: 'renamed' })).status, 200);
      await settled();
      assert.equal(alice.heard.toolsChanged, told, 'a new label changes no list: nothing is told');

      assert.equal((await me.delete(`/me/identities/${created.body.id}`)).status, 204);
      await eventually(() => alice.heard.toolsChanged > told, 'removing the identity is told');
    } finally {
      await alice.client.close();
      await bob.client.close();
    }
  });
});

describe('a placeholder listed before connecting, called after', () => {
  test('is answered by the gateway on both endpoints and in both eras, never forwarded upstream', async () => {
    const legacy = await v1Session(carolToken);
    const { client: modern } = await connect(`${base}/mcp/team`, '2026-07-28', { token: carolToken });
    const { client: raw } = await connect(`${base}/mcp/team/notes`, '2026-07-28', { token: carolToken });
    try {
      assert.ok((await legacy.client.listTools()).tools.some((t) => t.name === `notes__${PLACEHOLDER}`));
      assert.ok((await modern.listTools()).tools.some((t) => t.name === `notes__${PLACEHOLDER}`));
      assert.ok((await raw.listTools()).tools.some((t) => t.name === PLACEHOLDER));
      // Before connecting, the placeholder says how to connect.
      const unconnected = (await raw.callTool({ name: PLACEHOLDER, arguments: {} })) as { content?: unknown; isError?: boolean };
      assert.equal(unconnected.isError, true);
      assert.match(text(unconnected), new RegExp(`${base}/connect/team/notes`));

      await connectThroughPage(CAROL, 'notes', 'carol-notes-token');
      // A call to one of the server's own tools first: the gateway knows the upstream's era now (its fast path could take the next call).
      assert.equal(text((await modern.callTool({ name: 'notes__whoami', arguments: {} })) as { content?: unknown }), 'Bearer carol-notes-token');
      for (const [where, result] of [
        ['2025 session, /mcp/team', await legacy.client.callTool({ name: `notes__${PLACEHOLDER}`, arguments: {} })],
        ['2026-07-28, /mcp/team', await modern.callTool({ name: `notes__${PLACEHOLDER}`, arguments: {} })],
        ['2026-07-28, /mcp/team/notes', await raw.callTool({ name: PLACEHOLDER, arguments: {} })],
      ] as const) {
        const r = result as { content?: unknown; isError?: boolean };
        assert.notEqual(r.isError, true, `${where}: ${text(r)}`);
        assert.match(text(r), /account is connected\. List the tools again/, where);
      }
      assert.equal(upstreamCallsOf('notes', PLACEHOLDER), 0, 'the upstream never got a call to the placeholder');
      // The 2025 session goes on, with the server's own tools.
      assert.equal(text((await legacy.client.callTool({ name: 'notes__whoami', arguments: {} })) as { content?: unknown }), 'Bearer carol-notes-token');
    } finally {
      await legacy.client.close();
      await modern.close();
      await raw.close();
    }
  });
});

describe('list_changed after an admin changes the gateway', () => {
  test('an upstream switched off, then on: every open session on the gateway hears it', async () => {
    const admin = apiClient(base, (await signInAdmin(base, CAROL)).tokens.access_token);
    const alice = await v1Session(g.aliceToken);
    const bob = await v1Session(g.bobToken);
    try {
      await alice.client.listTools();
      await bob.client.listTools();
      await streamsOpen([alice, bob]);
      const off = await admin.post('/admin/upstreams/notes/disable', { reason: 'maintenance' });
      assert.equal(off.status, 200);
      await eventually(() => alice.heard.toolsChanged > 0 && bob.heard.toolsChanged > 0, 'both sessions hear the change');
      assert.ok(!(await bob.client.listTools()).tools.some((t) => t.name.startsWith('notes__')), "a disabled upstream's tools are gone");
      const seen = bob.heard.toolsChanged;
      assert.equal((await admin.post('/admin/upstreams/notes/enable')).status, 200);
      await eventually(() => bob.heard.toolsChanged > seen, 'enabling is told too');
    } finally {
      await alice.client.close();
      await bob.client.close();
    }
  });
});
