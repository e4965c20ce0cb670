import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Assignment } from '../catalog/catalog.ts';
import { CODES, type GatewayFailure } from '../catalog/failure.ts';
import type { Logger } from '../log.ts';
import { sendFailure } from './jsonrpc.ts';
import { rewriteToolsList } from './raw-policy.ts';
import type { UpstreamError } from './upstream-client.ts';
import { upstreamRequest } from './upstream-http.ts';

// The last step of the raw endpoint (/mcp/{gateway}/{server}, and a gateway
// of one server): the request goes to the upstream as it came, with the
// upstream credential in place of the inbound token, and the answer comes
// back chunk by chunk.

/** Request headers that reach the upstream; everything else (Authorization and cookies first) stays here. */
const FORWARD_REQUEST = new Set(['content-type', 'accept', 'content-length', 'last-event-id', 'user-agent']);
// (Mcp-* headers are forwarded too, except the session id, which is rewritten.)
/** Response headers that reach the client. */
const FORWARD_RESPONSE = new Set(['content-type', 'cache-control', 'content-length', 'mcp-protocol-version', 'retry-after', 'x-accel-buffering']);

/** An upstream that failed while the gateway opened a session on the client's behalf, said as the forwarder says it. */
export function upstreamFailure(err: UpstreamError, assignment: Assignment): GatewayFailure {
  const credential = err.reason === 'upstream_rejected_credential';
  return {
    status: err.reason === 'upstream_timeout' ? 504 : 502,
    code: credential ? CODES.credential : CODES.upstream,
    step: 'upstream',
    reason: err.reason,
    message: credential ? `${err.message}; an admin must check the identity assigned to /mcp/${assignment.gateway}/${assignment.name}` : err.message,
  };
}

export function buildUpstreamHeaders(incoming: IncomingHttpHeaders, credential: Record<string, string>, session: string | undefined, mirrored: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (!mirrored && (name === 'mcp-method' || name === 'mcp-name')) continue;
    if (FORWARD_REQUEST.has(name) || (name.startsWith('mcp-') && name !== 'mcp-session-id')) headers[name] = value;
  }
  if (session !== undefined) headers['mcp-session-id'] = session;
  // The upstream credential, never the inbound token (which is not copied above).
  Object.assign(headers, credential);
  return headers;
}

export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  assignment: Assignment,
  headers: OutgoingHttpHeaders,
  wrapSession: (upstreamId: string) => string,
  log: Logger,
  body: Buffer | undefined,
  rewrite: ((tools: unknown[]) => unknown[]) | undefined,
): void {
  const { upstream } = assignment;
  const upstreamReq = upstreamRequest(upstream, req.method ?? 'POST', body === undefined ? headers : { ...headers, 'content-length': body.length });

  const timer = setTimeout(() => upstreamReq.destroy(new Error('timeout')), upstream.timeoutMs);

  upstreamReq.on('response', (upstreamRes) => {
    clearTimeout(timer);
    const status = upstreamRes.statusCode ?? 502;
    if (status === 401 || status === 403) {
      // The upstream refused Keygate's credential: the caller cannot fix that by
      // signing in again, so its challenge is not passed on.
      upstreamRes.resume();
      log.warn('upstream %s refused the credential of %s/%s (HTTP %d)', upstream.id, assignment.gateway, assignment.name, status);
      void sendFailure(req, res, {
        status: 502,
        code: CODES.credential,
        step: 'upstream',
        reason: 'upstream_rejected_credential',
        message: `upstream "${upstream.id}" refused the credential Keygate sent (HTTP ${status}); an admin must check the identity assigned to /mcp/${assignment.gateway}/${assignment.name}`,
      }, null);
      return;
    }
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(upstreamRes.headers)) {
      if (value !== undefined && FORWARD_RESPONSE.has(name)) out[name] = value;
    }
    const session = upstreamRes.headers['mcp-session-id'];
    if (typeof session === 'string') out['mcp-session-id'] = wrapSession(session);
    if (rewrite && status === 200) {
      // tools/list: read it whole, rewrite, send (a list is small; the call path never comes here).
      const chunks: Buffer[] = [];
      upstreamRes.on('data', (c: Buffer) => chunks.push(c));
      upstreamRes.on('error', () => res.destroy());
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
    upstreamRes.on('error', () => res.destroy());
  });

  upstreamReq.on('error', (err) => {
    clearTimeout(timer);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const timedOut = err.message === 'timeout';
    log.warn('upstream %s %s: %s', upstream.id, timedOut ? 'timed out' : 'unreachable', timedOut ? `${upstream.timeoutMs} ms` : (err as NodeJS.ErrnoException).code ?? err.message);
    void sendFailure(req, res, {
      status: timedOut ? 504 : 502,
      code: CODES.upstream,
      step: 'upstream',
      reason: timedOut ? 'upstream_timeout' : 'upstream_unreachable',
      message: timedOut ? `upstream "${upstream.id}" did not answer in time` : `upstream "${upstream.id}" cannot be reached`,
    }, null);
  });

  // The client went away: stop the upstream request (and any SSE stream) too.
  res.on('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) upstreamReq.destroy();
  });

  if (body !== undefined) upstreamReq.end(body);
  else req.pipe(upstreamReq);
}
