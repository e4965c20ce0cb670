import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// A switchable fault in front of a real upstream: the tests turn an upstream
// down (nothing listens on its port: ECONNREFUSED), make it answer HTTP 500
// (an HTML page, or its own JSON-RPC error for the call),
// hang (accept the request, never answer), or drop an SSE stream after its
// first chunk, and then let it pass again, on the same address, as a real
// upstream that fails and recovers would.

export type Fault = 'pass' | 'down' | 'http-500' | 'json-500' | 'hang' | 'drop-sse';

export interface FaultProxy {
  /** The upstream's URL through the proxy. */
  url: string;
  set(fault: Fault): Promise<void>;
  /** Requests that reached the proxy (whatever it then did with them). */
  requests: number;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  let fault: Fault = 'pass';
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    proxy.requests++;
    if (fault === 'hang') return; // read nothing, answer nothing
    if (fault === 'http-500') {
      req.resume();
      res.writeHead(500, { 'content-type': 'text/html' }).end('<h1>500 Internal Server Error</h1>');
      return;
    }
    if (fault === 'json-500') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const id = (JSON.parse(body) as { id?: unknown }).id;
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message: 'the upstream tripped over itself' } }));
      });
      return;
    }
    const out = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      const sse = String(answer.headers['content-type'] ?? '').startsWith('text/event-stream');
      if (fault === 'drop-sse' && sse) {
        // The first chunk goes through; then the connection is cut, mid-answer.
        answer.once('data', (chunk: Buffer) => {
          res.write(chunk);
          setTimeout(() => (answer.destroy(), res.socket?.destroy()), 20);
        });
        return;
      }
      answer.pipe(res);
    });
    out.on('error', () => res.socket?.destroy());
    req.pipe(out);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const listening = () => server.listening;

  const proxy: FaultProxy = {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    requests: 0,
    async set(next) {
      fault = next;
      if (next === 'down' && listening()) {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      } else if (next !== 'down' && !listening()) {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => (server.off('error', reject), resolve()));
        });
      }
    },
    async close() {
      for (const s of sockets) s.destroy();
      if (listening()) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
