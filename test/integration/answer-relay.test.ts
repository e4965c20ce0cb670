import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { auditEntries } from '../helpers/merged-gateway.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn } from '../helpers/oauth.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

// Issue 10, the raw endpoint's JSON answers: an upstream's application/json
// answer (one JSON-RPC message) reaches the client whole, in one piece with
// its Content-Length, however the upstream chunked it; a large one streams as
// it arrives; one the upstream cuts part-way never reaches the client torn:
// the client gets a JSON-RPC error for its call naming the upstream step, as
// for a cut SSE answer. An SSE answer cut after its response came is ended
// cleanly, with nothing added; cut before it (after a server-to-client
// request, say), the error is its last event. The upstream is a plain
// node:http server written here, so each way of answering is exactly what the
// test says.

const KEY = `tap-${randomBytes(12).toString('hex')}`;
/** Above the registry's limit for gathering a JSON answer whole (64 KiB). */
const BIG = 600 * 1024;
let upstream: Server;
let registry: TestRegistry;
let token: string;
/** What the upstream sent, per request id: the exact bytes the client must get (or not get). */
const sent = new Map<number, string>();
/** The request the upstream got for the tool `headers`. */
let seenByUpstream: { host: string | undefined; rawHeaders: string[]; body: string } | undefined;

