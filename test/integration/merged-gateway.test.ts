import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { connect, ERAS, eventually, type MergedGateway, startEraHub } from '../helpers/merged-gateway.ts';

// /mcp/{gateway} as one MCP server, seen by real SDK clients of every era,
// in front of real SDK upstreams: one that speaks only the 2025 era
// (sessions) and one that speaks only 2026-07-28. Names are prefixed with the
// assignment; everything else (progress, logging, list_changed, cancellation,
// sampling / elicitation / roots, subscriptions, completion) passes through.

const LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
const UPSTREAMS = ['old', 'new'] as const;

let g: MergedGateway;
let hub: string;
before(async () => {
  ({ g, hub } = await startEraHub());
});
after(() => g.close());

const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');

for (const era of ERAS) {
  describe(`a ${era} client on /mcp/{gateway}`, () => {
    let client: Client;
    const seen: string[] = [];
    before(async () => {
      ({ client } = await connect(hub, era, {
        token: g.aliceToken,
        capabilities: { elicitation: { form: {} }, sampling: {}, roots: {} },
        configure: (c) => {
          c.setRequestHandler('elicitation/create', async (r) => {
            seen.push(`elicit:${(r.params as { message: string }).message}`);
            return { action: 'accept', content: { ok: true } };
          });
          c.setRequestHandler('sampling/createMessage', async () => ({ model: `model-${era}`, role: 'assistant', content: { type: 'text', text: 'in short' } }));
          c.setRequestHandler('roots/list', async () => ({ roots: [{ uri: `file:///work/${era}`, name: 'work' }] }));
          c.setNotificationHandler('notifications/message', (n) => void seen.push(`log:${String(n.params.data)}`));
        },
      }));
    });
    after(() => client.close());

    test('negotiates its own revision with the gateway, which names itself after the gateway', () => {
      assert.equal(client.getNegotiatedProtocolVersion(), era);
      assert.equal(client.getServerVersion()?.name, 'Hub');
      assert.deepEqual(client.getServerCapabilities()?.tools, { listChanged: true });
    });

    test('lists the tools of every assignment, each named <assignment>__<tool>, unique and valid', async () => {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      for (const up of UPSTREAMS) for (const tool of ['echo', 'add', 'whoami', 'count', 'confirm']) assert.ok(names.includes(`${up}__${tool}`), `${up}__${tool} in ${names.join(' ')}`);
      assert.equal(new Set(names).size, names.length, 'names are unique');
      for (const name of names) assert.match(name, /^[A-Za-z0-9_.-]{1,128}$/);
      // Everything but the name is the upstream's own definition.
      const add = tools.find((t) => t.name === 'new__add')!;
      assert.equal(add.description, 'Add two numbers.');
      assert.deepEqual(Object.keys(add.outputSchema?.properties ?? {}), ['sum']);
    });

    test('routes each call to its upstream with that assignment\'s credential', async () => {
      for (const up of UPSTREAMS) {
        const result = await client.callTool({ name: `${up}__add`, arguments: { a: 20, b: 22 } });
        assert.deepEqual(result.structuredContent, { sum: 42 });
        assert.equal(text(await client.callTool({ name: `${up}__whoami`, arguments: {} })), `Bearer ${g.upstreams[up]!.key}`);
        const reached = g.upstreams[up]!.requests.filter((r) => r.rpc === 'tools/call' && r.name === 'whoami');
        assert.ok(reached.length > 0, `${up} got the call with its own tool name`);
        assert.ok(!JSON.stringify(g.upstreams[up]!.requests).includes(g.aliceToken), 'the caller\'s token never goes upstream');
      }
    });

    test('an unknown tool is a JSON-RPC error, not a crash', async () => {
      await assert.rejects(client.callTool({ name: 'nowhere__echo', arguments: {} }), /Unknown tool: nowhere__echo/);
    });

    test('relays progress notifications as they come', async () => {
      for (const up of UPSTREAMS) {
        const progress: number[] = [];
        const result = await client.callTool({ name: `${up}__count`, arguments: { n: 3 } }, { onprogress: (p) => progress.push(p.progress) });
        assert.deepEqual(progress, [1, 2, 3], up);
        assert.equal(text(result), 'counted to 3');
      }
    });

    test('relays form elicitation, sampling and roots, whatever era the upstream speaks', async () => {
      for (const up of UPSTREAMS) {
        assert.equal(text(await client.callTool({ name: `${up}__confirm`, arguments: { action: 'deploy' } })), 'confirmed deploy', up);
        assert.ok(seen.includes('elicit:Really deploy?'));
        assert.equal(text(await client.callTool({ name: `${up}__summarize`, arguments: { text: 'long' } })), `summary by model-${era}: in short`, up);
        assert.equal(text(await client.callTool({ name: `${up}__roots`, arguments: {} })), `file:///work/${era}`, up);
      }
    });

    test('relays log messages at or above the level the client asked for', async () => {
      const ask = era === '2026-07-28' ? { [LOG_LEVEL]: 'warning' } : undefined;
      if (era !== '2026-07-28') await client.setLoggingLevel('warning');
      for (const up of UPSTREAMS) {
        await client.callTool({ name: `${up}__log`, arguments: { level: 'error', message: `loud ${up} ${era}` }, ...(ask && { _meta: ask }) });
        await client.callTool({ name: `${up}__log`, arguments: { level: 'info', message: `quiet ${up} ${era}` }, ...(ask && { _meta: ask }) });
      }
      await eventually(() => seen.includes(`log:loud old ${era}`) && seen.includes(`log:loud new ${era}`), 'the error logs');
      assert.ok(!seen.some((s) => s.startsWith('log:quiet')), 'info is below warning');
      if (era !== '2026-07-28') assert.ok(g.upstreams.old!.events.includes('setLevel:warning'), 'logging/setLevel reached the 2025 upstream');
    });

    test('cancelling a call cancels it at the upstream', async () => {
      for (const up of UPSTREAMS) {
        const events = g.upstreams[up]!.events;
        const started = events.filter((e) => e === 'hold:started').length;
        const cancelled = events.filter((e) => e === 'hold:cancelled').length;
        const abort = new AbortController();
        const call = client.callTool({ name: `${up}__hold`, arguments: {} }, { signal: abort.signal });
        await eventually(() => events.filter((e) => e === 'hold:started').length > started, `${up} started holding`);
        abort.abort();
        await assert.rejects(call);
        await eventually(() => events.filter((e) => e === 'hold:cancelled').length > cancelled, `${up} saw the cancellation`);
      }
    });

    test('lists resources and templates with URIs unchanged, and reads each from the upstream that serves it', async () => {
      const { resources } = await client.listResources();
      assert.deepEqual(resources.map((r) => [r.name, r.uri]).sort(), [
        ['new__readme', 'note://new/readme'],
        ['old__readme', 'note://old/readme'],
      ]);
      const { resourceTemplates } = await client.listResourceTemplates();
      assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate).sort(), ['note://new/items/{id}', 'note://old/items/{id}']);
      for (const up of UPSTREAMS) {
        assert.deepEqual((await client.readResource({ uri: `note://${up}/readme` })).contents, [{ uri: `note://${up}/readme`, text: `readme of ${up} (${up === 'old' ? 'legacy' : 'modern'})` }]);
        // Not listed, but the template matches: routed by the template.
        assert.deepEqual((await client.readResource({ uri: `note://${up}/items/9` })).contents, [{ uri: `note://${up}/items/9`, text: `item 9 of ${up}` }]);
      }
      await assert.rejects(client.readResource({ uri: 'note://elsewhere/x' }), (err: { code?: number }) => err.code === -32602 || err.code === -32002);
    });

    test('lists prompts with prefixed names and gets each from its upstream', async () => {
      const { prompts } = await client.listPrompts();
      assert.deepEqual(prompts.map((p) => p.name).sort(), ['new__greet', 'old__greet']);
      for (const up of UPSTREAMS) {
        const prompt = await client.getPrompt({ name: `${up}__greet`, arguments: { who: 'Ada' } });
        assert.deepEqual(prompt.messages, [{ role: 'user', content: { type: 'text', text: `Say hello to Ada from ${up}.` } }]);
      }
    });

    test('completes a template argument at the upstream that owns the template', async () => {
      await client.listResourceTemplates();
      for (const up of UPSTREAMS) {
        const { completion } = await client.complete({ ref: { type: 'ref/resource', uri: `note://${up}/items/{id}` }, argument: { name: 'id', value: '' } });
        assert.deepEqual(completion.values, ['1', '2', '3']);
      }
    });
  });
}

