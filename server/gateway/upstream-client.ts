import type { OutgoingHttpHeaders } from 'node:http';
import type { Logger } from '../log.ts';
import type { Upstream } from '../catalog/catalog.ts';
import { CODES } from '../catalog/failure.ts';
import { ENVELOPE_VERSION as PV, LEGACY_VERSION, mcpNameOf, MODERN_VERSION } from './mcp-headers.ts';
import { SseParser } from './sse.ts';
import { type Cancellable, legacyHeaders, modernHeaders, ResponseEndedEarly, responseHeader, sendUpstream, toUpstreamError, UpstreamError, type UpstreamResponse } from './upstream-transport.ts';

export { UpstreamError, type UpstreamFailureReason } from './upstream-transport.ts';

// One upstream MCP server reached with one identity, as the merged endpoint
// needs it: a lean Streamable HTTP client that speaks whichever era the
// upstream does (2026-07-28 stateless POSTs with the per-request _meta
// envelope, or a 2025 session: initialize, Mcp-Session-Id, GET stream,
// DELETE), keeps its session for every later call (re-initializing when the
// upstream expires it: 404), and hands back raw JSON-RPC messages, so nothing
// is re-validated or re-shaped on the way through. Messages that arrive on a
// request's own stream (progress, log messages, server-to-client requests)
// go to that request's hooks; unsolicited ones (list_changed, resource
// updates) to the watchers.

const CAPS = 'io.modelcontextprotocol/clientCapabilities';
const INFO = 'io.modelcontextprotocol/clientInfo';
const LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

export type Era = 'legacy' | 'modern';
export type RequestId = string | number;

export interface RpcMessage {
  jsonrpc: '2.0';
  id?: RequestId | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
}

export interface Implementation {
  name: string;
  version: string;
}

/** One exchange with the upstream: the credential to send and what to do with what arrives on its stream. */
export interface Exchange {
  headers: Record<string, string>;
  signal?: Cancellable | undefined;
  /** Notifications on this request's stream (progress, log messages). */
  onNotification?: ((message: RpcMessage) => void) | undefined;
  /** Server-to-client requests on this request's stream (2025 era: sampling, elicitation, roots): answer with a result or an error. */
  onRequest?: ((message: RpcMessage) => Promise<Pick<RpcMessage, 'result' | 'error'>>) | undefined;
  /** 2026-07-28 envelope: whose request this is. */
  clientInfo?: Implementation | undefined;
  clientCapabilities?: Record<string, unknown> | undefined;
  logLevel?: string | undefined;
}

export interface ConnectionDeps {
  log: Logger;
  /** Era verdicts by upstream URL, shared by every identity's connection to it. */
  eras: Map<string, Era>;
  /** 2026-07-28 upstream URLs that refused a 2025 initialize (`era: 'legacy'` adds them). */
  modernOnly?: Set<string> | undefined;
  /** Open a 2025 session at this 2026-07-28 upstream (for 2025 clients); if it refuses the initialize, speak 2026-07-28. */
  era?: 'legacy' | undefined;
  clientInfo: Implementation;
  /** 2025 initialize params to send instead of Keygate's own (a client's session opened on its behalf: stand-in-continuation.ts). */
  initialize?: { protocolVersion: string; capabilities: Record<string, unknown>; clientInfo: Implementation } | undefined;
}

/** Capabilities Keygate declares to a 2025 upstream: it relays each kind to whichever client made the call. */
const RELAYED_CAPABILITIES = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } };

interface InFlight {
  id: RequestId;
  exchange: Exchange;
}

export class UpstreamConnection {
  era: Era | undefined;
  protocolVersion: string | undefined;
  sessionId: string | undefined;
  capabilities: Record<string, any> = {};
  serverInfo: Implementation | undefined;
  instructions: string | undefined;
  /** How many initialize handshakes this connection made (tests and diagnostics). */
  initializations = 0;
  lastUsed = Date.now();
  closed = false;

  private nextId = 1;
  private ready: Promise<void> | undefined;
  private readonly inFlight = new Map<RequestId, InFlight>();
  private readonly watchers = new Set<(message: RpcMessage) => void>();
  private readonly subscriptions = new Map<string, number>();
  private latestHeaders: Record<string, string> = {};
  private stream: { abort(): void } | undefined;
  private streamUnsupported = false;
  private streamRetry = 0;
  private streamTimer: NodeJS.Timeout | undefined;
  private lastStreamEventId: string | undefined;

