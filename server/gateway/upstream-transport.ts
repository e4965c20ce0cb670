import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Client, Dispatcher } from 'undici';
import type { Assignment, Upstream } from '../catalog/catalog.ts';
import { CODES, type GatewayFailure } from '../catalog/failure.ts';
import { indexOfHeader, responseHeader } from '../net/raw-headers.ts';
import { encodeMcpName, MODERN_VERSION } from './mcp-headers.ts';

export { responseHeader };

// The one way the gateway talks HTTP to an upstream MCP server, whichever
// path sends the request (the raw endpoint's forward step, the merged
// endpoint's fast paths, the pooled upstream connections of the SDK path):
// the request to the upstream's URL on its pooled keep-alive agent, the
// headers it carries (the upstream credential, never the inbound token; the
// 2026-07-28 Mcp-Method / Mcp-Name / MCP-Protocol-Version), the upstream's
// timeout (silence until the response headers), cancellation, the refusal of
// Keygate's credential (401/403: the caller cannot fix that by signing in
// again, so the upstream's challenge is never passed on), a server error
// that is not JSON-RPC (an HTML 500 page: said as upstream_error, never
// passed on), transport errors as UpstreamError, and the one GatewayFailure
// each UpstreamError is answered with.

export type UpstreamFailureReason = 'upstream_unreachable' | 'upstream_timeout' | 'upstream_rejected_credential' | 'upstream_error' | 'upstream_stream_dropped' | 'upstream_protocol_error';

export class UpstreamError extends Error {
  readonly code = 'ERR_UPSTREAM';
  constructor(
    readonly reason: UpstreamFailureReason,
    message: string,
    readonly status?: number,
    /** What the socket said (ECONNREFUSED...): for the log, never for the client. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** Request headers of the client that the raw endpoint passes on; everything else (Authorization and cookies first) stays here. */
const FORWARD_REQUEST = new Set(['content-type', 'accept', 'content-length', 'last-event-id', 'user-agent']);
// (Mcp-* headers are passed on too, except the session id, which is rewritten.)

/**
 * The raw endpoint's request headers: the client's (see FORWARD_REQUEST), the
 * upstream session, the upstream credential. A flat list (name, value, name,
 * value...), which node writes as it is, rather than an object it would copy
 * header by header (requestUpstream adds Host, and the length of a whole body).
 */
export function buildUpstreamHeaders(incoming: IncomingHttpHeaders, credential: Record<string, string>, session: string | undefined, mirrored: boolean): string[] {
  const headers: string[] = [];
  for (const name in incoming) {
    const value = incoming[name];
    if (typeof value !== 'string') continue; // (only set-cookie is a list, and it is not passed on)
    if (!mirrored && (name === 'mcp-method' || name === 'mcp-name')) continue;
    if (!FORWARD_REQUEST.has(name) && !(name.startsWith('mcp-') && name !== 'mcp-session-id')) continue;
    // A header the credential sets is the credential's alone: never the client's too.
    if (!namesHeader(credential, name)) headers.push(name, value);
  }
  if (session !== undefined) headers.push('mcp-session-id', session);
  // The upstream credential, never the inbound token (which is not copied above).
  for (const name in credential) headers.push(name, credential[name]!);
  return headers;
}

/** Whether `headers` has `name` (lower case), in any case. */
function namesHeader(headers: Record<string, string>, name: string): boolean {
  for (const key in headers) if (key.length === name.length && key.toLowerCase() === name) return true;
  return false;
}

/** A 2026-07-28 request's headers: Mcp-Name (the upstream's own name, which may not be ASCII) encoded as the revision says; then the credential. */
export function modernHeaders(method: string, name: string | undefined, credential: Record<string, string>): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': MODERN_VERSION,
    'mcp-method': method,
  };
  if (name !== undefined) headers['mcp-name'] = encodeMcpName(name);
  return Object.assign(headers, credential);
}

/** A 2025 session's request headers: the negotiated version and the session id once known; then the credential. */
export function legacyHeaders(protocolVersion: string | undefined, session: string | undefined, credential: Record<string, string>): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (protocolVersion !== undefined) headers['mcp-protocol-version'] = protocolVersion;
  if (session !== undefined) headers['mcp-session-id'] = session;
  return Object.assign(headers, credential);
}

/**
 * What cancels an upstream request: an AbortSignal, or a Cancellation (below).
 * Only this much of AbortSignal is used, so a call that is almost never
 * cancelled need not build one (an AbortController and its EventTarget cost
 * more than the rest of a fast-path call's bookkeeping).
 */
