import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Assignment } from '../catalog/catalog.ts';
import type { Logger } from '../log.ts';
import { sendFailure } from './jsonrpc.ts';
import { rewriteToolsList } from './raw-policy.ts';
import { requestUpstream, upstreamFailure } from './upstream-transport.ts';

// The last step of the raw endpoint (/mcp/{gateway}/{server}, and a gateway
// of one server): the request goes to the upstream as it came, with the
// upstream credential in place of the inbound token, and the answer comes
// back chunk by chunk. (The request itself, its headers and every failure's
// answer: upstream-transport.ts, as on the merged endpoint.)

export { buildUpstreamHeaders, upstreamFailure } from './upstream-transport.ts';

/** Response headers that reach the client. */
const FORWARD_RESPONSE = new Set(['content-type', 'cache-control', 'content-length', 'mcp-protocol-version', 'retry-after', 'x-accel-buffering']);

export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  assignment: Assignment,
  headers: OutgoingHttpHeaders,
  wrapSession: (upstreamId: string) => string,
  log: Logger,
  body: Buffer | undefined,
  rewrite: ((tools: unknown[]) => unknown[]) | undefined,
  /** The request's JSON-RPC id, for a failure's answer. */
  id: string | number | null,
): void {
  const { upstream } = assignment;
  const cancel = requestUpstream(upstream, { method: req.method ?? 'POST', headers, body: body ?? req }, (err, upstreamRes) => {
    if (err) {
      if (err.reason === 'upstream_rejected_credential') log.warn('upstream %s refused the credential of %s/%s (HTTP %d)', upstream.id, assignment.gateway, assignment.name, err.status);
      else log.warn('upstream %s %s: %s', upstream.id, err.reason === 'upstream_timeout' ? 'timed out' : 'unreachable', err.detail ?? err.message);
      if (res.headersSent) return void res.destroy();
      return void sendFailure(req, res, upstreamFailure(err, assignment), id);
    }
    relay(req, res, upstreamRes!, wrapSession, rewrite);
  });
  // The client went away: stop the upstream request (and any SSE stream) too.
  res.on('close', () => {
    if (!res.writableFinished) cancel();
  });
}

function relay(req: IncomingMessage, res: ServerResponse, upstreamRes: IncomingMessage, wrapSession: (upstreamId: string) => string, rewrite: ((tools: unknown[]) => unknown[]) | undefined): void {
  const status = upstreamRes.statusCode ?? 502;
  const out: OutgoingHttpHeaders = {};
  for (const name in upstreamRes.headers) {
    const value = upstreamRes.headers[name];
    if (value !== undefined && FORWARD_RESPONSE.has(name)) out[name] = value;
  }
  const session = upstreamRes.headers['mcp-session-id'];
  if (typeof session === 'string') out['mcp-session-id'] = wrapSession(session);
  upstreamRes.on('error', () => res.destroy());
  if (rewrite && status === 200) {
    // tools/list: read it whole, rewrite, send (a list is small; the call path never comes here).
    const chunks: Buffer[] = [];
    upstreamRes.on('data', (c: Buffer) => chunks.push(c));
    upstreamRes.on('end', () => {
      const text = rewriteToolsList(String(upstreamRes.headers['content-type'] ?? ''), Buffer.concat(chunks).toString('utf8'), rewrite);
      delete out['content-length'];
      res.writeHead(status, { ...out, 'content-length': Buffer.byteLength(text) }).end(text);
    });
    return;
  }
  res.writeHead(status, out);
  // A GET stream may stay idle for long: send its headers now. (A POST's
  // headers go out with its first event, in one write.) Every chunk is then
  // relayed as it arrives.
  if (req.method === 'GET') res.flushHeaders();
  upstreamRes.pipe(res);
}