  constructor(
    /** Replaced when the catalog is rebuilt (same URL, maybe new settings). */
    public upstream: Upstream,
    readonly key: string,
    private readonly deps: ConnectionDeps,
  ) {}

  /** The credential headers of the latest request (the background stream and relayed notifications use them). */
  get credentialHeaders(): Record<string, string> {
    return this.latestHeaders;
  }

  get busy(): boolean {
    return this.inFlight.size > 0 || this.watchers.size > 0;
  }

  /** Detect the era (once per upstream) and, for a 2025 upstream, initialize the session. */
  connect(headers: Record<string, string>): Promise<void> {
    this.latestHeaders = headers;
    if (!this.ready) {
      this.ready = this.establish(headers).then(() => this.afterConnect()).catch((err: unknown) => {
        this.ready = undefined;
        throw err;
      });
    }
    return this.ready;
  }

  private async establish(headers: Record<string, string>): Promise<void> {
    const href = this.upstream.url.href;
    // A 2025 client's own connection (upstream-pool.ts): a 2025 session, if the 2026-07-28 upstream accepts one.
    const prefer = this.deps.era === 'legacy';
    if (this.deps.eras.get(href) !== 'legacy') {
      if (prefer && this.deps.eras.get(href) === 'modern' && !this.deps.modernOnly?.has(href) && (await this.tryLegacy(headers))) return;
      if (await this.discover(headers)) {
        this.deps.eras.set(href, 'modern');
        if (prefer && !this.deps.modernOnly?.has(href)) await this.tryLegacy(headers);
        return;
      }
      this.deps.eras.set(href, 'legacy');
    }
    await this.initialize(headers);
  }

  /** A 2025 session at a 2026-07-28 upstream; false (and remembered) when it refuses the initialize. */
  private async tryLegacy(headers: Record<string, string>): Promise<boolean> {
    try {
      await this.initialize(headers);
      return true;
    } catch (err) {
      if (!(err instanceof UpstreamError) || err.reason !== 'upstream_protocol_error') throw err;
      this.deps.modernOnly?.add(this.upstream.url.href);
      return false;
    }
  }

  private afterConnect(): void {
    if (this.watchers.size > 0 && !this.stream && !this.streamTimer) this.restartStream(0);
  }

  /** 2026-07-28: server/discover. False when the upstream answers like a 2025 server. */
  private async discover(headers: Record<string, string>): Promise<boolean> {
    const body = { jsonrpc: '2.0', id: 'keygate-discover', method: 'server/discover', params: { _meta: this.envelope({}) } };
    const res = await this.send('POST', modernHeaders('server/discover', undefined, headers), JSON.stringify(body), undefined);
    let answer: RpcMessage | undefined;
    try {
      for await (const message of readMessages(res)) if (message.id === 'keygate-discover') answer = message;
    } catch {
      return false;
    }
    const result = answer?.result as { supportedVersions?: unknown; capabilities?: Record<string, unknown>; instructions?: string; _meta?: Record<string, unknown> } | undefined;
    if (res.statusCode !== 200 || !result || !Array.isArray(result.supportedVersions) || !result.supportedVersions.includes(MODERN_VERSION)) return false;
    this.era = 'modern';
    this.protocolVersion = MODERN_VERSION;
    this.capabilities = result.capabilities ?? {};
    this.instructions = result.instructions;
    this.serverInfo = result._meta?.['io.modelcontextprotocol/serverInfo'] as Implementation | undefined;
    return true;
  }