export interface Cancellable {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A Cancellable as light as it gets: a flag and the listeners to tell once. */
export class Cancellation implements Cancellable {
  aborted = false;
  private listeners: (() => void)[] = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const at = this.listeners.indexOf(listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener();
  }
}

export interface UpstreamRequest {
  method: string;
  /** An object, or a flat list (name, value...: buildUpstreamHeaders), which is completed in place with Host and a whole body's Content-Length. */
  headers: OutgoingHttpHeaders | string[];
  /** The whole body (its Content-Length is set here); or a stream piped through as it arrives (the raw endpoint's client body); or none. */
  body?: string | Buffer | Readable | undefined;
  /** The upstream's timeout applies until the response headers (default); false for a stream that may stay silent. */
  timeout?: boolean;
  /** Cancels the request, and reading its response. */
  signal?: Cancellable | undefined;
}

/**
 * An upstream's answer: its status, its headers as a flat list (name,
 * value...: as node's `rawHeaders`, latin1 as node reads them), and its body
 * as a stream, paused at the connection while the reader's buffer is full.
 * `complete` once the whole body arrived (a connection that broke before
 * leaves it false, and the stream ends with an error).
 */
export class UpstreamResponse extends Readable {
  complete = false;

  constructor(
    readonly statusCode: number,
    readonly rawHeaders: string[],
    private readonly call: Call,
    /** Resumes reading the connection (undici's parser) after a push that filled the buffer. */
    private readonly resumeConnection: () => void,
  ) {
    super();
  }

  override _read(): void {
    this.resumeConnection();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed by its reader before the end: the request goes too, and so does its connection.
    if (!this.complete) this.call.abort(err ?? cancelled());
    callback(err);
  }
}

/**
 * Send one request. `done` is called once: with the response (any status
 * but 401/403, which become upstream_rejected_credential and whose body is
 * drained), or with the UpstreamError that came before it. Returns a cancel
 * function (the client went away): the request, and its response if it
 * arrived, are destroyed.
 */
export function requestUpstream(upstream: Upstream, request: UpstreamRequest, done: (err: UpstreamError | undefined, res?: UpstreamResponse) => void): () => void {
  const call = new Call(upstream, request, done);
  return () => call.cancel();
}

/** Methods whose request may carry a body; any other is sent without one. */
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

// A class, and methods rather than closures: this runs once per forwarded
// call (the loader, tsx or esbuild with keepNames, names each named closure
// every time it is made). It is the request's undici handler too.
class Call implements Dispatcher.DispatchHandler {
  private settled = false;
  private finished = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private client: Client | undefined;
  private abortRequest: ((err: Error) => void) | undefined;
  /** Cancelled before undici started the request: it is aborted as it starts. */
  private abortedEarly: Error | undefined;
  private res: UpstreamResponse | undefined;
  /** Called once the request is over (answered, failed or aborted). */
  private onDone: (() => void) | undefined;

  constructor(
    private readonly upstream: Upstream,
    request: UpstreamRequest,
    private readonly done: (err: UpstreamError | undefined, res?: UpstreamResponse) => void,
  ) {
    const { body } = request;
    const whole = typeof body === 'string' || Buffer.isBuffer(body);
    const where = targetOf(upstream);
    const options: Dispatcher.DispatchOptions = {
      path: where.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: headerList(request.headers, where.host, whole ? Buffer.byteLength(body) : undefined),
      body: whole ? body : body && WITH_BODY.has(request.method) ? body : null,
    };
    // Cancelled (before the response, or while it is read): the request, and its response, are destroyed.
    const { signal } = request;
    if (signal) {
      if (signal.aborted) process.nextTick(() => this.abort(cancelled()));
      else {
        const onAbort = () => this.abort(cancelled());
        signal.addEventListener('abort', onAbort, { once: true });
        this.onDone = () => signal.removeEventListener('abort', onAbort);
      }
    }
    // Silence until the response headers: the upstream's timeout. A response, once it started, may take its time.
    if (request.timeout !== false) this.timer = setTimeout(() => this.expire(), upstream.timeoutMs);
    upstream.connections.acquire((client) => {
      if (!client) return this.onError(Object.assign(new Error('the registry is shutting down'), { code: 'ECONNABORTED' }));
      // Stopped while it waited for a connection: it never goes out.
      if (this.finished) return this.upstream.connections.release(client);
      this.client = client;
      client.dispatch(options, this);
    });
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortRequest = abort;
    if (this.abortedEarly) abort(this.abortedEarly);
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: the answer is still to come
    const rawHeaders = new Array<string>(raw.length);
    for (let i = 0; i < raw.length; i++) rawHeaders[i] = raw[i]!.toString('latin1');
    this.response((this.res = new UpstreamResponse(statusCode, rawHeaders, this, resume)));
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.res!.push(chunk);
  }

  onComplete(): void {
    const res = this.res!;
    res.complete = true;
    res.push(null);
    this.finish();
  }

  onError(err: Error): void {
    this.finish();
    const failure = toUpstreamError(this.upstream, err);
    if (!this.settled) return this.settle(failure);
    // After the response: its reader sees the broken connection as the response's error.
    if (this.res && !this.res.destroyed) this.res.destroy(failure);
  }