describe('notifications the upstreams send unasked', () => {
  test('a 2025 client hears tools list_changed and resource updates of what it subscribed to, from both upstreams', async () => {
    const seen: string[] = [];
    const { client } = await connect(hub, '2025-11-25', {
      token: g.aliceToken,
      configure: (c) => {
        c.setNotificationHandler('notifications/tools/list_changed', () => void seen.push('tools_changed'));
        c.setNotificationHandler('notifications/resources/updated', (n) => void seen.push(`updated:${n.params.uri}`));
      },
    });
    try {
      await client.listTools();
      await client.subscribeResource({ uri: 'note://old/readme' });
      await client.subscribeResource({ uri: 'note://new/readme' });
      assert.ok(g.upstreams.old!.events.includes('subscribe:note://old/readme'), 'the 2025 upstream got resources/subscribe');
      await new Promise((r) => setTimeout(r, 200)); // the upstream streams open
      g.upstreams.old!.touch('note://old/readme');
      g.upstreams.new!.touch('note://new/readme');
      await eventually(() => seen.includes('updated:note://old/readme') && seen.includes('updated:note://new/readme'), 'both resource updates');
      g.upstreams.old!.addTool('fresh_old');
      await eventually(() => seen.includes('tools_changed'), 'tools list_changed');
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'old__fresh_old'));
      await client.unsubscribeResource({ uri: 'note://old/readme' });
      await eventually(() => g.upstreams.old!.events.includes('unsubscribe:note://old/readme'), 'unsubscribe upstream');
    } finally {
      await client.close();
    }
  });

  test('a 2026-07-28 client hears them on its subscriptions/listen stream', async () => {
    const seen: string[] = [];
    const { client } = await connect(hub, '2026-07-28', {
      token: g.aliceToken,
      configure: (c) => {
        c.setNotificationHandler('notifications/tools/list_changed', () => void seen.push('tools_changed'));
        c.setNotificationHandler('notifications/resources/updated', (n) => void seen.push(`updated:${n.params.uri}`));
      },
    });
    try {
      const sub = await client.listen({ toolsListChanged: true, resourceSubscriptions: ['note://old/readme', 'note://new/readme'] });
      assert.deepEqual(sub.honoredFilter.resourceSubscriptions, ['note://old/readme', 'note://new/readme']);
      await new Promise((r) => setTimeout(r, 200));
      g.upstreams.old!.touch('note://old/readme');
      g.upstreams.new!.touch('note://new/readme');
      await eventually(() => seen.includes('updated:note://old/readme') && seen.includes('updated:note://new/readme'), 'both resource updates');
      g.upstreams.new!.addTool('fresh_new');
      await eventually(() => seen.includes('tools_changed'), 'tools list_changed');
      const unsubscribed = () => g.upstreams.old!.events.filter((e) => e === 'unsubscribe:note://old/readme').length;
      const before = unsubscribed();
      await sub.close();
      await eventually(() => unsubscribed() > before, 'the upstream subscription ends with the stream');
    } finally {
      await client.close();
    }
  });
});

describe('2025 sessions on /mcp/{gateway}', () => {
  test('a session id is its caller\'s only; DELETE ends it', async () => {
    const { client, transport } = await connect(hub, '2025-11-25', { token: g.aliceToken });
    const session = transport.sessionId!;
    assert.ok(session);
    const post = (token: string) =>
      fetch(hub, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25', accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }),
      });
    const stolen = await post(g.bobToken);
    assert.equal(stolen.status, 404);
    assert.deepEqual(((await stolen.json()) as { error: { data: unknown } }).error.data, { step: 'gateway', reason: 'unknown_session' });
    assert.equal((await post(g.aliceToken)).status, 200);
    await transport.terminateSession();
    assert.equal((await post(g.aliceToken)).status, 404, 'the session ended');
    await client.close();
  });
});
