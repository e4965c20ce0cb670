import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, eventually, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';

// Each client's era, as the upstream speaks it: on /mcp/{gateway}, a 2025
// client reaches an upstream that speaks both eras over a 2025 session of its
// own (pooled per identity), and a 2026-07-28 client reaches it in
// 2026-07-28; nothing is translated between the eras, and the upstream serves
// each call at that era's rate. An upstream that speaks only 2026-07-28 still
// serves 2025 clients (in 2026-07-28, translated).

let g: MergedGateway;
let hub: string;
before(async () => {
  g = await startMergedGateway(
    [
      { id: 'both', eras: 'both' },
      { id: 'new', eras: 'modern' },
    ],
    (config) => {
      config.gateways.push({
        id: 'hub',
        visibility: 'private',
        servers: [
          { upstream: 'both', identity: 'shared', shared_identity: 'both-svc' },
          { upstream: 'new', identity: 'shared', shared_identity: 'new-svc' },
        ],
      });
    },
  );
  hub = `${g.registry.url}/mcp/hub`;
});
after(() => g.close());

const echoes = (upstream: string, from: number) => g.upstreams[upstream]!.requests.slice(from).filter((r) => r.rpc === 'tools/call' && r.name === 'echo');

describe('the upstream era a merged call travels in', () => {
  test('an upstream of both eras: 2025 clients over one 2025 session of their identity, 2026-07-28 clients in 2026-07-28', async () => {
    const clients = {
      alice2025: await connect(hub, '2025-11-25', { token: g.aliceToken }),
      bob2025: await connect(hub, '2025-06-18', { token: g.bobToken }),
      alice2026: await connect(hub, '2026-07-28', { token: g.aliceToken }),
    };
    const up = g.upstreams.both!;
    try {
      const from = up.requests.length;
      for (let i = 0; i < 3; i++) {
        for (const [who, { client }] of Object.entries(clients)) {
          const result = await client.callTool({ name: 'both__echo', arguments: { message: `${who} ${i}` } });
          assert.deepEqual(result.content, [{ type: 'text', text: `${who} ${i}` }]);
        }
      }
      const calls = echoes('both', from);
      const legacy = calls.filter((c) => ((c.body as { params: { arguments: { message: string } } }).params.arguments.message.includes('2025')));
      const modern = calls.filter((c) => ((c.body as { params: { arguments: { message: string } } }).params.arguments.message.includes('2026')));
      assert.equal(legacy.length, 6, 'each 2025 call is one upstream request');
      assert.equal(modern.length, 3, 'each 2026-07-28 call is one upstream request');
      assert.deepEqual(new Set(legacy.map((c) => c.era)), new Set(['legacy']), "2025 clients' calls travel in 2025");
      assert.deepEqual(new Set(modern.map((c) => c.era)), new Set(['modern']), "2026-07-28 clients' calls travel in 2026-07-28");
      const sessions = new Set(legacy.map((c) => c.sessionId));
      assert.equal(sessions.size, 1, 'one upstream 2025 session for the shared identity, whoever calls');
      assert.ok([...sessions][0], 'the upstream session has an id');
    } finally {
      await Promise.all(Object.values(clients).map(({ client }) => client.close()));
    }
  });

  test('an upstream of 2026-07-28 only still serves a 2025 client, in 2026-07-28', async () => {
    const { client } = await connect(hub, '2025-11-25', { token: g.aliceToken });
    const up = g.upstreams.new!;
    try {
      const from = up.requests.length;
      for (let i = 0; i < 3; i++) assert.deepEqual((await client.callTool({ name: 'new__echo', arguments: { message: `m${i}` } })).content, [{ type: 'text', text: `m${i}` }]);
      const calls = echoes('new', from);
      assert.equal(calls.length, 3);
      assert.deepEqual(new Set(calls.map((c) => c.era)), new Set(['modern']));
    } finally {
      await client.close();
    }
  });

  test("one person's 2025 client and 2026-07-28 listener, over the two connections, each hear the upstream's list_changed once", async () => {
    const heard = { legacy: 0, modern: 0 };
    const legacy = await connect(hub, '2025-11-25', { token: g.aliceToken, configure: (c) => c.setNotificationHandler('notifications/tools/list_changed', () => void heard.legacy++) });
    const modern = await connect(hub, '2026-07-28', { token: g.aliceToken, configure: (c) => c.setNotificationHandler('notifications/tools/list_changed', () => void heard.modern++) });
    try {
      for (const { client } of [legacy, modern]) await client.callTool({ name: 'both__echo', arguments: { message: 'warm' } });
      const listen = await modern.client.listen({ toolsListChanged: true });
      try {
        for (const [n, tool] of ['extra1', 'extra2'].entries()) {
          g.upstreams.both!.addTool(tool);
          await eventually(() => heard.legacy > n && heard.modern > n, `both clients hear ${tool}`);
        }
        // A round trip on each: a second copy of a notification, had one been sent, would be here by now.
        for (const { client } of [legacy, modern]) await client.callTool({ name: 'both__echo', arguments: { message: 'settle' } });
        assert.deepEqual(heard, { legacy: 2, modern: 2 });
      } finally {
        await listen.close();
      }
    } finally {
      await legacy.client.close();
      await modern.client.close();
    }
  });
});