  /** Stop the request (a cancellation, a timeout, a reader that went away): at once if it still waits for a connection, else now or as undici starts it. */
  abort(err: Error): void {
    if (this.finished) return;
    if (!this.client) return this.onError(err);
    if (this.abortRequest) this.abortRequest(err);
    else this.abortedEarly ??= err;
  }

  /** The client went away: the request, and its response if it arrived, are destroyed. */
  cancel(): void {
    clearTimeout(this.timer);
    this.abort(cancelled());
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone?.();
    if (this.client) this.upstream.connections.release(this.client);
  }

  private settle(err: UpstreamError | undefined, res?: UpstreamResponse): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.done(err, res);
  }

  private response(res: UpstreamResponse): void {
    const status = res.statusCode;
    if (status === 401 || status === 403) {
      res.resume();
      return this.settle(new UpstreamError('upstream_rejected_credential', `upstream "${this.upstream.id}" refused the credential Keygate sent (HTTP ${status})`, status));
    }
    // A server error in JSON is the upstream's own JSON-RPC answer, passed on; anything else (an HTML error page) is not MCP.
    if (status >= 500 && !/\bjson\b/i.test(responseHeader(res, 'content-type') ?? '')) {
      res.resume();
      return this.settle(new UpstreamError('upstream_error', `upstream "${this.upstream.id}" failed (HTTP ${status})`, status));
    }
    this.settle(undefined, res);
  }

  private expire(): void {
    this.abort(new UpstreamError('upstream_timeout', `upstream "${this.upstream.id}" did not answer in time`, undefined, `${this.upstream.timeoutMs} ms`));
  }
}

/**
 * A request's headers as the flat list node writes as it is (an object would
 * be copied into the request header by header, each checked and stored
 * again), with Host, and the length of a whole body.
 */
function headerList(headers: OutgoingHttpHeaders | string[], host: string, length: number | undefined): string[] {
  let list: string[];
  if (Array.isArray(headers)) list = headers;
  else {
    // As node's setHeader would: a name set twice in another case (the credential's after the defaults) keeps the later value.
    list = [];
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      dropHeader(list, lower);
      if (Array.isArray(value)) for (const v of value) list.push(lower, v);
      else list.push(lower, String(value));
    }
  }
  if (indexOfHeader(list, 'host') < 0) list.push('host', host);
  // The client's Content-Length (of the body as it came) gives way to the body's as sent.
  return length === undefined ? list : putLength(list, length);
}

/** A flat list of headers without `name` (lower case), in place. */
function dropHeader(list: string[], name: string): void {
  for (let at = indexOfHeader(list, name); at >= 0; at = indexOfHeader(list, name)) list.splice(at, 2);
}

/** A flat list of headers, its Content-Length (if any) replaced by `length`, in place. */
export function putLength(headers: string[], length: number): string[] {
  dropHeader(headers, 'content-length');
  headers.push('content-length', String(length));
  return headers;
}

/** Where an upstream's requests go, read from its URL once (a catalog rebuild makes new Upstream objects). */
function targetOf(upstream: Upstream): { host: string; path: string } {
  let target = TARGETS.get(upstream);
  if (!target) {
    const { url } = upstream;
    target = { host: url.host, path: `${url.pathname}${url.search}` };
    TARGETS.set(upstream, target);
  }
  return target;
}
const TARGETS = new WeakMap<Upstream, ReturnType<typeof targetOf>>();

function cancelled(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** `requestUpstream` as a promise of the response headers (the pooled connections' way). */
export function sendUpstream(upstream: Upstream, request: UpstreamRequest): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => requestUpstream(upstream, request, (err, res) => (err ? reject(err) : resolve(res!))));
}

/** A response (an SSE stream, or a JSON body) whose connection closed before it was complete. */
export class ResponseEndedEarly extends Error {
  constructor() {
    super('the response ended early');
  }
}

/** The upstream closed its answer before the response to the call was in it. */
export function streamDropped(upstream: Upstream): UpstreamError {
  return new UpstreamError('upstream_stream_dropped', `upstream "${upstream.id}" closed its answer before the response to the call was in it`);
}

export function toUpstreamError(upstream: Upstream, err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (err instanceof ResponseEndedEarly) return streamDropped(upstream);
  const e = err as NodeJS.ErrnoException;
  if (e.name === 'AbortError') return new UpstreamError('upstream_unreachable', 'cancelled');
  return new UpstreamError('upstream_unreachable', `upstream "${upstream.id}" cannot be reached`, undefined, e.code ?? e.message);
}

/**
 * The one answer to an upstream that failed, on every path and both endpoints: 504 for a
 * timeout, else 502; a refused credential is the admin's to fix, and says which assignment.
 */
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
