import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, eventually, type MergedGateway, startEraHub } from '../helpers/merged-gateway.ts';

// Era translation on /mcp/{gateway}, seen on the wire, and the upstream
// sessions behind it: a 2026-07-28 client reaches a 2025-only upstream (the
// gateway holds that upstream's session and turns its server-to-client
// requests into input_required rounds), a 2025 client reaches a
// 2026-07-28-only upstream (its input_required becomes real requests to the
// client, then the retried upstream request). Upstream sessions are pooled
// per (upstream, identity), re-initialized when the upstream expires them,
// and their streams resumed with Last-Event-ID.

const MODERN = { 'mcp-protocol-version': '2026-07-28', accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const envelope = (caps: Record<string, unknown> = { elicitation: { form: {} } }) => ({
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': caps,
  'io.modelcontextprotocol/clientInfo': { name: 'wire', version: '1' },
});

let g: MergedGateway;
let hub: string;
before(async () => {
  ({ g, hub } = await startEraHub());
});
after(() => g.close());

async function rpc(token: string, id: number, method: string, params: Record<string, unknown>, name?: string) {
  const res = await fetch(hub, {
    method: 'POST',
    headers: { ...MODERN, authorization: `Bearer ${token}`, 'mcp-method': method, ...(name !== undefined && { 'mcp-name': name }) },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
  });
  const type = res.headers.get('content-type') ?? '';
  const body = await res.text();
  const messages = type.startsWith('text/event-stream')
    ? body
        .split('\n')
        .filter((l) => l.startsWith('data: ') && l.length > 6)
        .map((l) => JSON.parse(l.slice(6)) as Record<string, any>)
    : [JSON.parse(body) as Record<string, any>];
  return { status: res.status, answer: messages.find((m) => m.id === id)! };
}

describe('2026-07-28 client, 2025-only upstream', () => {
  test("the upstream's elicitation request becomes an input_required round; the retry answers it and returns the result", async () => {
    const first = await rpc(g.aliceToken, 1, 'tools/call', { name: 'old__confirm', arguments: { action: 'ship' }, _meta: envelope() }, 'old__confirm');
    assert.equal(first.status, 200);
    const result = first.answer.result;
    assert.equal(result.resultType, 'input_required');
    const [key, request] = Object.entries(result.inputRequests as Record<string, { method: string; params: { message: string } }>)[0]!;
    assert.equal(request.method, 'elicitation/create');
    assert.equal(request.params.message, 'Really ship?');
    assert.equal(typeof result.requestState, 'string');
    // Meanwhile the upstream call is held open, its session and stream alive.
    const upstreamCall = g.upstreams.old!.requests.filter((r) => r.rpc === 'tools/call' && r.name === 'confirm');
    assert.equal(upstreamCall.length, 1);

    const second = await rpc(g.aliceToken, 2, 'tools/call', { name: 'old__confirm', arguments: { action: 'ship' }, inputResponses: { [key]: { action: 'accept', content: { ok: true } } }, requestState: result.requestState, _meta: envelope() }, 'old__confirm');
    assert.deepEqual(second.answer.result.content, [{ type: 'text', text: 'confirmed ship' }]);
    assert.equal(second.answer.result.resultType, 'complete');
    // The upstream got one tools/call (never a retry: it is 2025) and the client's answer as a JSON-RPC response on its session.
    assert.equal(g.upstreams.old!.requests.filter((r) => r.rpc === 'tools/call' && r.name === 'confirm').length, 1);
    const answered = g.upstreams.old!.requests.find((r) => r.rpc === undefined && (r.body as { result?: { action?: string } } | undefined)?.result?.action === 'accept');
    assert.ok(answered?.sessionId, 'answered on the upstream session');
  });

  test('a requestState that was tampered with, or is replayed by another user, is refused', async () => {
    const first = await rpc(g.aliceToken, 3, 'tools/call', { name: 'old__confirm', arguments: { action: 'a' }, _meta: envelope() }, 'old__confirm');
    const state = first.answer.result.requestState as string;
    const tampered = await rpc(g.aliceToken, 4, 'tools/call', { name: 'old__confirm', arguments: { action: 'a' }, inputResponses: {}, requestState: `${state.slice(0, -2)}xx`, _meta: envelope() }, 'old__confirm');
    assert.equal(tampered.answer.error.code, -32602);
    const replayed = await rpc(g.bobToken, 5, 'tools/call', { name: 'old__confirm', arguments: { action: 'a' }, inputResponses: {}, requestState: state, _meta: envelope() }, 'old__confirm');
    assert.equal(replayed.answer.error.code, -32602);
    assert.match(replayed.answer.error.message, /requestState/);
  });

  test('a client that declared no elicitation gets the upstream request refused, not a round it cannot answer', async () => {
    const res = await rpc(g.aliceToken, 6, 'tools/call', { name: 'old__confirm', arguments: { action: 'b' }, _meta: envelope({}) }, 'old__confirm');
    assert.equal(res.answer.result.resultType, 'complete');
    assert.equal(res.answer.result.isError, true);
    assert.match(res.answer.result.content[0].text, /did not declare support for elicitation\/create/);
  });
});

describe('2025 client, 2026-07-28-only upstream', () => {
  test("the upstream's input_required becomes a real elicitation request to the client, then the retried upstream request", async () => {
    const asked: string[] = [];
    const { client } = await connect(hub, '2025-11-25', {
      token: g.aliceToken,
      capabilities: { elicitation: { form: {} } },
      configure: (c) =>
        c.setRequestHandler('elicitation/create', async (r) => {
          asked.push((r.params as { message: string }).message);
          return { action: 'accept', content: { ok: true } };
        }),
    });
    try {
      const before = g.upstreams.new!.requests.length;
      const result = await client.callTool({ name: 'new__confirm', arguments: { action: 'merge' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'confirmed merge' }]);
      assert.deepEqual(asked, ['Really merge?']);
      const calls = g.upstreams.new!.requests.slice(before).filter((r) => r.rpc === 'tools/call');
      assert.equal(calls.length, 2, 'the first call, then the retry');
      const retry = (calls[1]!.body as { params: { inputResponses?: Record<string, unknown>; requestState?: unknown } }).params;
      assert.deepEqual(Object.values(retry.inputResponses ?? {}), [{ action: 'accept', content: { ok: true } }]);
      assert.equal(calls[1]!.era, 'modern');
    } finally {
      await client.close();
    }
  });

  test('a declined elicitation reaches the upstream as declined', async () => {
    const { client } = await connect(hub, '2025-11-25', { token: g.aliceToken, capabilities: { elicitation: { form: {} } }, configure: (c) => c.setRequestHandler('elicitation/create', async () => ({ action: 'decline' })) });
    try {
      const result = await client.callTool({ name: 'new__confirm', arguments: { action: 'drop' } });
      assert.equal(result.isError, true);
      assert.deepEqual(result.content, [{ type: 'text', text: 'not confirmed (decline)' }]);
    } finally {
      await client.close();
    }
  });
});

describe('upstream sessions', () => {
  test('pooled per (upstream, identity): many calls from many clients, one initialize', async () => {
    const before = g.upstreams.old!.initializeCount();
    const clients = await Promise.all([
      connect(hub, '2026-07-28', { token: g.aliceToken }),
      connect(hub, '2025-11-25', { token: g.aliceToken }),
      connect(hub, '2025-06-18', { token: g.bobToken }),
    ]);
    try {
      for (let i = 0; i < 5; i++) {
        await Promise.all(clients.map(({ client }) => client.callTool({ name: 'old__echo', arguments: { message: String(i) } })));
      }
      const calls = g.upstreams.old!.requests.filter((r) => r.rpc === 'tools/call' && r.name === 'echo');
      assert.ok(calls.length >= 15);
      assert.equal(g.upstreams.old!.initializeCount(), before, 'no call paid an initialize handshake');
      assert.equal(new Set(calls.slice(-15).map((c) => c.sessionId)).size, 1, 'one upstream session for the shared identity');
    } finally {
      await Promise.all(clients.map(({ client }) => client.close()));
    }
  });

  test('an expired upstream session (404) is re-initialized transparently, once', async () => {
    const { client } = await connect(hub, '2025-11-25', { token: g.aliceToken });
    try {
      await client.callTool({ name: 'old__echo', arguments: { message: 'warm' } });
      const before = g.upstreams.old!.initializeCount();
      await g.upstreams.old!.expireSessions();
      const results = await Promise.all([1, 2, 3].map((i) => client.callTool({ name: 'old__echo', arguments: { message: `after ${i}` } })));
      assert.deepEqual(results.map((r) => (r.content as { text: string }[])[0]!.text), ['after 1', 'after 2', 'after 3']);
      assert.equal(g.upstreams.old!.initializeCount(), before + 1, 'one new session for three calls');
      assert.ok(g.upstreams.old!.requests.some((r) => r.rpc === 'tools/call' && r.name === 'echo' && r.sessionId !== undefined), 'calls go on the new session');
    } finally {
      await client.close();
    }
  });

  test('a dropped upstream stream is resumed with Last-Event-ID: what the upstream sent meanwhile still arrives', async () => {
    const seen: string[] = [];
    const { client } = await connect(hub, '2025-11-25', { token: g.aliceToken, configure: (c) => c.setNotificationHandler('notifications/resources/updated', (n) => void seen.push(n.params.uri)) });
    try {
      await client.subscribeResource({ uri: 'note://old/readme' });
      await eventually(() => g.upstreams.old!.requests.some((r) => r.http === 'GET'), 'the gateway opened the upstream stream');
      g.upstreams.old!.touch('note://old/readme');
      await eventually(() => seen.length === 1, 'the first update');
      g.upstreams.old!.dropStreams();
      g.upstreams.old!.touch('note://old/readme'); // sent while the stream is down: kept in the upstream's event store
      await eventually(() => seen.length === 2, 'the update sent while disconnected');
      const resumed = g.upstreams.old!.requests.filter((r) => r.http === 'GET' && r.headers['last-event-id']);
      assert.ok(resumed.length > 0, 'the gateway reconnected with Last-Event-ID');
    } finally {
      await client.close();
    }
  });
});

describe('2025-11-25 client streams on /mcp/{gateway}', () => {
  const LEGACY = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25' };

  /** POST one JSON-RPC message on the session; the SSE events of the answer as sent (id and data lines). */
  async function post(token: string, session: string | undefined, message: Record<string, unknown>) {
    const res = await fetch(hub, {
      method: 'POST',
      headers: { ...LEGACY, authorization: `Bearer ${token}`, ...(session && { 'mcp-session-id': session }) },
      body: JSON.stringify(message),
    });
    const body = await res.text();
    const events = body
      .split('\n\n')
      .filter((e) => e.trim())
      .map((e) => ({ id: /^id: (.*)$/m.exec(e)?.[1], data: /^data: ?(.*)$/m.exec(e)?.[1] ?? '' }));
    return { status: res.status, session: res.headers.get('mcp-session-id') ?? session, events };
  }

  test('a client that never resumed gets no empty priming event (VS Code cannot parse one); once it resumes a stream, its POST streams are primed', async () => {
    const init = await post(g.aliceToken, undefined, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'wire', version: '1' } } });
    assert.equal(init.status, 200);
    assert.ok(init.session, 'a session');
    assert.deepEqual(init.events.map((e) => JSON.parse(e.data).id), [1], 'only the answer: no event with empty data');
    await post(g.aliceToken, init.session!, { jsonrpc: '2.0', method: 'notifications/initialized' });
    const list = await post(g.aliceToken, init.session!, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    assert.equal(list.events.length, 1);
    assert.equal(JSON.parse(list.events[0]!.data).id, 2);
    assert.ok(list.events[0]!.id, 'the real event keeps its id, so a client can still resume after it');

    // The client resumes a stream (GET with Last-Event-ID): from now on its POST streams are primed.
    const resume = new AbortController();
    const get = await fetch(hub, { headers: { ...LEGACY, authorization: `Bearer ${g.aliceToken}`, 'mcp-session-id': init.session!, 'last-event-id': list.events[0]!.id! }, signal: resume.signal });
    assert.equal(get.status, 200);
    resume.abort();
    await get.body?.cancel().catch(() => undefined);
    const primed = await post(g.aliceToken, init.session!, { jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} });
    assert.equal(primed.events.length, 2);
    assert.equal(primed.events[0]!.data, '', 'the priming event: an id and empty data');
    assert.ok(primed.events[0]!.id);
    assert.equal(JSON.parse(primed.events[1]!.data).id, 3);
  });
});