/** An SSE answer: a progress notification, then (by the tool's name) the response or a server-to-client request, then the connection is cut. */
function sse(res: ServerResponse, call: { id: number; params: { name: string } }): void {
  const event = (message: object) => `event: message\ndata: ${JSON.stringify(message)}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(event({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p', progress: 1 } }));
  const last =
    call.params.name === 'sse-answered-cut'
      ? { jsonrpc: '2.0', id: call.id, result: { content: [{ type: 'text', text: 'the answer, then the cut' }] } }
      : { jsonrpc: '2.0', id: 'ask-1', method: 'elicitation/create', params: { message: 'a question the answer never follows' } };
  sent.set(call.id, JSON.stringify(last));
  res.write(event(last));
  setTimeout(() => res.socket?.destroy(), 20);
}

before(async () => {
  upstream = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const call = JSON.parse(text) as { id: number; params: { name: string } };
      if (call.params.name.startsWith('sse-')) return void sse(res, call);
      if (call.params.name === 'headers') {
        // Headers as a careless or hostile upstream sends them: mixed case, some twice, some that are not the client's business.
        seenByUpstream = { host: req.headers.host, rawHeaders: req.rawHeaders, body: text };
        const answer = JSON.stringify({ jsonrpc: '2.0', id: call.id, result: { content: [{ type: 'text', text: 'headers' }] } });
        sent.set(call.id, answer);
        return void res.writeHead(200, [
          'Content-Type', 'application/json', 'content-type', 'text/html',
          'Cache-Control', 'no-store', 'cache-control', 'private',
          'Retry-After', '1', 'Retry-After', '99',
          'X-Upstream-Secret', 'upstream-internal-value', 'Set-Cookie', 'upstream-session=abc',
          'Mcp-Session-Id', 'upstream-session-id', 'Content-Length', String(Buffer.byteLength(answer)),
        ]).end(answer);
      }
      const payload = call.params.name === 'big' ? 'x'.repeat(BIG) : `answer of ${call.params.name}`;
      const answer = JSON.stringify({ jsonrpc: '2.0', id: call.id, result: { content: [{ type: 'text', text: payload }] } });
      sent.set(call.id, answer);
      // No Content-Length: chunked, written in three parts with pauses between them.
      res.writeHead(200, { 'content-type': 'application/json' });
      const third = Math.ceil(answer.length / 3);
      res.write(answer.slice(0, third));
      setTimeout(() => {
        if (call.params.name === 'cut') return void res.socket?.destroy(); // half an answer, then the connection is gone
        res.write(answer.slice(third, 2 * third));
        setTimeout(() => res.end(answer.slice(2 * third)), 20);
      }, 20);
    });
  });
  await new Promise<void>((ok) => upstream.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
  registry = await startRegistry(
    {
      oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
      upstreams: [
        { id: 'tap', url, credential: { type: 'bearer' } },
        // The same upstream, its credential in an Mcp-* header: one a client may send too.
        { id: 'keyed', url, credential: { type: 'header', name: 'Mcp-Upstream-Key', value_env: 'KEY' } },
      ],
      identities: [{ id: 'tap-svc', upstream: 'tap', token_env: 'KEY' }],
      gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'tap', identity: 'shared', shared_identity: 'tap-svc' }, { upstream: 'keyed', identity: 'shared' }] }],
    },
    { ALICE_PASSWORD: ALICE.password, KEY },
  );
  token = (await signIn(registry.url, ALICE, { resource: `${registry.url}/mcp/team` })).tokens.access_token;
});
after(async () => {
  await registry?.close();
  upstream?.closeAllConnections();
  await new Promise((ok) => upstream?.close(ok));
});

/** A 2026-07-28 tools/call through /mcp/team/{server} (tap unless said), over node:http (to see the framing): status, headers, the body's bytes. */
function call(tool: string, id: number, server = 'tap', extra: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; raw: string[]; body: string }> {
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } });
  return new Promise((resolve, reject) => {
    const req = request(`${registry.url}/mcp/team/${server}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool, ...extra },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, raw: res.rawHeaders, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a JSON answer on the raw endpoint', () => {
  test('arrives whole, in one piece with its Content-Length, exactly as the upstream wrote it in three chunks', async () => {
    const r = await call('split', 101);
    assert.equal(r.status, 200);
    assert.equal(r.body, sent.get(101));
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(sent.get(101)!)));
    assert.equal(r.headers['transfer-encoding'], undefined);
    assert.equal(r.headers['content-type'], 'application/json');
  });

  test('larger than the registry gathers whole, it streams as it arrives, intact', async () => {
    const r = await call('big', 102);
    assert.equal(r.status, 200);
    assert.equal(r.body.length, sent.get(102)!.length);
    assert.equal(r.body, sent.get(102));
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.headers['content-length'], undefined);
  });

  test('cut by the upstream part-way: the client gets a JSON-RPC error for its call naming the upstream step, never the torn answer; the audit says so', async () => {
    const r = await call('cut', 103);
    assert.equal(r.status, 502);
    const message = JSON.parse(r.body) as { id: number; error: { code: number; data: { step: string; reason: string } }; result?: unknown };
    assert.equal(message.id, 103);
    assert.equal(message.result, undefined);
    assert.equal(message.error.data.step, 'upstream');
    assert.equal(message.error.data.reason, 'upstream_stream_dropped');
    assert.ok(!r.body.includes('answer of cut'), 'no part of the torn answer is passed on');
    let outcome: string | undefined;
    for (let i = 0; i < 100 && outcome !== 'upstream_stream_dropped'; i++) {
      outcome = (await auditEntries(registry)).filter((e) => e.name === 'cut').at(-1)?.outcome;
      if (outcome !== 'upstream_stream_dropped') await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.equal(outcome, 'upstream_stream_dropped');
  });

  test("its headers: each single-valued one once (the upstream's first), list-valued ones all, nothing else of the upstream's; the upstream got Host, one Content-Length and Keygate's credential", async () => {
    const r = await call('headers', 105);
    assert.equal(r.status, 200);
    assert.equal(r.body, sent.get(105));
    /** Every value the client got for `name`, line by line (a node client would keep only the first of some). */
    const lines = (name: string) => r.raw.filter((_, i) => i % 2 === 1 && r.raw[i - 1]!.toLowerCase() === name);
    assert.deepEqual(lines('content-type'), ['application/json']);
    assert.deepEqual(lines('retry-after'), ['1']);
    assert.deepEqual(lines('content-length'), [String(Buffer.byteLength(sent.get(105)!))]);
    assert.equal(r.headers['cache-control'], 'no-store, private');
    assert.equal(r.headers['x-upstream-secret'], undefined);
    assert.equal(r.headers['set-cookie'], undefined);
    // A 2026-07-28 call has no session: the upstream's id is wrapped, never passed on as it is.
    assert.notEqual(r.headers['mcp-session-id'], 'upstream-session-id');
    const { host, rawHeaders, body } = seenByUpstream!;
    assert.equal(host, `127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    const names = rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    assert.equal(names.filter((n) => n === 'host').length, 1);
    assert.equal(names.filter((n) => n === 'content-length').length, 1);
    assert.equal(rawHeaders[rawHeaders.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === 'content-length') + 1], String(Buffer.byteLength(body)));
    assert.equal(rawHeaders[rawHeaders.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === 'authorization') + 1], `Bearer ${KEY}`);
    assert.ok(!rawHeaders.some((v) => v.includes(token)), 'the caller\'s token never reaches the upstream');
  });

  test("a client's header of the name the upstream credential is sent in never reaches the upstream: the credential's value alone does", async () => {
    const r = await call('headers', 106, 'keyed', { 'Mcp-Upstream-Key': 'forged-by-the-client' });
    assert.equal(r.status, 200);
    const { rawHeaders } = seenByUpstream!;
    const keys = rawHeaders.filter((_, i) => i % 2 === 1 && rawHeaders[i - 1]!.toLowerCase() === 'mcp-upstream-key');
    assert.deepEqual(keys, [KEY]);
    assert.ok(!rawHeaders.some((v) => v.includes('forged-by-the-client')));
  });

  test('the next call after a cut one goes through (the gateway keeps serving)', async () => {
    const r = await call('after-cut', 104);
    assert.equal(r.status, 200);
    assert.equal(r.body, sent.get(104));
  });
});

describe('an SSE answer on the raw endpoint, cut by the upstream', () => {
  /** The JSON-RPC messages of an SSE body. */
  const messages = (body: string) => body.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)) as { id?: unknown; method?: string; result?: unknown; error?: { data: { reason: string } } });

  test('after its response came: the client has the response and nothing added, and the stream ends cleanly', async () => {
    const r = await call('sse-answered-cut', 201);
    assert.equal(r.status, 200);
    const got = messages(r.body);
    assert.deepEqual(got.map((m) => m.method ?? m.id), ['notifications/progress', 201]);
    assert.deepEqual(got[1], JSON.parse(sent.get(201)!));
  });

  test('before its response (a server-to-client request was the last event): a JSON-RPC error for the call is its last event', async () => {
    const r = await call('sse-ask-cut', 202);
    assert.equal(r.status, 200);
    const got = messages(r.body);
    assert.deepEqual(got.map((m) => m.method ?? m.id), ['notifications/progress', 'elicitation/create', 202]);
    assert.equal(got[2]!.error?.data.reason, 'upstream_stream_dropped');
    assert.equal(got[2]!.result, undefined);
  });
});
