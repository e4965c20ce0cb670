import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Upstream } from '../../server/catalog/catalog.ts';
import { requestUpstream } from '../../server/gateway/upstream-transport.ts';
import { UpstreamConnections } from '../../server/net/upstream-connections.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

// The gateway's pooled connections to an upstream (server/catalog/catalog.ts).
// A Node upstream accepts one new connection per turn of its event loop, so
// under load a connection the gateway opens waits in its accept queue, and
// the call on it waits too, for seconds (docs/performance.md, "Sign-in under
// load"). The pool must therefore not close connections the load will want
// again a moment later: a second burst of calls, no larger than the first,
// goes out on the connections the first one opened. And an idle connection is
// closed by the gateway, before the usual 5 s after which servers close idle
// connections, also when the answer announced no Keep-Alive timeout (an SSE
// answer): a call is never written to a connection the upstream is closing,
// which the upstream answers with a reset (a 502 for the caller).

const BURST = 100;
const MODERN = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'add' };
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'test', version: '1' } };

/** An upstream that holds every call until `BURST` are waiting, then answers them all (as SSE, announcing no Keep-Alive timeout): each burst is exactly `BURST` calls at once. */
interface CountingUpstream {
  url: string;
  /** TCP connections accepted so far. */
  opened: number;
  /** Those the other side closed. */
  closedByClient: number;
  close(): Promise<void>;
}

