import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as it reached the upstream through the tap. */
export interface TappedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The JSON-RPC message(s) of a POST, parsed; undefined when the body is not JSON. */
  body: unknown;
}

/** The JSON-RPC messages of a tapped request (a batch or one message). */
export const tappedMessages = (r: TappedRequest): any[] => (Array.isArray(r.body) ? r.body : [r.body]);

/** Does the request carry a tools/call? */
export const isToolsCall = (r: TappedRequest) => tappedMessages(r).some((m) => m?.method === 'tools/call');

export interface Wiretap {
  /** Put this in front of `target` (an http URL): same path, same query. */
  urlFor(target: string): string;
  seen: TappedRequest[];
  /**
   * An outage of the upstream behind the tap: 'unreachable' closes open connections and resets new
   * ones; 'silent' records each request and never answers it; undefined ends the outage.
   */
  outage(mode: 'unreachable' | 'silent' | undefined): void;
  close(): Promise<void>;
}

/**
 * A transparent HTTP proxy between the registry and an upstream that records
 * each request with its body, so a test can see exactly what the upstream was
 * asked (which tool, which arguments, which credential). Responses stream
 * through untouched (SSE included).
 */
export async function startWiretap(): Promise<Wiretap> {
  const seen: TappedRequest[] = [];
  let target: URL | undefined;
  let outage: 'unreachable' | 'silent' | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body: unknown;
      try {
        body = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
      } catch {
        body = undefined;
      }
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      if (outage === 'silent') return;
      if (!target) {
        res.writeHead(502).end('wiretap: no target');
        return;
      }
      const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.flushHeaders();
        answer.pipe(res);
      });
      upstream.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(`wiretap: ${err.message}`);
      });
      upstream.end(raw);
    });
  });
  server.on('connection', (socket) => {
    if (outage === 'unreachable') socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    urlFor(url) {
      const parsed = new URL(url);
      target = new URL(parsed.origin);
      return `${base}${parsed.pathname}${parsed.search}`;
    },
    seen,
    outage(mode) {
      outage = mode;
      if (mode === 'unreachable') server.closeAllConnections();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
