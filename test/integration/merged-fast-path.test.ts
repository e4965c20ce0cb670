import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ALICE } from '../helpers/fixture.ts';
import { auditEntries, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';
import { signIn } from '../helpers/oauth.ts';

// The fast path of 2025 sessions on /mcp/{gateway}, from the wire: a
// tools/call on a live session reaches the upstream as one request over the
// pooled upstream session and its answer comes straight back (JSON unless the
// upstream says more on the way), with the same answer the SDK path gives,
// for results and for every refusal. A session whose client has resumed a
// stream (sent Last-Event-ID) is served by the SDK path: it is the reference.

const LEGACY = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25' };

let g: MergedGateway;
let hub: string;
before(async () => {
  g = await startMergedGateway(
    [
      { id: 'old', eras: 'legacy' },
      { id: 'down', eras: 'legacy' },
      { id: 'new', eras: 'modern' },
    ],
    (config) => {
      config.gateways.push({
        id: 'hub',
        visibility: 'private',
        servers: [
          {
            upstream: 'old',
            identity: 'shared',
            shared_identity: 'old-svc',
            tools: { deny: ['write_note'] },
            policies: [{ action: 'deny', tools: ['whoami'], when: { users: ['bob'] }, reason: 'Bob may not ask who he is here' }],
          },
          { upstream: 'down', identity: 'shared', shared_identity: 'down-svc' },
          { upstream: 'old', name: 'mine', identity: 'per_user' },
          { upstream: 'new', identity: 'shared', shared_identity: 'new-svc' },
        ],
      });
    },
  );
  hub = `${g.registry.url}/mcp/hub`;
});
after(() => g.close().catch(() => undefined));

interface Session {
  sid: string;
  token: string;
}

interface Answer {
  status: number;
  type: string;
  /** Every JSON-RPC message of the response, in order, with its SSE event id when it had one. */
  events: { id: string | undefined; message: Record<string, any> }[];
}

function parseSse(text: string): Answer['events'] {
  const events: Answer['events'] = [];
  for (const block of text.split('\n\n')) {
    const id = /^id: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.+)$/m.exec(block)?.[1];
    if (data) events.push({ id, message: JSON.parse(data) as Record<string, any> });
  }
  return events;
}

