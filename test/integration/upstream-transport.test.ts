import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';

// One upstream transport (server/gateway/upstream-transport.ts) sends every
// request to an upstream, whichever path the call took: the raw endpoint in
// either era, the merged endpoint's 2026-07-28 fast path, its 2025 session
// fast path and its SDK path. So an upstream that refuses Keygate's
// credential, or cannot be reached, reads the same to the client on every
// path (the same JSON-RPC code, message and data) and with the raw
// endpoint's status (502) wherever the gateway forwards the call itself; the
// merged endpoint's SDK path answers it in a 200, as an MCP server answers a
// failed request. The upstream's own challenge never reaches the client, nor
// what its socket said.

const MODERN = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28' };
const LEGACY = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25' };
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'test', version: '1' } };

let g: MergedGateway;
/** While true, the upstream answers every request 401 with its own challenge. */
let refusing = false;
let nextId = 1;

before(async () => {
  g = await startMergedGateway([{ id: 'flaky', eras: 'both', accept: (value) => !refusing && value !== undefined && value.startsWith('Bearer ') }, { id: 'other', eras: 'both' }], (config) => {
    config.gateways.push({
      id: 'hub',
      visibility: 'private',
      servers: [
        { upstream: 'flaky', identity: 'shared', shared_identity: 'flaky-svc' },
        { upstream: 'other', identity: 'shared', shared_identity: 'other-svc' },
      ],
    });
  });
});
after(() => g.close().catch(() => undefined));

interface Answer {
  status: number;
  challenge: string | null;
  message: Record<string, any>;
}

/** One JSON-RPC request; the response's message (JSON, or the last message of an SSE stream). */
async function rpc(url: string, headers: Record<string, string>, message: Record<string, unknown>): Promise<Answer & { session: string | null }> {
  const res = await fetch(url, { method: 'POST', headers: { ...headers, authorization: `Bearer ${g.aliceToken}` }, body: JSON.stringify(message) });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  const messages = type.startsWith('text/event-stream')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data:') && l.slice(5).trim() !== '')
        .map((l) => JSON.parse(l.slice(5)))
    : [JSON.parse(text)];
  return { status: res.status, challenge: res.headers.get('www-authenticate'), message: messages.at(-1), session: res.headers.get('mcp-session-id') };
}

async function session(url: string): Promise<Record<string, string>> {
  const opened = await rpc(url, LEGACY, { jsonrpc: '2.0', id: nextId++, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'test', version: '1' } } });
  assert.ok(opened.session, `a session from ${url}`);
  const headers = { ...LEGACY, 'mcp-session-id': opened.session };
  await fetch(url, { method: 'POST', headers: { ...headers, authorization: `Bearer ${g.aliceToken}` }, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
  return headers;
}

/** Each path a call to the upstream can take, ready to call (sessions open, pooled connections warm). */
async function paths(): Promise<{ path: string; endpoint: 'raw' | 'merged'; call: () => Promise<Answer> }[]> {
  const raw = `${g.registry.url}/mcp/hub/flaky`;
  const hub = `${g.registry.url}/mcp/hub`;
  const rawSession = await session(raw);
  const hubSession = await session(hub);
  const list = [
    {
      path: 'raw, 2026-07-28',
      endpoint: 'raw' as const,
      call: () => rpc(raw, { ...MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: META } }),
    },
    { path: 'raw, 2025-11-25 session', endpoint: 'raw' as const, call: () => rpc(raw, rawSession, { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }) },
    {
      path: 'merged, 2026-07-28 fast path',
      endpoint: 'merged' as const,
      call: () => rpc(hub, { ...MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'flaky__echo' }, { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'flaky__echo', arguments: { message: 'x' }, _meta: META } }),
    },
    { path: 'merged, 2025 session fast path', endpoint: 'merged' as const, call: () => rpc(hub, hubSession, { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'flaky__echo', arguments: { message: 'x' } } }) },
    { path: 'merged, SDK path (prompts/get)', endpoint: 'merged' as const, call: () => rpc(hub, hubSession, { jsonrpc: '2.0', id: nextId++, method: 'prompts/get', params: { name: 'flaky__greet', arguments: { who: 'x' } } }) },
  ];
  for (const p of list) {
    const warm = await p.call();
    assert.equal(warm.status, 200, `${p.path}: ${JSON.stringify(warm.message)}`);
    assert.ok(warm.message.result, `${p.path} reaches the upstream: ${JSON.stringify(warm.message)}`);
  }
  return list;
}

describe('an upstream failure reads the same on every path', () => {
  test('a refused credential: the upstream step, the assignment an admin must check, never the upstream challenge', async () => {
    const list = await paths();
    refusing = true;
    try {
      const answers = [];
      for (const p of list) {
        const a = await p.call();
        assert.equal(a.status, p.path.includes('SDK path') ? 200 : 502, p.path);
        assert.equal(a.challenge, null, `${p.path}: the upstream's challenge is not passed on`);
        answers.push({ path: p.path, error: a.message.error });
      }
      const first = answers[0]!.error;
      assert.equal(first.code, -32011);
      assert.deepEqual(first.data, { step: 'upstream', reason: 'upstream_rejected_credential' });
      assert.match(first.message, /^upstream "flaky" refused the credential Keygate sent \(HTTP 401\); an admin must check the identity assigned to \/mcp\/hub\/flaky$/);
      for (const a of answers) assert.deepEqual(a.error, first, a.path);
    } finally {
      refusing = false;
    }
  });

  test('an upstream that cannot be reached: the same error everywhere, without what the socket said', async () => {
    const list = await paths();
    await g.upstreams.flaky!.close();
    const answers = [];
    for (const p of list) {
      const a = await p.call();
      assert.equal(a.status, p.path.includes('SDK path') ? 200 : 502, p.path);
      answers.push({ path: p.path, error: a.message.error });
    }
    const first = answers[0]!.error;
    assert.equal(first.code, -32010);
    assert.deepEqual(first.data, { step: 'upstream', reason: 'upstream_unreachable' });
    assert.doesNotMatch(first.message, /ECONN|EPIPE|socket/);
    for (const a of answers) assert.deepEqual(a.error, first, a.path);
    assert.match(g.registry.log.lines.join('\n'), /upstream flaky unreachable: ECONN/, 'the log says what the socket said');
  });
});
