import assert from 'node:assert/strict';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { encodeClientCredentials } from '../../server/gateway/client-credentials.ts';
import { ALICE } from '../helpers/fixture.ts';
import { connect, type MergedGateway, rpcError, startMergedGateway } from '../helpers/merged-gateway.ts';
import { signIn } from '../helpers/oauth.ts';
import { isToolsCall, startWiretap, type Wiretap } from '../helpers/wiretap.ts';

// Bad input is answered as bad input (issue 9, item 9): a 4xx in the
// protocol's own form, never a 500 and never a hang. And (item 10) where a
// tool filter, a tool policy or a scope guards the raw endpoint, a 2026-07-28
// request whose Mcp-Method / Mcp-Name headers disagree with its body is
// refused as the revision says (400, -32020 HeaderMismatch) before anything
// is forwarded: an upstream that routes by the body never runs what the
// headers hid.

const ACCEPT = 'application/json, text/event-stream';
const PV = '2026-07-28';
const envelope = { 'io.modelcontextprotocol/protocolVersion': PV, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'hostile', version: '1' } };
const HEADER_MISMATCH = -32020;

/**
 * An upstream that routes by the body and checks no header (many do): it
 * runs whatever tool the body names, and says which.
 */
async function startBodyRoutedUpstream(): Promise<{ url: string; ran: string[]; close(): Promise<void> }> {
  const ran: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let message: { id?: unknown; method?: string; params?: { name?: string } };
      try {
        message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      let result: unknown = {};
      if (message.method === 'tools/list') result = { tools: ['allowed_tool', 'denied_tool', 'policy_tool'].map((name) => ({ name, inputSchema: { type: 'object' } })) };
      if (message.method === 'tools/call') {
        ran.push(String(message.params?.name));
        result = { content: [{ type: 'text', text: `ran ${String(message.params?.name)}` }] };
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, result }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    ran,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let g: MergedGateway;
let base: string;
let naive: Awaited<ReturnType<typeof startBodyRoutedUpstream>>;
let tap: Wiretap;

before(async () => {
  naive = await startBodyRoutedUpstream();
  tap = await startWiretap();
  const naiveUrl = tap.urlFor(naive.url);
  g = await startMergedGateway(
    [
      { id: 'old', eras: 'legacy' },
      { id: 'new', eras: 'modern' },
    ],
    (config, upstreams) => {
      config.upstreams.push(
        {
          id: 'fields',
          url: upstreams.new!.url,
          credential: { type: 'fields', fields: [{ name: 'api_key', label: 'API key', secret: true }], inject: { header: 'Authorization', value: 'Bearer {api_key}' } },
        },
        { id: 'naive', url: naiveUrl, credential: { type: 'none' } },
      );
      config.gateways.push(
        {
          id: 'hub',
          visibility: 'private',
          servers: [
            { upstream: 'old', identity: 'shared', shared_identity: 'old-svc' },
            { upstream: 'new', identity: 'shared', shared_identity: 'new-svc' },
            { upstream: 'new', name: 'mine', identity: 'per_user' },
            { upstream: 'fields', name: 'keys', identity: 'per_user', storage: 'client' },
          ],
        },
        {
          id: 'strict',
          visibility: 'private',
          servers: [
            {
              upstream: 'naive',
              name: 'guarded',
              identity: 'shared',
              tools: { deny: ['denied_tool'] },
              policies: [{ action: 'deny', tools: ['policy_tool'], reason: 'nobody may call policy_tool' }],
            },
          ],
        },
      );
    },
  );
  base = g.registry.url;
});
after(async () => {
  await g?.close();
  await tap?.close();
  await naive?.close();
});

/** A POST through the gateway with whatever headers and body a hostile client chooses. */
async function post(path: string, body: string, headers: Record<string, string> = {}, token = g.aliceToken) {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, accept: ACCEPT, 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** A 2025-11-25 session on `path` (the initialize handshake): its id. */
async function session(path: string): Promise<string> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${g.aliceToken}`, accept: ACCEPT, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'hostile', version: '1' } } }),
  });
  await res.text();
  const id = res.headers.get('mcp-session-id');
  assert.ok(id, `a session on ${path}`);
  return id;
}

describe('JSON nested 10,000 deep', () => {
  const DEPTH = 10_000;
  const bodies = {
    array: `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`,
    // A real request whose arguments nest deep: what reaches validation and forwarding.
    arguments: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'new__echo', arguments: { message: 'x', deep: '@' }, _meta: envelope } }).replace('"@"', `${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}`),
  };

  for (const [endpoint, path] of [
    ['the merged endpoint', '/mcp/hub'],
    ['a raw endpoint that reads the body (tool filter)', '/mcp/strict/guarded'],
  ] as const) {
    for (const era of ['2026-07-28', '2025-11-25'] as const) {
      test(`${endpoint}, ${era}: a 400 JSON-RPC parse error, not a 500, and the registry goes on serving`, async () => {
        // (The raw endpoint forwards a 2025 session's requests as they come: none is needed to reach it.)
        const sid = era === '2025-11-25' && path === '/mcp/hub' ? await session(path) : undefined;
        const headers: Record<string, string> = era === '2026-07-28' ? { 'mcp-protocol-version': PV, 'mcp-method': 'tools/call', 'mcp-name': 'new__echo' } : { 'mcp-protocol-version': era, ...(sid && { 'mcp-session-id': sid }) };
        for (const [shape, body] of Object.entries(bodies)) {
          const res = await post(path, body, headers);
          assert.equal(res.status, 400, `${shape}: ${res.text.slice(0, 200)}`);
          assert.equal(res.json?.jsonrpc, '2.0', shape);
          assert.equal(res.json.error.code, -32700, shape);
          assert.match(res.json.error.message, /nest/, shape);
          assert.equal(res.json.error.data.reason, 'body_too_deep', shape);
        }
        const { client } = await connect(`${base}/mcp/hub`, era, { token: g.aliceToken });
        try {
          assert.ok((await client.listTools()).tools.length > 0, 'still serving');
        } finally {
          await client.close();
        }
      });
    }
  }
});

test('arguments nested 100 deep, within the bound, are served as usual', async () => {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'new__echo', arguments: { message: 'deep enough', deep: '@' }, _meta: envelope } }).replace('"@"', `${'['.repeat(100)}${']'.repeat(100)}`);
  const res = await post('/mcp/hub', body, { 'mcp-protocol-version': PV, 'mcp-method': 'tools/call', 'mcp-name': 'new__echo' });
  assert.equal(res.status, 200, res.text);
  assert.match(res.text, /deep enough/);
});

describe('a body that is not JSON', () => {
  test('wherever the gateway reads the body it answers 400 -32700 itself, and forwards nothing', async () => {
    for (const path of ['/mcp/hub', '/mcp/strict/guarded']) {
      const before = tap.seen.length;
      const res = await post(path, '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "denied_tool"', { 'mcp-protocol-version': PV, 'mcp-method': 'tools/call', 'mcp-name': 'allowed_tool' });
      assert.equal(res.status, 400, `${path}: ${res.text}`);
      assert.equal(res.json.error.code, -32700, path);
      assert.equal(res.json.error.data.reason, 'parse_error', path);
      assert.equal(tap.seen.length, before, `${path}: nothing forwarded`);
    }
  });
});

describe('X-Keygate-Credentials with a value no HTTP header can carry', () => {
  const secret = 'sk-€-do-not-echo-7f3a';
  const header = { 'x-keygate-credentials': encodeClientCredentials({ keys: { api_key: secret } }) };

  test('the raw endpoint answers 400 with a JSON-RPC error that names the field, never the value; nothing reaches the upstream', async () => {
    const before = g.upstreams.new!.requests.length;
    const res = await post('/mcp/hub/keys', JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: envelope } }), {
      ...header,
      'mcp-protocol-version': PV,
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.id, 3);
    assert.equal(res.json.error.data.reason, 'bad_credential');
    assert.match(res.json.error.message, /api_key/);
    assert.ok(!res.text.includes(secret) && !res.text.includes('€'), 'the secret is not echoed');
    assert.equal(g.upstreams.new!.requests.length, before, 'the upstream saw nothing');
  });

  for (const era of ['2026-07-28', '2025-11-25'] as const) {
    test(`${era}: the merged endpoint refuses the call as the raw endpoint does (400, naming the field, never the value); the other servers keep working`, async () => {
      const { client } = await connect(`${base}/mcp/hub`, era, { token: g.aliceToken, headers: header });
      try {
        await assert.rejects(client.callTool({ name: 'keys__echo', arguments: { message: 'x' } }), (thrown: unknown) => {
          // As on the raw endpoint: 400 (a 2025 session's client reports the HTTP error, holding the JSON-RPC error).
          const err = rpcError(thrown);
          if (era === '2025-11-25') assert.equal(err.status, 400);
          assert.equal(err.data?.reason, 'bad_credential');
          assert.match(err.message, /api_key/);
          assert.ok(!err.message.includes(secret) && !err.message.includes('€'), 'the secret is not echoed');
          return true;
        });
        const answer = await client.callTool({ name: 'new__echo', arguments: { message: 'still here' } });
        assert.equal((answer.content as { text: string }[])[0]!.text, 'still here');
      } finally {
        await client.close();
      }
      assert.ok(!g.registry.log.lines.join('\n').includes(secret), 'nor is it logged');
    });
  }
});

describe('an upstream tool whose name is not ASCII', () => {
  test('2026-07-28 fast path: the call reaches it with Mcp-Name Base64-encoded as the revision says, and answers', async () => {
    const name = '天気 ☀';
    g.upstreams.new!.addTool(name);
    const { client } = await connect(`${base}/mcp/hub`, '2026-07-28', { token: g.aliceToken });
    try {
      const exposed = (await client.listTools()).tools.find((t) => t.description === `Added at run time: ${name}.` && t.name.startsWith('new__'))?.name;
      assert.ok(exposed && /^[\x21-\x7e]+$/.test(exposed), `an ASCII name on the merged endpoint: ${exposed}`);
      const answer = await client.callTool({ name: exposed, arguments: {} });
      assert.equal((answer.content as { text: string }[])[0]!.text, name);
    } finally {
      await client.close();
    }
    const call = g.upstreams.new!.requests.findLast((r) => r.rpc === 'tools/call' && r.name === name)!;
    assert.equal(call.headers['mcp-name'], `=?base64?${Buffer.from(name).toString('base64')}?=`);
  });

  test('on the raw endpoint the encoded Mcp-Name is forwarded as sent, and the audit records the name it stands for', async () => {
    const name = '天気 ☀';
    const { client } = await connect(`${base}/mcp/hub/new`, '2026-07-28', { token: g.aliceToken });
    try {
      const answer = await client.callTool({ name, arguments: {} });
      assert.equal((answer.content as { text: string }[])[0]!.text, name);
    } finally {
      await client.close();
    }
    const audit = await fetch(`${base}/api/v1/me/audit?limit=1000`, { headers: { authorization: `Bearer ${g.aliceToken}` } });
    const entries = ((await audit.json()) as { entries: { server?: string; method?: string; name?: string }[] }).entries;
    const names = entries.filter((e) => e.server === 'new' && e.method === 'tools/call').map((e) => e.name);
    assert.ok(names.includes(name), JSON.stringify(names));
    assert.ok(!names.some((n) => n?.startsWith('=?base64?')), 'never the encoded form');
  });
});

describe('an early 413 on a raw per-user endpoint', () => {
  test('the connection is closed with it, so a keep-alive client\'s next request does not stall on the unread body', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (body: Buffer | string) =>
      new Promise<{ status: number; connection: string | undefined; text: string }>((resolve, reject) => {
        const req = request(`${base}/mcp/hub/mine`, { method: 'POST', agent, headers: { authorization: `Bearer ${g.aliceToken}`, accept: ACCEPT, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, text: Buffer.concat(chunks).toString('utf8') }));
        });
        // The server may answer and close before it has read the whole body: that is the point.
        req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
        req.end(body);
      });
    /** A hang detector, not a timing assertion: the bug stalls the next request for a minute. */
    const within = async <T>(p: Promise<T>, what: string): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not complete within 10 s: the connection held an unread body`)), 10_000)));
      try {
        return await Promise.race([p, hang]);
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      const big = await within(send(Buffer.alloc(5 * 1024 * 1024, 0x20)), 'the oversized request');
      assert.equal(big.status, 413);
      assert.equal(big.connection, 'close');
      assert.equal(JSON.parse(big.text).error.data.reason, 'body_too_large');
      const next = await within(send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope } })), 'the next request on the same agent');
      assert.notEqual(next.status, 413);
      assert.ok(next.status < 500, `${next.status} ${next.text}`);
    } finally {
      agent.destroy();
    }
  });
});