describe('a registry restart and 2025 sessions', () => {
  test('/mcp/{gateway}/{server}: the session is the upstream\'s, bound by the vault-derived key, and outlives the restart; /mcp/{gateway}: its id carries the session, which the new process picks up', async () => {
    const own = await startEraHub();
    try {
      const raw = await connect(`${own.hub}/old`, '2025-11-25', { token: own.g.aliceToken });
      const merged = await connect(own.hub, '2025-11-25', { token: own.g.aliceToken });
      try {
        await raw.client.callTool({ name: 'echo', arguments: { message: 'before' } });
        await merged.client.callTool({ name: 'old__echo', arguments: { message: 'before' } });
        const epoch = (await fetch(`${own.g.registry.url}/healthz`)).headers.get('keygate-epoch');
        const initializes = own.g.upstreams.old!.initializeCount();

        await own.g.registry.stop();
        await own.g.registry.start();
        assert.notEqual((await fetch(`${own.g.registry.url}/healthz`)).headers.get('keygate-epoch'), epoch, 'a new epoch after the restart');

        const after = await raw.client.callTool({ name: 'echo', arguments: { message: 'after' } });
        assert.deepEqual(after.content, [{ type: 'text', text: 'after' }]);
        assert.equal(own.g.upstreams.old!.initializeCount(), initializes, 'the raw session went on: no new initialize at the upstream');

        // The merged session goes on under the same id (the new process opens its own upstream sessions).
        const sessionId = merged.transport.sessionId;
        const picked = await merged.client.callTool({ name: 'old__echo', arguments: { message: 'after' } });
        assert.deepEqual(picked.content, [{ type: 'text', text: 'after' }]);
        assert.equal(merged.transport.sessionId, sessionId);

        // Another person's token with the id, or a forged id, is still no session.
        const post = (sid: string, token = own.g.aliceToken) =>
          fetch(own.hub, {
            method: 'POST',
            headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25', authorization: `Bearer ${token}`, 'mcp-session-id': sid },
            body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }),
          });
        const forged = await post(`${sessionId!.slice(0, -1)}${sessionId!.endsWith('A') ? 'B' : 'A'}`);
        assert.equal(forged.status, 404, 'the MCP transport tells the client to start a new session');
        assert.equal(((await forged.json()) as { error: { data: { reason: string } } }).error.data.reason, 'unknown_session');
        const stolen = await post(sessionId!, own.g.bobToken);
        assert.equal(stolen.status, 404);
        assert.equal(((await stolen.json()) as { error: { data: { reason: string } } }).error.data.reason, 'unknown_session');
      } finally {
        await raw.client.close().catch(() => undefined);
        await merged.client.close().catch(() => undefined);
      }
    } finally {
      await own.g.close();
    }
  });
});