  /** 2025: initialize, then notifications/initialized; the session id comes back as Mcp-Session-Id. */
  private async initialize(headers: Record<string, string>): Promise<void> {
    const id = `keygate-init-${this.nextId++}`;
    const body = { jsonrpc: '2.0', id, method: 'initialize', params: this.deps.initialize ?? { protocolVersion: LEGACY_VERSION, capabilities: RELAYED_CAPABILITIES, clientInfo: this.deps.clientInfo } };
    this.initializations++;
    const res = await this.send('POST', legacyHeaders(undefined, undefined, headers), JSON.stringify(body), undefined);
    let answer: RpcMessage | undefined;
    for await (const message of readMessages(res)) if (message.id === id) answer = message;
    if (!answer?.result) {
      throw new UpstreamError('upstream_protocol_error', `upstream "${this.upstream.id}" did not accept initialize (HTTP ${res.statusCode}${answer?.error ? `: ${answer.error.message}` : ''})`, res.statusCode);
    }
    const result = answer.result as { protocolVersion?: string; capabilities?: Record<string, unknown>; serverInfo?: Implementation; instructions?: string };
    this.era = 'legacy';
    this.sessionId = responseHeader(res, 'mcp-session-id');
    this.protocolVersion = result.protocolVersion ?? LEGACY_VERSION;
    this.capabilities = result.capabilities ?? {};
    this.serverInfo = result.serverInfo;
    this.instructions = result.instructions;
    const initialized = await this.send('POST', this.legacyHeaders(headers), JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), undefined);
    initialized.resume();
    // A new session: what the old one was subscribed to, and its stream, start again.
    for (const uri of this.subscriptions.keys()) void this.rawRequest('resources/subscribe', { uri }, { headers }).catch(() => undefined);
    if (this.watchers.size > 0) this.restartStream(0);
  }

  /** Send one request and wait for its response (a result or a JSON-RPC error); the upstream's session is reused. */
  async request(method: string, params: Record<string, unknown> | undefined, exchange: Exchange): Promise<RpcMessage> {
    await this.connect(exchange.headers);
    this.latestHeaders = exchange.headers;
    this.lastUsed = Date.now();
    return this.rawRequest(method, params, exchange);
  }

  private async rawRequest(method: string, params: Record<string, unknown> | undefined, exchange: Exchange, retried = false): Promise<RpcMessage> {
    const id = this.nextId++;
    const modern = this.era === 'modern';
    const session = this.sessionId;
    const body: RpcMessage = { jsonrpc: '2.0', id, method, ...(modern ? { params: { ...params, _meta: { ...(params?._meta as object | undefined), ...this.envelope(exchange) } } } : params !== undefined && { params }) };
    const headers = modern ? modernHeaders(method, mcpNameOf(method, params), exchange.headers) : this.legacyHeaders(exchange.headers);
    const entry: InFlight = { id, exchange };
    this.inFlight.set(id, entry);
    // The client's signal cancels the upstream request itself (upstream-transport.ts); 2025: the upstream is also told.
    const { signal } = exchange;
    const onAbort = modern || !signal ? undefined : () => void this.notify('notifications/cancelled', { requestId: id, reason: 'the client cancelled the request' }, exchange.headers).catch(() => undefined);
    if (onAbort) signal!.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) throw new UpstreamError('upstream_unreachable', 'cancelled');
      const res = await this.send('POST', headers, JSON.stringify(body), signal);
      if (res.statusCode === 404 && session !== undefined && !retried) {
        // Streamable HTTP: 404 on a session means it is gone; start a new one and send again.
        res.resume();
        await this.reinitialize(session, exchange.headers);
        this.inFlight.delete(id);
        return await this.rawRequest(method, params, exchange, true);
      }
      const answer = await this.readExchange(res, entry, signal);
      if (answer) return answer;
      throw new UpstreamError('upstream_protocol_error', `upstream "${this.upstream.id}" answered ${method} with HTTP ${res.statusCode} and no JSON-RPC response`, res.statusCode);
    } finally {
      this.inFlight.delete(id);
      if (onAbort) signal!.removeEventListener('abort', onAbort);
    }
  }

  /** Read a POST's answer: JSON, or an SSE stream resumed with Last-Event-ID (2025) if it breaks before the response. */
  private async readExchange(res: UpstreamResponse, entry: InFlight, signal: Cancellable | undefined): Promise<RpcMessage | undefined> {
    let current = res;
    for (let resumptions = 0; ; resumptions++) {
      const parser = new SseParser();
      try {
        const answer = await readAnswer(current, parser, (message) => {
          if (message.id === entry.id && message.method === undefined) return true;
          this.dispatch(message, entry);
          return false;
        });
        if (answer) return answer;
      } catch (err) {
        if (signal?.aborted) throw new UpstreamError('upstream_unreachable', 'cancelled');
        if (parser.lastEventId === undefined) throw toUpstreamError(this.upstream, err);
      }
      // The stream ended without the response: a 2025 upstream with an event store lets us resume it.
      const lastEventId = parser.lastEventId;
      if (this.era !== 'legacy' || lastEventId === undefined || resumptions >= 3 || signal?.aborted) return undefined;
      current = await this.send('GET', { ...this.legacyHeaders(entry.exchange.headers), accept: 'text/event-stream', 'last-event-id': lastEventId }, undefined, signal);
      if (current.statusCode !== 200) {
        current.resume();
        return undefined;
      }
    }
  }

  /** A message that is not the awaited response: a notification or a server-to-client request. */
  private dispatch(message: RpcMessage, entry: InFlight | undefined): void {
    if (message.method === undefined) return;
    if (message.id === undefined || message.id === null) {
      if (entry?.exchange.onNotification) entry.exchange.onNotification(message);
      else this.emit(message);
      return;
    }
    void this.answer(message, entry);
  }

  private async answer(message: RpcMessage, entry: InFlight | undefined): Promise<void> {
    let reply: Pick<RpcMessage, 'result' | 'error'>;
    if (message.method === 'ping') reply = { result: {} };
    else {
      // A request on the standalone stream relates to no call: give it to the latest call that can answer it.
      const target = entry ?? [...this.inFlight.values()].reverse().find((e) => e.exchange.onRequest);
      const handler = target?.exchange.onRequest;
      try {
        reply = handler ? await handler(message) : { error: { code: CODES.methodNotFound, message: `no client is waiting that could answer ${message.method}` } };
      } catch (err) {
        reply = { error: { code: CODES.internalError, message: (err as Error).message } };
      }
    }
    const headers = entry?.exchange.headers ?? this.latestHeaders;
    try {
      const res = await this.send('POST', this.legacyHeaders(headers), JSON.stringify({ jsonrpc: '2.0', id: message.id, ...reply }), undefined);
      res.resume();
    } catch (err) {
      this.deps.log.warn('answering %s to upstream %s failed: %s', message.method, this.upstream.id, (err as Error).message);
    }
  }

  /** A notification to the upstream (2025: cancelled, roots list_changed). */
  async notify(method: string, params: Record<string, unknown> | undefined, headers: Record<string, string>): Promise<void> {
    if (this.era !== 'legacy') return;
    const res = await this.send('POST', this.legacyHeaders(headers), JSON.stringify({ jsonrpc: '2.0', method, ...(params && { params }) }), undefined);
    res.resume();
  }

  private async reinitialize(expired: string, headers: Record<string, string>): Promise<void> {
    if (this.sessionId === expired) {
      this.sessionId = undefined;
      this.ready = this.initialize(headers).catch((err: unknown) => {
        this.ready = undefined;
        throw err;
      });
    }
    await this.ready;
  }

  /** Listen for unsolicited notifications (list_changed, resource updates, log messages): the GET stream, or subscriptions/listen. */
  watch(listener: (message: RpcMessage) => void): () => void {
    this.watchers.add(listener);
    if (this.watchers.size === 1 && this.ready) this.restartStream(0);
    return () => {
      this.watchers.delete(listener);
      if (this.watchers.size === 0) this.stopStream();
    };
  }

  /** Resource subscriptions, counted: the upstream is asked once per URI. */
  async subscribe(uri: string, headers: Record<string, string>): Promise<void> {
    const n = this.subscriptions.get(uri) ?? 0;
    this.subscriptions.set(uri, n + 1);
    if (n > 0) return;
    if (this.era === 'legacy') {
      const answer = await this.request('resources/subscribe', { uri }, { headers });
      if (answer.error) {
        this.subscriptions.delete(uri);
        throw Object.assign(new Error(answer.error.message), { rpc: answer.error });
      }
    } else this.restartStream(0);
  }

  async unsubscribe(uri: string, headers: Record<string, string>): Promise<void> {
    const n = this.subscriptions.get(uri) ?? 0;
    if (n > 1) return void this.subscriptions.set(uri, n - 1);
    if (n === 0) return;
    this.subscriptions.delete(uri);
    if (this.era === 'legacy') await this.request('resources/unsubscribe', { uri }, { headers }).catch(() => undefined);
    else this.restartStream(0);
  }

  private emit(message: RpcMessage): void {
    for (const watcher of this.watchers) {
      try {
        watcher(message);
      } catch (err) {
        this.deps.log.warn('a listener of upstream %s failed: %s', this.upstream.id, (err as Error).message);
      }
    }
  }

  private stopStream(): void {
    clearTimeout(this.streamTimer);
    this.streamTimer = undefined;
    this.stream?.abort();
    this.stream = undefined;
  }

  private restartStream(delayMs: number): void {
    this.stopStream();
    if (this.closed || this.watchers.size === 0 || this.streamUnsupported) return;
    this.streamTimer = setTimeout(() => void this.openStream(), delayMs);
    this.streamTimer.unref();
  }

  private async openStream(): Promise<void> {
    const abort = new AbortController();
    const handle = { abort: () => abort.abort() };
    this.stream = handle;
    let res: UpstreamResponse;
    try {
      await this.connect(this.latestHeaders);
      if (this.era === 'legacy') {
        if (this.sessionId === undefined) return; // a stateless 2025 server has no standalone stream
        const headers: OutgoingHttpHeaders = { ...this.legacyHeaders(this.latestHeaders), accept: 'text/event-stream' };
        delete headers['content-type'];
        if (this.lastStreamEventId !== undefined) headers['last-event-id'] = this.lastStreamEventId;
        res = await this.send('GET', headers, undefined, abort.signal, false);
        if (res.statusCode === 405) {
          res.resume();
          this.streamUnsupported = true;
          return;
        }
        if (res.statusCode === 404 && this.sessionId) {
          res.resume();
          await this.reinitialize(this.sessionId, this.latestHeaders);
          return;
        }
      } else {
        const filter = this.listenFilter();
        if (Object.keys(filter).length === 0) return;
        const params = { notifications: filter, _meta: this.envelope({}) };
        res = await this.send('POST', modernHeaders('subscriptions/listen', undefined, this.latestHeaders), JSON.stringify({ jsonrpc: '2.0', id: `keygate-listen-${this.nextId++}`, method: 'subscriptions/listen', params }), abort.signal, false);
      }
      if (res.statusCode !== 200) {
        res.resume();
        throw new Error(`HTTP ${res.statusCode}`);
      }
      this.streamRetry = 0;
      const parser = new SseParser();
      for await (const message of readMessages(res, parser)) {
        if (parser.lastEventId !== undefined) this.lastStreamEventId = parser.lastEventId;
        if (message.method === 'notifications/subscriptions/acknowledged') continue;
        if (message.method !== undefined && message.params?._meta && typeof message.params._meta === 'object' && SUBSCRIPTION_ID in message.params._meta) {
          const { [SUBSCRIPTION_ID]: _drop, ...meta } = message.params._meta as Record<string, unknown>;
          message.params = { ...message.params, _meta: meta };
          if (Object.keys(meta).length === 0) delete message.params._meta;
        }
        this.dispatch(message, undefined);
      }
    } catch (err) {
      if (abort.signal.aborted) return;
      this.deps.log.debug('stream of upstream %s ended: %s', this.upstream.id, (err as Error).message);
    }
    if (this.stream === handle && !abort.signal.aborted) {
      // Reconnect (2025: with Last-Event-ID, so the upstream replays what we missed).
      this.restartStream(Math.min(30_000, 250 * 2 ** this.streamRetry++));
    }
  }

  private listenFilter(): Record<string, unknown> {
    const filter: Record<string, unknown> = {};
    if (this.capabilities.tools?.listChanged) filter.toolsListChanged = true;
    if (this.capabilities.prompts?.listChanged) filter.promptsListChanged = true;
    if (this.capabilities.resources?.listChanged) filter.resourcesListChanged = true;
    if (this.capabilities.resources?.subscribe && this.subscriptions.size > 0) filter.resourceSubscriptions = [...this.subscriptions.keys()];
    return filter;
  }

  /** End the session (2025: DELETE) and every stream. */
  /** Stop listening and end a 2025 session at the upstream (DELETE): resolves once the upstream answered, or failed to. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.stopStream();
    if (this.era !== 'legacy' || this.sessionId === undefined) return Promise.resolve();
    const headers: OutgoingHttpHeaders = this.legacyHeaders(this.latestHeaders);
    delete headers['content-type'];
    return this.send('DELETE', headers, undefined, undefined).then(
      (res) => void res.resume(),
      () => undefined,
    );
  }

  private envelope(exchange: Pick<Exchange, 'clientInfo' | 'clientCapabilities' | 'logLevel'>): Record<string, unknown> {
    return {
      [PV]: MODERN_VERSION,
      [INFO]: exchange.clientInfo ?? this.deps.clientInfo,
      [CAPS]: exchange.clientCapabilities ?? {},
      ...(exchange.logLevel !== undefined && { [LOG_LEVEL]: exchange.logLevel }),
    };
  }

  private legacyHeaders(credential: Record<string, string>): OutgoingHttpHeaders {
    return legacyHeaders(this.protocolVersion, this.sessionId, credential);
  }

  /** One HTTP request over the upstream's pooled connections (upstream-transport.ts); resolves at the response headers. */
  private send(method: string, headers: OutgoingHttpHeaders, body: string | undefined, signal: Cancellable | undefined, timeout = true): Promise<UpstreamResponse> {
    return sendUpstream(this.upstream, { method, headers, body, signal, timeout });
  }
}

