import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Assignment } from '../catalog/catalog.ts';
import type { Logger } from '../log.ts';
import { StringDecoder } from 'node:string_decoder';
import { failureMessage, sendFailure } from './jsonrpc.ts';
import type { RequestRecord } from './request-record.ts';
import { MODERN_VERSION } from './mcp-headers.ts';
import { type ListKey, rewriteLists } from './raw-policy.ts';
import { SseParser, sseMessage } from './sse.ts';
import { putLength, requestUpstream, streamDropped, upstreamFailure, type UpstreamResponse } from './upstream-transport.ts';

// The last step of the raw endpoint (/mcp/{gateway}/{server}, and a gateway
// of one server): the request goes to the upstream as it came, with the
// upstream credential in place of the inbound token, and the answer comes
// back chunk by chunk. (The request itself, its headers and every failure's
// answer: upstream-transport.ts, as on the merged endpoint.)

export { buildUpstreamHeaders, upstreamFailure } from './upstream-transport.ts';

/** Response headers that reach the client (the session id is rewritten). */
const FORWARD_RESPONSE = ['content-type', 'cache-control', 'content-length', 'mcp-protocol-version', 'retry-after', 'x-accel-buffering'];
/** Of these, the ones that have one value: the first one sent counts, as node reads them (the others' lines are all passed on, as node would join them). */
const SINGLE = 0b10101; // content-type, content-length, retry-after

/**
 * The upstream's response headers that reach the client, as a flat list
 * (name, value...) that node writes as it is, with the two the relay needs.
 * Read from the response's raw headers: node builds `headers` (an object
 * in dictionary mode) only if asked, and the forward step never asks.
 */
function answerHeaders(raw: string[]): { out: string[]; type: string | undefined; session: string | undefined } {
  const out: string[] = [];
  let seen = 0;
  let type: string | undefined;
  let session: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const at = FORWARD_RESPONSE.indexOf(name);
    if (at >= 0) {
      if (seen & SINGLE & (1 << at)) continue;
      seen |= 1 << at;
      out.push(name, value);
      if (at === 0) type = value;
    } else if (name === 'mcp-session-id' && session === undefined) {
      session = value;
    }
  }
  return { out, type, session };
}

export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  assignment: Assignment,
  /** The request's headers, a flat list (buildUpstreamHeaders). */
  headers: string[],
  wrapSession: (upstreamId: string) => string,
  log: Logger,
  body: Buffer | undefined,
  rewrite: ((key: ListKey, items: unknown[]) => unknown[]) | undefined,
  /** The request's JSON-RPC id, for a failure's answer. */
  id: string | number | null,
  /** The audit record: an upstream's failure is its outcome. */
  record: RequestRecord,
): void {
  const { upstream } = assignment;
  const cancel = requestUpstream(upstream, { method: req.method ?? 'POST', headers, body: body ?? req }, (err, upstreamRes) => {
    if (err) {
      if (err.reason === 'upstream_rejected_credential') log.warn('upstream %s refused the credential of %s/%s (HTTP %d)', upstream.id, assignment.gateway, assignment.name, err.status);
      else log.warn('upstream %s %s: %s', upstream.id, err.reason === 'upstream_timeout' ? 'timed out' : 'unreachable', err.detail ?? err.message);
      record.outcome = err.reason;
      if (res.headersSent) return void res.destroy();
      return void sendFailure(req, res, upstreamFailure(err, assignment), id);
    }
    relay(req, res, upstreamRes!, wrapSession, rewrite, assignment, id, record);
  });
  // The client went away: stop the upstream request (and any SSE stream) too.
  res.on('close', () => {
    if (!res.writableFinished) cancel();
  });
}

function relay(
  req: IncomingMessage,
  res: ServerResponse,
  upstreamRes: UpstreamResponse,
  wrapSession: (upstreamId: string) => string,
  rewrite: ((key: ListKey, items: unknown[]) => unknown[]) | undefined,
  assignment: Assignment,
  id: string | number | null,
  record: RequestRecord,
): void {
  const status = upstreamRes.statusCode ?? 502;
  const { out, type, session } = answerHeaders(upstreamRes.rawHeaders);
  if (session !== undefined) out.push('mcp-session-id', wrapSession(session));
  if (rewrite && status === 200) {
    upstreamRes.on('error', () => res.destroy());
    // tools/list: read it whole, rewrite, send (a list is small; the call path never comes here).
    const chunks: Buffer[] = [];
    upstreamRes.on('data', (c: Buffer) => chunks.push(c));
    upstreamRes.on('end', () => {
      const text = rewriteLists(type ?? '', Buffer.concat(chunks).toString('utf8'), rewrite);
      res.writeHead(status, putLength(out, Buffer.byteLength(text))).end(text);
    });
    return;
  }
  if (req.method === 'POST' && type !== undefined && JSON_TYPE.test(type)) return relayJson(req, res, upstreamRes, status, out, assignment, id, record);
  res.writeHead(status, out);
  // A GET stream may stay idle for long: send its headers now. (A POST's
  // headers go out with its first event, in one write.) Every chunk is then
  // relayed as it arrives.
  if (req.method === 'GET') res.flushHeaders();
  if (req.method === 'POST' && id !== null && type?.startsWith('text/event-stream')) return relayAnswerStream(req, res, upstreamRes, assignment, id, record);
  upstreamRes.on('error', () => res.destroy());
  upstreamRes.pipe(res);
}