/** Reads an SSE response until `found` finds the message wanted in what arrived so far. */
function sseReader(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  return async (found: (text: string) => Record<string, any> | undefined) => {
    for (let m = found(text); ; m = found(text)) {
      if (m) return m;
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended: ${text}`);
      text += value;
    }
  };
}

async function send(s: Session, message: Record<string, unknown>): Promise<Answer> {
  const res = await fetch(hub, { method: 'POST', headers: { ...LEGACY, authorization: `Bearer ${s.token}`, 'mcp-session-id': s.sid }, body: JSON.stringify(message) });
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  const events = type.startsWith('text/event-stream') ? parseSse(text) : text ? [{ id: undefined, message: JSON.parse(text) as Record<string, any> }] : [];
  return { status: res.status, type, events };
}

let nextId = 1;
const call = (s: Session, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) =>
  send(s, { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name, arguments: args, ...(meta && { _meta: meta }) } });

async function open(token: string, capabilities: Record<string, unknown> = {}): Promise<Session> {
  const res = await fetch(hub, {
    method: 'POST',
    headers: { ...LEGACY, authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities, clientInfo: { name: 'wire', version: '1' } } }),
  });
  await res.text();
  const s = { sid: res.headers.get('mcp-session-id')!, token };
  assert.ok(s.sid, `initialize: ${res.status}`);
  await send(s, { jsonrpc: '2.0', method: 'notifications/initialized' });
  return s;
}

/** A session whose client has resumed a stream: the SDK path serves it from then on. */
async function viaSdk(token: string, capabilities: Record<string, unknown> = {}): Promise<Session> {
  const s = await open(token, capabilities);
  const res = await fetch(hub, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': s.sid, 'mcp-protocol-version': '2025-11-25', 'last-event-id': 'never-sent' } });
  await res.text();
  return s;
}

/** The answer's message (its id left out: each call has its own), the HTTP status, and any other message on the way. */
function outcome(a: Answer): { status: number; answer: unknown; others: unknown[] } {
  const answer = a.events.find((e) => e.message.method === undefined && e.message.id !== undefined)?.message;
  const { id: _id, ...rest } = answer ?? {};
  return { status: a.status, answer: answer && rest, others: a.events.filter((e) => e.message.method !== undefined).map((e) => e.message) };
}

describe('2025 session on /mcp/{gateway}: the tools/call fast path', () => {
  test('each call is one upstream request over the pooled session, answered as JSON with its id', async () => {
    const s = await open(g.aliceToken);
    await call(s, 'old__echo', { message: 'first' }); // the first call may connect the upstream session
    const up = g.upstreams.old!;
    // The pooled session's one listening stream (GET) opens beside that first call, at its own pace: counted before, not among the calls.
    for (let waited = 0; !up.requests.some((r) => r.http === 'GET') && waited < 3_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    const seenBefore = up.requests.length;
    const initializes = up.initializeCount();
    for (const n of [1, 2, 3, 4, 5]) {
      const id = nextId;
      const a = await call(s, 'old__echo', { message: `m${n}` });
      assert.equal(a.status, 200);
      assert.match(a.type, /^application\/json/, 'answered straight back, not through an SDK stream');
      assert.deepEqual(a.events.map((e) => e.message), [{ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `m${n}` }] } }]);
    }
    const seen = up.requests.slice(seenBefore);
    assert.deepEqual(
      seen.map((r) => [r.http, r.rpc, r.name, r.authorization]),
      [1, 2, 3, 4, 5].map(() => ['POST', 'tools/call', 'echo', `Bearer ${up.key}`]),
    );
    assert.equal(up.initializeCount(), initializes, 'no handshake per call');
    const audited = (await auditEntries(g.registry)).filter((e) => (e as { name?: string }).name === 'echo').at(-1) as unknown as Record<string, unknown>;
    assert.deepEqual([audited.method, audited.server, audited.upstream], ['tools/call', 'old', 'old']);
  });

  test('a call to a 2026-07-28 upstream is one request too; its input_required is fulfilled on the session without asking the upstream twice', async () => {
    const s = await open(g.aliceToken, { elicitation: { form: {} } });
    await call(s, 'new__echo', { message: 'warm' });
    const up = g.upstreams.new!;
    let seenBefore = up.requests.length;
    const id = nextId;
    const a = await call(s, 'new__echo', { message: 'modern' });
    assert.match(a.type, /^application\/json/);
    assert.deepEqual(a.events.map((e) => e.message), [{ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'modern' }] } }]);
    // (The gateway's own subscriptions/listen stream to the upstream may open meanwhile.)
    assert.deepEqual(up.requests.slice(seenBefore).filter((r) => r.rpc !== 'subscriptions/listen').map((r) => [r.rpc, r.name]), [['tools/call', 'echo']]);

    seenBefore = up.requests.length;
    const confirmId = nextId++;
    const res = await fetch(hub, {
      method: 'POST',
      headers: { ...LEGACY, authorization: `Bearer ${s.token}`, 'mcp-session-id': s.sid },
      body: JSON.stringify({ jsonrpc: '2.0', id: confirmId, method: 'tools/call', params: { name: 'new__confirm', arguments: { action: 'land' } } }),
    });
    const until = sseReader(res);
    const elicit = await until((text) => parseSse(text).find((e) => e.message.method === 'elicitation/create')?.message);
    assert.equal(elicit.params.message, 'Really land?');
    assert.equal((await send(s, { jsonrpc: '2.0', id: elicit.id, result: { action: 'accept', content: { ok: true } } })).status, 202);
    const answer = await until((text) => parseSse(text).find((e) => e.message.id === confirmId)?.message);
    assert.deepEqual(answer.result.content, [{ type: 'text', text: 'confirmed land' }]);
    const rounds = up.requests.slice(seenBefore).filter((r) => r.rpc === 'tools/call');
    assert.equal(rounds.length, 2, 'the first round once, then the retry with the answer');
    assert.ok((rounds[1]!.body as { params: { inputResponses?: unknown } }).params.inputResponses, 'the retry carries the answer');
  });

  test('answers exactly as the SDK path does, progress notifications included', async () => {
    const fast = await open(g.aliceToken);
    const sdk = await viaSdk(g.aliceToken);
    const calls: [string, Record<string, unknown>, Record<string, unknown>?][] = [
      ['old__echo', { message: 'same' }],
      ['old__whoami', {}],
      ['old__count', { n: 3 }, { progressToken: 'p1' }],
      ['old__echo', { message: 42 }],
      ['new__echo', { message: 'modern' }],
      ['new__count', { n: 2 }, { progressToken: 'p2' }],
    ];
    for (const s of [fast, sdk]) for (const up of ['old', 'new']) await call(s, `${up}__echo`, { message: 'warm' });
    for (const [name, args, meta] of calls) {
      const onFast = await call(fast, name, args, meta);
      const onSdk = await call(sdk, name, args, meta);
      assert.match(onSdk.type, /^text\/event-stream/, 'the SDK path answers on a stream');
      if (!meta) assert.match(onFast.type, /^application\/json/, `${name}: the fast path answered`);
      assert.deepEqual(outcome(onFast), outcome(onSdk), name);
    }
  });

  test('every refusal answers as it does on the SDK path', async () => {
    const readOnly = (await signIn(g.registry.url, ALICE, { scope: 'mcp:read' })).tokens.access_token;
    const cases: { what: string; token: string; name: string; args?: Record<string, unknown>; expect: (o: ReturnType<typeof outcome>) => void }[] = [
      { what: 'unknown tool', token: g.aliceToken, name: 'old__nope', expect: (o) => assert.equal((o.answer as any).error.code, -32602) },
      { what: 'tool filtered out', token: g.aliceToken, name: 'old__write_note', args: { text: 'x' }, expect: (o) => assert.equal((o.answer as any).error.data.reason, 'tool_not_allowed') },
      { what: 'policy denies the caller', token: g.bobToken, name: 'old__whoami', expect: (o) => assert.equal((o.answer as any).error.data.reason, 'policy_denied') },
      { what: 'insufficient scope', token: readOnly, name: 'old__echo', args: { message: 'x' }, expect: (o) => assert.equal(o.status, 403) },
      { what: 'per-user identity not connected', token: g.aliceToken, name: 'mine__echo', args: { message: 'x' }, expect: (o) => assert.equal((o.answer as any).result.isError, true) },
      { what: 'upstream down', token: g.aliceToken, name: 'down__echo', args: { message: 'x' }, expect: (o) => assert.equal((o.answer as any).error.data.reason, 'upstream_unreachable') },
    ];
    const sessions = new Map<string, { fast: Session; sdk: Session }>();
    for (const c of cases) {
      if (!sessions.has(c.token)) {
        const pair = { fast: await open(c.token), sdk: await viaSdk(c.token) };
        // Warm: the upstream sessions exist, so the fast path is tried.
        for (const s of Object.values(pair)) for (const up of ['old', 'down']) await call(s, `${up}__echo`, { message: 'warm' });
        sessions.set(c.token, pair);
      }
    }
    await g.upstreams.down!.close();
    for (const c of cases) {
      const { fast, sdk } = sessions.get(c.token)!;
      const onFast = await call(fast, c.name, c.args);
      const fastType = onFast.type;
      const a = outcome(onFast);
      const b = outcome(await call(sdk, c.name, c.args));
      c.expect(a);
      if (c.what === 'upstream down') {
        // The fast path forwards the call itself and answers an upstream failure as the raw endpoint does (502);
        // the SDK path answers it as an MCP server answers a failed request, in a 200 (docs/gateways.md "Failures").
        assert.match(fastType, /^application\/json/, 'the fast path answered it');
        assert.deepEqual([a.status, b.status], [502, 200], c.what);
        assert.deepEqual({ ...a, status: 0 }, { ...b, status: 0 }, c.what);
      } else assert.deepEqual(a, b, c.what);
    }
  });

  test("the upstream's elicitation mid-call reaches the client on the call's stream, and its answer the upstream", async () => {
    const s = await open(g.aliceToken, { elicitation: { form: {} } });
    await call(s, 'old__echo', { message: 'warm' });
    const id = nextId++;
    const res = await fetch(hub, {
      method: 'POST',
      headers: { ...LEGACY, authorization: `Bearer ${s.token}`, 'mcp-session-id': s.sid },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'old__confirm', arguments: { action: 'launch' } } }),
    });
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const until = sseReader(res);
    const elicit = await until((text) => parseSse(text).find((e) => e.message.method === 'elicitation/create')?.message);
    assert.equal(elicit.params.message, 'Really launch?');
    const reply = await send(s, { jsonrpc: '2.0', id: elicit.id, result: { action: 'accept', content: { ok: true } } });
    assert.equal(reply.status, 202);
    const answer = await until((text) => parseSse(text).find((e) => e.message.id === id)?.message);
    assert.deepEqual(answer.result.content, [{ type: 'text', text: 'confirmed launch' }]);
    // An answer to a request nobody sent goes to the SDK path, which has no use for it either.
    assert.notEqual((await send(s, { jsonrpc: '2.0', id: elicit.id, result: { action: 'accept' } })).status, 500);
  });

  test("a stream the upstream made SSE can be resumed with Last-Event-ID: the rest of it is replayed", async () => {
    const s = await open(g.aliceToken);
    await call(s, 'old__echo', { message: 'warm' });
    const id = nextId;
    const first = await call(s, 'old__count', { n: 3 }, { progressToken: 'r1' });
    assert.match(first.type, /^text\/event-stream/);
    assert.equal(first.events.length, 4);
    assert.ok(first.events.every((e) => e.id !== undefined), 'every event has an id');
    const ctl = new AbortController();
    const res = await fetch(hub, { headers: { accept: 'text/event-stream', authorization: `Bearer ${s.token}`, 'mcp-session-id': s.sid, 'mcp-protocol-version': '2025-11-25', 'last-event-id': first.events[0]!.id! }, signal: ctl.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!parseSse(text).some((e) => e.message.id === id)) text += (await reader.read()).value ?? '';
    ctl.abort();
    assert.deepEqual(parseSse(text), first.events.slice(1));
  });
});