/** `server` listening on a free port, counting the connections it accepts and those the other side (the gateway) closes. */
async function listenCounting(server: Server): Promise<CountingUpstream> {
  const sockets = new Set<Socket>();
  const upstream: CountingUpstream = { url: '', opened: 0, closedByClient: 0, close: async () => undefined };
  server.on('connection', (socket: Socket) => {
    upstream.opened++;
    sockets.add(socket);
    socket.on('end', () => upstream.closedByClient++);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  upstream.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return upstream;
}

async function startCountingUpstream(): Promise<CountingUpstream> {
  let held: [IncomingMessage, ServerResponse, unknown][] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      held.push([req, res, (JSON.parse(body) as { id: unknown }).id]);
      if (held.length < BURST) return;
      for (const [, r, id] of held) {
        // Connection set by the server itself, as the MCP SDK does for its SSE answers: Node then announces no Keep-Alive timeout.
        r.writeHead(200, { 'content-type': 'text/event-stream', connection: 'keep-alive' });
        r.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'ok' }] } })}\n\n`);
      }
      held = [];
    });
  });
  // Longer than the gateway's idle limit: whoever closes an idle connection first, it is not this upstream.
  server.keepAliveTimeout = 60_000;
  return listenCounting(server);
}

let upstream: CountingUpstream;
let r: TestRegistry;

before(async () => {
  upstream = await startCountingUpstream();
  r = await startRegistry({
    upstreams: [{ id: 'counted', url: upstream.url, credential: { type: 'none' } }],
    gateways: [{ id: 'team', visibility: 'public', servers: [{ upstream: 'counted', identity: 'shared' }] }],
  });
});
after(async () => {
  await r?.close();
  await upstream?.close();
});

let nextId = 1;
async function call(): Promise<number> {
  const id = nextId++;
  const res = await fetch(`${r.url}/mcp/team/counted`, {
    method: 'POST',
    headers: MODERN,
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'add', arguments: {}, _meta: META } }),
  });
  assert.match(await res.text(), new RegExp(`"id":${id},"result"`));
  return res.status;
}

const burst = async () => assert.deepEqual(await Promise.all(Array.from({ length: BURST }, call)), Array(BURST).fill(200));

describe('the pooled connections to an upstream', () => {
  test('a second burst of calls as large as the first goes out on the connections the first opened', async () => {
    await burst();
    const afterFirst = upstream.opened;
    assert.equal(afterFirst, BURST, `${BURST} calls held at once by the upstream need ${BURST} connections`);
    await burst();
    assert.equal(upstream.opened, afterFirst, 'no connection was opened again');
    assert.equal(upstream.closedByClient, 0);
  });

  test('an idle connection is closed by the gateway (after 4 s), though the SSE answer announced no Keep-Alive timeout', async () => {
    const open = upstream.opened - upstream.closedByClient;
    assert.ok(open > 0);
    // Bounded: the gateway closes them after 4 s idle.
    for (let waited = 0; upstream.closedByClient < upstream.opened && waited < 15_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(upstream.closedByClient, upstream.opened, 'every idle connection was closed by the gateway');
  });
});

/** An upstream whose answers announce `Keep-Alive: timeout=N` (node's keepAliveTimeout), counting the connections it accepts and those the gateway closes. */
async function startHintingUpstream(keepAliveSeconds: number): Promise<CountingUpstream> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: (JSON.parse(body) as { id: unknown }).id, result: { content: [] } })));
  });
  server.keepAliveTimeout = keepAliveSeconds * 1000;
  return listenCounting(server);
}

describe('the Keep-Alive timeout an upstream announces', () => {
  const callThrough = async (registry: TestRegistry, id: number, seen: string[]) => {
    const res = await fetch(`${registry.url}/mcp/team/hinting`, { method: 'POST', headers: MODERN, body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'add', arguments: {}, _meta: META } }) });
    seen.push(`${res.status} ${await res.text()}`);
  };
  const registryFor = (hinting: CountingUpstream) =>
    startRegistry({
      upstreams: [{ id: 'hinting', url: hinting.url, credential: { type: 'none' } }],
      gateways: [{ id: 'team', visibility: 'public', servers: [{ upstream: 'hinting', identity: 'shared' }] }],
    });

  test('a connection is closed by the gateway 1 s before the timeout the upstream announced, when that is sooner than its own 4 s', async () => {
    const hinting = await startHintingUpstream(3);
    const registry = await registryFor(hinting);
    try {
      const seen: string[] = [];
      await callThrough(registry, 1, seen);
      assert.match(seen[0]!, /^200 .*"id":1,"result"/);
      assert.equal(hinting.opened, 1);
      // Before the upstream's 3 s: the gateway closed it (at 2 s); its own 4 s would be too late.
      for (let waited = 0; hinting.closedByClient === 0 && waited < 2_800; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(hinting.closedByClient, 1, 'the gateway closed the idle connection before the upstream would');
      // And the next call goes out on a new connection.
      await callThrough(registry, 2, seen);
      assert.match(seen[1]!, /^200 .*"id":2,"result"/);
      assert.equal(hinting.opened, 2);
    } finally {
      await registry.close();
      await hinting.close();
    }
  });

  test('a connection whose announced timeout leaves no time to reuse it (1 s) is closed after its answer, never written to again', async () => {
    const hinting = await startHintingUpstream(1);
    const registry = await registryFor(hinting);
    try {
      const seen: string[] = [];
      for (let id = 1; id <= 3; id++) await callThrough(registry, id, seen);
      assert.deepEqual(seen.map((s) => s.slice(0, 3)), ['200', '200', '200']);
      assert.equal(hinting.opened, 3, 'each call on a connection of its own');
      for (let waited = 0; hinting.closedByClient < 3 && waited < 900; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(hinting.closedByClient, 3, 'each closed by the gateway');
    } finally {
      await registry.close();
      await hinting.close();
    }
  });
});

interface NotingUpstream extends CountingUpstream {
  ports: number[];
  ids: unknown[];
}

/** An upstream that holds calls until `hold` are waiting (then answers them all, and every later call at once), noting which connection (the gateway's port) carried each call. */
async function startNotingUpstream(hold: number): Promise<NotingUpstream> {
  const ports: number[] = [];
  const ids: unknown[] = [];
  let held: (() => void)[] = [];
  let holding = true;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const { id } = JSON.parse(body) as { id: unknown };
      ports.push(req.socket.remotePort!);
      ids.push(id);
      const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [] } }));
      if (!holding) return answer();
      held.push(answer);
      if (held.length < hold) return;
      holding = false;
      for (const a of held) a();
      held = [];
    });
  });
  server.keepAliveTimeout = 60_000;
  return Object.assign(await listenCounting(server), { ports, ids });
}

describe('idle connections are used in turn', () => {
  test('calls one after another go out on every idle connection in turn (the least recently used first), so a trickle keeps them all open', async () => {
    const noting = await startNotingUpstream(5);
    const registry = await startRegistry({
      upstreams: [{ id: 'noting', url: noting.url, credential: { type: 'none' } }],
      gateways: [{ id: 'team', visibility: 'public', servers: [{ upstream: 'noting', identity: 'shared' }] }],
    });
    try {
      const callOnce = async (id: number) => {
        const res = await fetch(`${registry.url}/mcp/team/noting`, { method: 'POST', headers: MODERN, body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'add', arguments: {}, _meta: META } }) });
        assert.match(await res.text(), new RegExp(`"id":${id},"result"`));
      };
      await Promise.all([1, 2, 3, 4, 5].map(callOnce));
      assert.equal(noting.opened, 5, 'five calls held at once need five connections');
      const burst = new Set(noting.ports);
      noting.ports.length = 0;
      for (let id = 6; id <= 15; id++) await callOnce(id);
      assert.equal(noting.opened, 5, 'no connection opened for calls one at a time');
      // Each of the five carried two of the ten, in a fixed rotation (one connection for all: the first free one taken each time).
      assert.deepEqual(new Set(noting.ports), burst);
      assert.deepEqual(noting.ports.slice(5), noting.ports.slice(0, 5), `in turn: ${noting.ports.join(' ')}`);
    } finally {
      await registry.close();
      await noting.close();
    }
  });
});

/** A pool of at most `max` connections to `noting`, used without a registry; `send` resolves with how the request ended: `answered STATUS` (its body read) or the failure's reason. */
function poolTo(noting: NotingUpstream, max: number, timeoutMs: number) {
  const url = new URL(noting.url);
  const connections = new UpstreamConnections(new URL(url.origin), { max, idleMs: 4000 });
  const upstream = { id: 'noting', url, timeoutMs, connections } as unknown as Upstream;
  const send = (id: number, timeout = true) =>
    new Promise<string>((resolve) =>
      requestUpstream(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }), timeout }, (err, res) => {
        if (err) return resolve(err.reason);
        res!.resume();
        res!.once('end', () => resolve(`answered ${res!.statusCode}`));
      }),
    );
  return { connections, send };
}

describe('the most connections a pool opens', () => {
  test('past its limit, a request waits for a connection to come free, and the waiting go out in the order they came', async () => {
    const noting = await startNotingUpstream(2);
    const { connections, send } = poolTo(noting, 2, 10_000);
    try {
      assert.deepEqual(await Promise.all([1, 2, 3, 4, 5].map((id) => send(id))), Array(5).fill('answered 200'));
      assert.equal(noting.opened, 2, 'never more than two connections');
      assert.deepEqual(noting.ids.slice(2), [3, 4, 5], 'the waiting requests in the order they came');
    } finally {
      connections.close();
      await noting.close();
    }
  });

  test('closed (the registry stops), a pool aborts the request on its connection and refuses the one waiting, rather than leave it hanging', async () => {
    const noting = await startNotingUpstream(100); // answers nothing
    const { connections, send } = poolTo(noting, 1, 60_000);
    try {
      const sent = send(1);
      const waiting = send(2);
      for (let waited = 0; noting.ids.length < 1 && waited < 5_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(noting.ids, [1], 'the first on the one connection, the second waiting');
      connections.close();
      const bound = new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5_000).unref());
      assert.deepEqual(await Promise.all([sent, Promise.race([waiting, bound])]), ['upstream_unreachable', 'upstream_unreachable']);
      assert.deepEqual(noting.ids, [1], 'the waiting request never went out');
    } finally {
      await noting.close();
    }
  });

  test("a request that waits for a connection past the upstream's timeout is answered upstream_timeout then, and never goes out", async () => {
    const noting = await startNotingUpstream(100); // answers nothing
    const { connections, send } = poolTo(noting, 1, 300);
    try {
      // The first holds the one connection (a stream that may stay silent: no timeout); the second waits for it.
      const holding = send(1, false);
      const waiting = send(2);
      const bound = new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5_000).unref());
      assert.equal(await Promise.race([waiting, bound]), 'upstream_timeout');
      assert.deepEqual(noting.ids, [1], 'the one that waited never went out');
      connections.close();
      assert.equal(await holding, 'upstream_unreachable');
    } finally {
      connections.close();
      await noting.close();
    }
  });
});