/** One chunk of an answer on to the client, the upstream paused while the client's buffer is full. */
function relayChunk(res: ServerResponse, upstreamRes: UpstreamResponse, chunk: Buffer): void {
  if (!res.write(chunk)) {
    upstreamRes.pause();
    res.once('drain', () => upstreamRes.resume());
  }
}

const JSON_TYPE = /^application\/json\b/i;
/** A JSON answer up to this size is sent on whole, with its length, in one write; a larger one streams as it arrives. */
const WHOLE_JSON_LIMIT = 64 * 1024;

/**
 * An answer in JSON (one JSON-RPC message, or a batch's): complete only when
 * whole, so it is gathered and sent on in one write with its Content-Length
 * (no chunked framing; the client reads it in one piece). Past
 * WHOLE_JSON_LIMIT it streams as it arrives instead, with backpressure. Cut
 * before its end, nothing of the torn answer is passed on: the client gets a
 * JSON-RPC error for its call (upstream_stream_dropped), as when an SSE
 * answer is cut (or, once a large answer has started streaming, a cut
 * connection).
 */
function relayJson(req: IncomingMessage, res: ServerResponse, upstreamRes: UpstreamResponse, status: number, out: string[], assignment: Assignment, id: string | number | null, record: RequestRecord): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let streaming = false;
  upstreamRes.on('data', (chunk: Buffer) => {
    if (!streaming) {
      chunks.push(chunk);
      if ((size += chunk.length) <= WHOLE_JSON_LIMIT) return;
      streaming = true;
      res.writeHead(status, out);
      for (const c of chunks.splice(0)) res.write(c);
      return;
    }
    relayChunk(res, upstreamRes, chunk);
  });
  upstreamRes.on('end', () => {
    if (streaming) return void res.end();
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    res.writeHead(status, putLength(out, body.length)).end(body);
  });
  upstreamRes.on('error', () => undefined); // said by 'close', below
  upstreamRes.on('close', () => {
    // (The client went away first: forward cancelled the upstream request, and the audit says client_closed.)
    if (upstreamRes.complete || res.writableEnded || res.destroyed) return;
    if (streaming || res.headersSent) return void res.destroy();
    record.outcome = 'upstream_stream_dropped';
    void sendFailure(req, res, upstreamFailure(streamDropped(assignment.upstream), assignment), id);
  });
}

/**
 * A call's answer as an SSE stream, relayed as it arrives and watched for the
 * response to the call. If the upstream cuts the stream before that response,
 * the client gets a JSON-RPC error for its call (upstream_stream_dropped) as
 * the stream's last event, and a clean end, rather than a broken connection.
 * Except where the client can resume the stream itself: a 2025 stream whose
 * events carry ids (Last-Event-ID), which is cut as it was.
 */
function relayAnswerStream(req: IncomingMessage, res: ServerResponse, upstreamRes: UpstreamResponse, assignment: Assignment, id: string | number, record: RequestRecord): void {
  const parser = new SseParser();
  const decoder = new StringDecoder('utf8');
  let answered = false;
  // The latest event that may be the response, parsed only when another comes after it or the stream is cut:
  // a stream that ends normally (its last event the response) is never parsed here.
  let candidate: string | undefined;
  upstreamRes.on('data', (chunk: Buffer) => {
    if (!answered) {
      for (const event of parser.push(decoder.write(chunk))) {
        if (!event.data.includes('"id"')) continue;
        if (candidate !== undefined && isResponseTo(candidate, id)) answered = true;
        candidate = event.data;
      }
    }
    relayChunk(res, upstreamRes, chunk);
  });
  upstreamRes.on('end', () => res.end());
  upstreamRes.on('error', () => undefined); // said by 'close', below
  upstreamRes.on('close', () => {
    if (upstreamRes.complete || res.writableEnded) return;
    const resumable = req.headers['mcp-protocol-version'] !== MODERN_VERSION && parser.lastEventId !== undefined;
    if (answered || (candidate !== undefined && isResponseTo(candidate, id))) return void res.end();
    if (resumable) return void res.destroy();
    record.outcome = 'upstream_stream_dropped';
    res.end(sseMessage(failureMessage(upstreamFailure(streamDropped(assignment.upstream), assignment), id)));
  });
}

function isResponseTo(data: string, id: string | number): boolean {
  try {
    const message = JSON.parse(data) as { id?: unknown; method?: unknown } | null;
    return message?.id === id && message.method === undefined;
  } catch {
    return false;
  }
}
