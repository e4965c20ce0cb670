import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, eventually, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';

// Resource URIs that no server of a merged gateway listed and no template
// matches: an upstream asked directly serves them (a live feed, a path), so
// the gateway routes them as that upstream would be reached — to the only
// server that can serve the request (for a subscription: the only one that
// supports subscriptions), else to the only one whose listed URIs share the
// URI's scheme and authority, else its scheme — and refuses, saying why, a
// URI that no rule places as not found (docs/gateways.md, "Resource URIs").

let g: MergedGateway;
let mixed: string;
let pair: string;
before(async () => {
  g = await startMergedGateway(
    [
      { id: 'feed', eras: 'legacy' },
      { id: 'files', eras: 'both', subscriptions: false },
      { id: 'alpha', eras: 'legacy' },
      { id: 'beta', eras: 'legacy' },
    ],
    (config) => {
      const shared = (upstream: string) => ({ upstream, identity: 'shared', shared_identity: `${upstream}-svc` });
      config.gateways.push(
        { id: 'mixed', visibility: 'private', servers: [shared('feed'), shared('files')] },
        { id: 'pair', visibility: 'private', servers: [shared('alpha'), shared('beta')] },
        // feed as a per-user server: a caller who has not connected it cannot be routed there.
        { id: 'personal', visibility: 'private', servers: [{ upstream: 'feed', identity: 'per_user' }, shared('files')] },
      );
    },
  );
  mixed = `${g.registry.url}/mcp/mixed`;
  pair = `${g.registry.url}/mcp/pair`;
});
after(() => g.close());

const reached = (upstream: string, rpc: string, uri: string) => g.upstreams[upstream]!.requests.filter((r) => r.rpc === rpc && r.name === uri).length;

describe('subscribing to a URI no server listed', () => {
  test('2025-11-25: it goes to the only server that supports subscriptions, and its updates arrive', async () => {
    const uri = 'live://ticker/42';
    const seen: string[] = [];
    const { client } = await connect(mixed, '2025-11-25', {
      token: g.aliceToken,
      configure: (c) => c.setNotificationHandler('notifications/resources/updated', (n) => void seen.push(n.params.uri)),
    });
    try {
      assert.ok(!(await client.listResources()).resources.some((r) => r.uri === uri), 'the URI is listed by no server');
      await client.subscribeResource({ uri });
      assert.ok(g.upstreams.feed!.events.includes(`subscribe:${uri}`), 'the subscribing server got resources/subscribe');
      assert.equal(reached('files', 'resources/subscribe', uri), 0, 'the server without subscriptions was not asked');
      await new Promise((r) => setTimeout(r, 200)); // the upstream stream opens
      g.upstreams.feed!.touch(uri);
      await eventually(() => seen.includes(uri), 'the resource update');
      await client.unsubscribeResource({ uri });
      await eventually(() => g.upstreams.feed!.events.includes(`unsubscribe:${uri}`), 'unsubscribe upstream');
    } finally {
      await client.close();
    }
  });

  test('2026-07-28: subscriptions/listen subscribes at that server, and its updates arrive on the stream', async () => {
    const uri = 'live://ticker/43';
    const seen: string[] = [];
    const { client } = await connect(mixed, '2026-07-28', {
      token: g.aliceToken,
      configure: (c) => c.setNotificationHandler('notifications/resources/updated', (n) => void seen.push(n.params.uri)),
    });
    try {
      const sub = await client.listen({ resourceSubscriptions: [uri] });
      await eventually(() => g.upstreams.feed!.events.includes(`subscribe:${uri}`), 'the subscription upstream');
      await new Promise((r) => setTimeout(r, 200));
      g.upstreams.feed!.touch(uri);
      await eventually(() => seen.includes(uri), 'the resource update');
      await sub.close();
    } finally {
      await client.close();
    }
  });

  test('of two servers that both support subscriptions, it goes to the one whose URIs share its scheme and authority', async () => {
    const uri = 'note://beta/live/feed';
    const seen: string[] = [];
    const { client } = await connect(pair, '2025-11-25', {
      token: g.aliceToken,
      configure: (c) => c.setNotificationHandler('notifications/resources/updated', (n) => void seen.push(n.params.uri)),
    });
    try {
      await client.subscribeResource({ uri });
      assert.ok(g.upstreams.beta!.events.includes(`subscribe:${uri}`));
      assert.equal(reached('alpha', 'resources/subscribe', uri), 0);
      await new Promise((r) => setTimeout(r, 200));
      g.upstreams.beta!.touch(uri);
      await eventually(() => seen.includes(uri), 'the resource update');
    } finally {
      await client.close();
    }
  });

  test('a URI no rule places (two subscribing servers, neither uses its scheme) is refused naming the rule, and reaches no server', async () => {
    const uri = 'other://somewhere/x';
    const { client } = await connect(pair, '2025-11-25', { token: g.aliceToken });
    try {
      await assert.rejects(client.subscribeResource({ uri }), (err: { code: number; message: string; data?: unknown }) => {
        // The SDK's "resource not found": -32602 with data exactly { uri }.
        assert.equal(err.code, -32602);
        assert.deepEqual(err.data, { uri });
        assert.match(err.message, /no server listed other:\/\/somewhere\/x or has a template that matches it; 2 servers support subscriptions \(alpha, beta\) and none lists URIs under other:/);
        return true;
      });
      assert.equal(reached('alpha', 'resources/subscribe', uri) + reached('beta', 'resources/subscribe', uri), 0);
    } finally {
      await client.close();
    }
  });

  test('a per-user server the caller has not connected is never the one chosen: refused, and nothing reaches it', async () => {
    const uri = 'live://ticker/45';
    const { client } = await connect(`${g.registry.url}/mcp/personal`, '2025-11-25', { token: g.bobToken });
    try {
      await assert.rejects(client.subscribeResource({ uri }), (err: { code: number; message: string; data?: unknown }) => {
        assert.equal(err.code, -32602);
        assert.deepEqual(err.data, { uri });
        assert.match(err.message, /and none of the servers you can use here support subscriptions/);
        return true;
      });
      assert.equal(reached('feed', 'resources/subscribe', uri), 0);
    } finally {
      await client.close();
    }
  });
});

describe('reading a URI no server listed: the same rule', () => {
  test('it goes to the one server whose URIs share its scheme and authority (which answers for itself)', async () => {
    const uri = 'note://alpha/unlisted';
    const { client } = await connect(pair, '2026-07-28', { token: g.aliceToken });
    try {
      // The upstream itself does not know the URI either: its own answer comes back.
      await assert.rejects(client.readResource({ uri }), (err: { code: number; data?: unknown }) => err.code === -32602 && JSON.stringify(err.data) === JSON.stringify({ uri }));
      assert.equal(reached('alpha', 'resources/read', uri), 1, 'alpha was asked');
      assert.equal(reached('beta', 'resources/read', uri), 0, 'beta was not');
    } finally {
      await client.close();
    }
  });

  test('two servers offering resources and neither using its scheme: refused before anything is forwarded', async () => {
    const uri = 'live://ticker/44';
    const { client } = await connect(mixed, '2025-11-25', { token: g.aliceToken });
    try {
      await assert.rejects(client.readResource({ uri }), (err: { code: number; message: string; data?: unknown }) => {
        assert.equal(err.code, -32602);
        assert.deepEqual(err.data, { uri });
        assert.match(err.message, /2 servers offer resources \(feed, files\) and none lists URIs under live:/);
        return true;
      });
      assert.equal(reached('feed', 'resources/read', uri) + reached('files', 'resources/read', uri), 0);
    } finally {
      await client.close();
    }
  });
});