describe('Mcp-Method / Mcp-Name must agree with the body wherever a filter, policy or scope applies (2026-07-28)', () => {
  const call = (name: string, id = 1) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, _meta: envelope } });
  const modern = (method: string, name?: string) => ({ 'mcp-protocol-version': PV, 'mcp-method': method, ...(name !== undefined && { 'mcp-name': name }) });
  const tapped = () => tap.seen.filter(isToolsCall).length;

  test('headers naming an allowed tool over a body calling a filtered or policy-denied one: 400 -32020 HeaderMismatch, and the upstream sees nothing', async () => {
    for (const hidden of ['denied_tool', 'policy_tool']) {
      const before = tapped();
      const res = await post('/mcp/strict/guarded', call(hidden, 11), modern('tools/call', 'allowed_tool'));
      assert.equal(res.status, 400, `${hidden}: ${res.text}`);
      assert.equal(res.json.id, 11);
      assert.equal(res.json.error.code, HEADER_MISMATCH);
      assert.match(res.json.error.message, /Mcp-Name/);
      assert.equal(tapped(), before, `${hidden}: nothing forwarded`);
    }
    assert.deepEqual(naive.ran, []);
  });

  test('the other mismatches are refused the same way: method, a missing Mcp-Name, an Mcp-Name encoded wrongly', async () => {
    const cases: [string, string, Record<string, string>][] = [
      ['Mcp-Method tools/list over a tools/call', call('denied_tool'), modern('tools/list')],
      ['no Mcp-Name over a tools/call', call('denied_tool'), modern('tools/call')],
      ['Mcp-Name Base64 of the allowed tool over the denied one', call('denied_tool'), modern('tools/call', `=?base64?${Buffer.from('allowed_tool').toString('base64')}?=`)],
      ['Mcp-Name with a broken Base64 sentinel', call('denied_tool'), modern('tools/call', '=?base64?%%%?=')],
    ];
    for (const [what, body, headers] of cases) {
      const before = tapped();
      const res = await post('/mcp/strict/guarded', body, headers);
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.equal(res.json.error.code, HEADER_MISMATCH, what);
      assert.equal(tapped(), before, `${what}: nothing forwarded`);
    }
    assert.deepEqual(naive.ran, []);
  });

  test('a caller without mcp:write cannot pass a tools/call off as a tools/list', async () => {
    const reader = (await signIn(base, ALICE, { scope: 'mcp:read' })).tokens.access_token;
    const before = tapped();
    const res = await post('/mcp/strict/guarded', call('allowed_tool'), modern('tools/list'), reader);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, HEADER_MISMATCH);
    assert.equal(tapped(), before);
    assert.deepEqual(naive.ran, []);
  });

  test('matching headers pass: an allowed tool runs, with its name encoded or not; a denied one is refused as before', async () => {
    assert.equal((await post('/mcp/strict/guarded', call('allowed_tool'), modern('tools/call', 'allowed_tool'))).json.result.content[0].text, 'ran allowed_tool');
    assert.equal((await post('/mcp/strict/guarded', call('allowed_tool'), modern('tools/call', `=?base64?${Buffer.from('allowed_tool').toString('base64')}?=`))).json.result.content[0].text, 'ran allowed_tool');
    const denied = await post('/mcp/strict/guarded', call('denied_tool'), modern('tools/call', 'denied_tool'));
    assert.equal(denied.json.error.data.reason, 'tool_not_allowed');
    assert.deepEqual(naive.ran, ['allowed_tool', 'allowed_tool']);
    naive.ran.length = 0;
  });

  test('a 2025 request is judged by its body, and its unchecked Mcp-Method / Mcp-Name headers do not travel on to the upstream', async () => {
    const res = await post('/mcp/strict/guarded', JSON.stringify({ jsonrpc: '2.0', id: 21, method: 'tools/call', params: { name: 'allowed_tool', arguments: {} } }), {
      'mcp-protocol-version': '2025-11-25',
      'mcp-method': 'tools/call',
      'mcp-name': 'denied_tool',
    });
    assert.equal(res.json.result.content[0].text, 'ran allowed_tool');
    const seen = tap.seen.filter(isToolsCall).at(-1)!;
    assert.equal(seen.headers['mcp-name'], undefined, 'an upstream routing by Mcp-Name would have run denied_tool');
    assert.equal(seen.headers['mcp-method'], undefined);
    naive.ran.length = 0;
  });

  test('the merged endpoint refuses a mismatch too', async () => {
    const before = g.upstreams.new!.requests.length;
    const res = await post('/mcp/hub', call('new__write_note'), modern('tools/call', 'new__echo'));
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, HEADER_MISMATCH);
    assert.equal(g.upstreams.new!.requests.length, before);
  });
});