/** The JSON-RPC messages of a response: a JSON body (one message or a batch), or an SSE stream. */
export async function* readMessages(res: UpstreamResponse, parser = new SseParser()): AsyncGenerator<RpcMessage> {
  const type = responseHeader(res, 'content-type') ?? '';
  res.setEncoding('utf8');
  if (type.startsWith('text/event-stream')) {
    for await (const chunk of res as AsyncIterable<string>) {
      for (const event of parser.push(chunk)) {
        if (event.event !== 'message' || event.data === '') continue;
        const parsed = parseJson(event.data);
        if (parsed) yield* asMessages(parsed);
      }
    }
    return;
  }
  // A JSON answer (the usual tools/call): read by events, not by the stream's async iterator (a promise per chunk).
  const text = await readText(res);
  if (!type.includes('json') || text === '') return;
  const parsed = parseJson(text);
  if (parsed) yield* asMessages(parsed);
}

/**
 * A request's answer, as soon as it arrives (`isAnswer`: the others are handed to it as they come),
 * or undefined when the response ends without it. The response is read to its end either way, so
 * its keep-alive connection goes back to the pool (breaking off an SSE stream the upstream is about
 * to end would close it). By events: no async iterator, no promise per chunk.
 */
function readAnswer(res: UpstreamResponse, parser: SseParser, isAnswer: (message: RpcMessage) => boolean): Promise<RpcMessage | undefined> {
  const type = responseHeader(res, 'content-type') ?? '';
  const sse = type.startsWith('text/event-stream');
  res.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let answer: RpcMessage | undefined;
    let text = '';
    const take = (value: unknown) => {
      for (const message of asMessages(value)) if (!answer && isAnswer(message)) resolve((answer = message));
    };
    res.on('data', (chunk: string) => {
      if (!sse) return void (text += chunk);
      for (const event of parser.push(chunk)) if (!answer && event.event === 'message' && event.data !== '') take(parseJson(event.data));
    });
    res.once('end', () => {
      if (!sse && text !== '' && type.includes('json')) take(parseJson(text));
      resolve(answer);
    });
    res.once('error', reject);
    res.once('close', () => (res.readableEnded ? undefined : reject(new ResponseEndedEarly())));
  });
}

function readText(res: UpstreamResponse): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.on('data', (chunk: string) => (text += chunk));
    res.once('end', () => resolve(text));
    res.once('error', reject);
    res.once('close', () => (res.readableEnded ? undefined : reject(new ResponseEndedEarly())));
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function* asMessages(value: unknown): Generator<RpcMessage> {
  for (const item of Array.isArray(value) ? value : [value]) {
    if (item && typeof item === 'object' && (item as RpcMessage).jsonrpc === '2.0') yield item as RpcMessage;
  }
}
