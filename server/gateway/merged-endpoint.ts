import type { IncomingMessage, ServerResponse } from 'node:http';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { type AuthInfo, createMcpHandler, isInitializeRequest, isLegacyRequest, ResourceNotFoundError, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';
import { flushingResponse } from '../http/flushing-response.ts';
import { callerKey as callerKeyOf, type Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import type { Gateway } from '../catalog/catalog.ts';
import { CODES, type GatewayFailure } from '../catalog/failure.ts';
import { upstreamFailure } from './forward.ts';
import { failureResponse } from './jsonrpc.ts';
import { UpstreamError } from './upstream-client.ts';
import * as step from './steps.ts';
import { CallerState, type LegacySession } from './merged-caller.ts';
import { type MergedDeps, MergedHandlers, type RequestContext } from './merged-server.ts';
import { SessionEventStore } from './event-store.ts';
import { fastPathCandidate, tryFastPath } from './merged-fast-path.ts';
import { answerAsk, fastPathState, sessionFastPathCandidate, trySessionFastPath } from './merged-session-fast-path.ts';
import { callsIn, type RequestFacts } from './raw-policy.ts';
import type { RequestRecord } from './request-record.ts';
import type { RoamingSessions, SessionOrigin } from './roaming-sessions.ts';

// /mcp/{gateway}, the HTTP side: both protocol eras toward the client, on one
// path. 2025 traffic (initialize, then requests with Mcp-Session-Id, GET for
// the session's stream, DELETE to end it) is served by one SDK transport and
// server per session; the session is the caller's alone. 2026-07-28 traffic
// (stateless POSTs with the _meta envelope) goes to the caller's own
// createMcpHandler, which builds a server per request. subscriptions/listen
// streams make the gateway subscribe upstream for as long as they stay open.
// A 2025 session's id carries what any instance needs to serve it
// (roaming-sessions.ts): a request for a session this instance does not hold
// opens it here, replaying the client's initialize; the upstream sessions are
// this instance's own, pooled per identity (upstream-pool.ts).

const IDLE_MS = 10 * 60_000;
/** The URL of the client's initialize as replayed when a session is picked up (nothing fetches it). */
const PICK_UP_URL = 'http://keygate.invalid/mcp';


/** Streamable HTTP (2025): a request without a session, other than initialize. */
const SESSION_REQUIRED: GatewayFailure = { status: 400, code: CODES.serverError, step: 'gateway', reason: 'session_required', message: 'Bad Request: Mcp-Session-Id required (start with initialize)' };

export interface MergedRequest {
  gateway: Gateway;
  principal: Principal | undefined;
  record: RequestRecord;
  /** The caller lacks some scope of the gateway: each call (each request of a 2025 session too) is checked. */
  scopeLimited: boolean;
  /** The endpoint as a protected resource, for the insufficient_scope and sign-in challenges. */
  challenge: step.Challenge;
}

export class MergedEndpoint {
  readonly handlers: MergedHandlers;
  private readonly callers = new Map<string, CallerState>();
  private readonly sessions = new Map<string, LegacySession>();
  /** Sessions being picked up (opened here from their id), by caller and id, so that concurrent requests of one open it once. */
  private readonly opening = new Map<string, Promise<LegacySession | undefined>>();
  private readonly roaming: RoamingSessions;
  private readonly sweeper: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly version: string;

  constructor(deps: MergedDeps) {
    this.handlers = new MergedHandlers(deps);
    this.log = deps.log;
    this.version = deps.version;
    this.roaming = deps.roaming;
    this.sweeper = setInterval(() => this.sweep(), 60_000).unref();
    // A session ended (DELETE) on another instance: closed here too, should this one hold it.
    this.roaming.onEnded((nonce) => {
      for (const session of this.sessions.values()) {
        if (session.origin.n !== nonce) continue;
        this.endSession(session);
        void session.transport.close().catch(() => undefined);
      }
    });
  }

  /** The request, past the steps every request takes (mcp-endpoint.ts): refusals are thrown as GatewayError and answered there. */
  async handle(req: IncomingMessage, res: ServerResponse, request: MergedRequest): Promise<void> {
    const callerKey = callerKeyOf(request.principal);
    const caller = this.callerFor(request.gateway.id, callerKey, request.principal?.isClient ? undefined : request.principal?.subject);
    caller.lastUsed = Date.now();
    const rc: RequestContext = { principal: request.principal, headers: req.headers, record: request.record, caller, session: undefined, reached: {} };
    // The body is read and parsed once, here; everything after works on the parsed value.
    let parsed: unknown;
    if (req.method === 'POST') {
      const read = await step.read(req);
      parsed = read.value;
      // What the audit names when no handler does (initialize, notifications): the message's own method.
      const message = parsed as { method?: unknown; params?: { name?: unknown; uri?: unknown } } | undefined;
      if (typeof message?.method === 'string') {
        request.record.method = message.method;
        const name = message.params?.name ?? message.params?.uri;
        if (typeof name === 'string') request.record.name = name;
      }
      // A 2025 session's calls ride their own upstream connections: the per-call steps judge on those.
      const sid = req.headers['mcp-session-id'];
      const session = typeof sid === 'string' ? await this.session(sid, caller) : undefined;
      await this.judge({ ...rc, session }, request, parsed, read.facts.calls);
      if (fastPathCandidate(req) && (await tryFastPath(req, res, parsed, rc, this.handlers, { name: request.gateway.name, version: this.version }))) return;
      if (session) {
        if (answerAsk(res, parsed, session)) return;
        if (sessionFastPathCandidate(req, session) && (await trySessionFastPath(res, parsed, { ...rc, session }, this.handlers, () => this.legacy(webRequest(req), rc, parsed)))) return;
      }
    } else if (request.scopeLimited) {
      step.scope(request.gateway, request.principal, [], request.challenge.resourceMetadata, undefined);
    }
    const node = toNodeHandler({ fetch: (web: Request) => this.dispatch(web, rc, parsed) }, { onerror: (err) => this.log.error('/mcp/%s: %s', request.gateway.id, err.message) });
    await node(req, flushingResponse(res), parsed);
  }

  /**
   * The per-call steps of steps.ts for a request of one call naming a tool or
   * a prompt: the server it routes to (its upstream switched on), the scope,
   * the tool filter and policies, and the caller's credential there. A
   * refusal reads as it does on that server's raw endpoint. Lists, and calls
   * the gateway cannot route by name, are judged by the handlers as they go
   * (a refused server is left out of a list).
   */
  private async judge(rc: RequestContext, request: MergedRequest, parsed: unknown, calls: RequestFacts['calls']): Promise<void> {
    const single = !Array.isArray(parsed) && calls.length === 1 && calls[0]!.id !== null ? calls[0]! : undefined;
    const target = single && this.handlers.target(request.gateway.id, single.method, single.name);
    if (target) step.upstreamEnabled(target.a, single.id);
    if (request.scopeLimited) step.scope(request.gateway, request.principal, calls, request.challenge.resourceMetadata, calls[0]?.id ?? null);
    if (!target) return;
    rc.record.server = target.a.name;
    rc.record.upstream = target.a.upstream.id;
    step.policy(target.a, request.principal, [{ ...single, name: target.original }], rc.record, this.handlers.deps.tools);
    const reach = await this.handlers.reach(rc, target.a);
    if (reach.ok) {
      // forward, its first half: an upstream that cannot be reached (or refuses the credential) when the gateway
      // first connects to it answers 502/504 as on the raw endpoint. (Connected once, this costs nothing.)
      try {
        await reach.conn.connect(reach.headers);
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        step.refuse(upstreamFailure(err, target.a), single.id);
      }
      return;
    }
    // Not connected yet: the handlers answer with the placeholder's instructions, as the raw endpoint's stand-in does.
    if (reach.unconnected) return;
    step.credential(reach.failure, request.challenge, single.id);
  }

  private callerFor(gatewayId: string, callerKey: string, subject: string | undefined): CallerState {
    const key = `${gatewayId}\n${callerKey}`;
    let caller = this.callers.get(key);
    if (!caller) this.callers.set(key, (caller = new CallerState(gatewayId, callerKey, subject, this.log)));
    return caller;
  }

  /** Tell the callers a change affects (list_changed on their open 2025 sessions and listen streams). */
  listsChanged(affects: (caller: CallerState) => boolean): void {
    for (const caller of this.callers.values()) if (affects(caller)) caller.listsChanged();
  }

  private authInfo(rc: RequestContext): AuthInfo {
    // Pass-through to the handlers: the SDK never reads it.
    return { token: 'keygate', clientId: rc.principal?.clientId ?? 'anonymous', scopes: rc.principal?.scopes ?? [], extra: { keygate: rc } };
  }

  private async dispatch(web: Request, rc: RequestContext, body: unknown): Promise<Response> {
    if (web.method === 'GET' || web.method === 'DELETE') return this.legacy(web, rc, undefined);
    if (await isLegacyRequest(web, body)) return this.legacy(web, rc, body);
    return this.modern(web, rc, body);
  }

  private async legacy(web: Request, rc: RequestContext, body: unknown): Promise<Response> {
    const sid = web.headers.get('mcp-session-id');
    if (sid !== null) {
      const session = await this.session(sid, rc.caller);
      // A session is its caller's only: another caller presenting the id learns nothing.
      if (!session) {
        rc.record.outcome = step.UNKNOWN_SESSION.reason;
        return failureResponse(step.UNKNOWN_SESSION, step.idOf({ calls: callsIn(body), body: undefined }));
      }
      if (web.headers.has('last-event-id')) session.resumes = true;
      return session.transport.handleRequest(web, { ...(body !== undefined && { parsedBody: body }), authInfo: this.authInfo({ ...rc, session }) });
    }
    if (web.method !== 'POST' || !isInitializeRequest(body)) {
      rc.record.outcome = SESSION_REQUIRED.reason;
      return failureResponse(SESSION_REQUIRED, step.idOf({ calls: callsIn(body), body: undefined }));
    }
    const { id, origin } = this.roaming.mint(rc.caller.callerKey, rc.caller.gatewayId, (body as { params?: unknown }).params);
    const session = await this.open(rc.caller, id, origin);
    return session.transport.handleRequest(web, { parsedBody: body, authInfo: this.authInfo({ ...rc, session }) });
  }

  /** The caller's session with this id: held here, or picked up; undefined when it is no session of theirs. */
  private session(sid: string, caller: CallerState): LegacySession | undefined | Promise<LegacySession | undefined> {
    const held = this.sessions.get(sid);
    if (held) return held.caller === caller ? held : undefined;
    // By caller too: another caller presenting the id at the same moment neither shares nor spoils this pick-up.
    const key = `${caller.gatewayId}\n${caller.callerKey}\n${sid}`;
    let opening = this.opening.get(key);
    if (!opening) {
      opening = this.pickUp(sid, caller).finally(() => this.opening.delete(key));
      this.opening.set(key, opening);
    }
    return opening;
  }

  /**
   * A session this instance does not hold (begun on another, or before a
   * restart), opened from what its id carries: the client's initialize is
   * replayed to a new SDK server and transport under the same id (the answer,
   * which the client had long ago, is dropped), so the session has the
   * client's protocol version and capabilities as it began.
   */
  private async pickUp(sid: string, caller: CallerState): Promise<LegacySession | undefined> {
    const origin = await this.roaming.read(caller.callerKey, caller.gatewayId, sid);
    if (!origin) return undefined;
    const session = await this.open(caller, sid, origin);
    const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: origin.v, capabilities: origin.c, clientInfo: origin.i } };
    const replayed = new Request(PICK_UP_URL, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(initialize) });
    await (await session.transport.handleRequest(replayed, { parsedBody: initialize })).text();
    if (this.sessions.get(sid) === session) return session;
    await session.transport.close().catch(() => undefined);
    return undefined;
  }

  /** A session's SDK server and transport: a new one (its id minted from the initialize), or one picked up. */
  private async open(caller: CallerState, id: string, origin: SessionOrigin): Promise<LegacySession> {
    const session = { id: '', caller, origin, logLevel: undefined, subscriptions: new Map(), resumes: false, events: new SessionEventStore(), fast: fastPathState() } as unknown as LegacySession;
    session.server = this.handlers.buildServer(caller.gatewayId, session);
    session.transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      eventStore: session.events,
      onsessioninitialized: (sid) => {
        session.id = sid;
        this.sessions.set(sid, session);
        caller.sessions.add(session);
      },
      // DELETE: the session ends here, and is recorded as ended for every instance.
      onsessionclosed: async () => {
        this.endSession(session);
        await this.roaming.end(caller.gatewayId, origin).catch((err: Error) => this.log.warn('/mcp/%s: recording an ended session failed (other instances may still serve it): %s', caller.gatewayId, err.message));
      },
    });
    session.transport.onclose = () => this.endSession(session);
    primeOnlyWhenResuming(session);
    await session.server.connect(session.transport);
    return session;
  }

  private endSession(session: LegacySession): void {
    if (!this.sessions.delete(session.id)) return;
    session.caller.sessions.delete(session);
    for (const [uri, held] of session.subscriptions) void held.conn.unsubscribe(uri, held.headers).catch(() => undefined);
    session.subscriptions.clear();
  }

  private modernHandler(caller: CallerState) {
    caller.modern ??= createMcpHandler(() => this.handlers.buildServer(caller.gatewayId, undefined), {
      legacy: 'reject',
      onerror: (err) => this.log.debug('/mcp/%s (2026-07-28): %s', caller.gatewayId, err.message),
    });
    return caller.modern;
  }

  private async modern(web: Request, rc: RequestContext, body: unknown): Promise<Response> {
    const handler = this.modernHandler(rc.caller);
    const method = (body as { method?: unknown } | undefined)?.method;
    if (method !== 'subscriptions/listen') return handler.fetch(web, { authInfo: this.authInfo(rc), ...(body !== undefined && { parsedBody: body }) });
    return this.listen(web, rc, body, handler);
  }

  /** subscriptions/listen: subscribe upstream to the URIs asked for, and listen to every upstream, while the stream is open. */
  private async listen(web: Request, rc: RequestContext, body: unknown, handler: NonNullable<CallerState['modern']>): Promise<Response> {
    rc.record.method = 'subscriptions/listen';
    const filter = (body as { params?: { notifications?: { resourceSubscriptions?: unknown } } }).params?.notifications;
    const uris = Array.isArray(filter?.resourceSubscriptions) ? filter.resourceSubscriptions.filter((u): u is string => typeof u === 'string') : [];
    const held: { conn: import('./upstream-client.ts').UpstreamConnection; uri: string; headers: Record<string, string> }[] = [];
    const stub = { mcpReq: { signal: web.signal, envelope: {} } } as never;
    await this.handlers.watchAll(rc).catch(() => undefined);
    for (const uri of uris) {
      try {
        const a = await this.handlers.route(rc, stub, uri, 'subscribe');
        if (a instanceof ResourceNotFoundError) {
          this.log.debug('/mcp/%s: not subscribing to %s: %s', rc.caller.gatewayId, uri, a.message);
          continue;
        }
        const reach = await this.handlers.reach(rc, a);
        if (!reach.ok) continue;
        await reach.conn.connect(reach.headers);
        if (!reach.conn.capabilities.resources?.subscribe) continue;
        await reach.conn.subscribe(uri, reach.headers);
        held.push({ conn: reach.conn, uri, headers: reach.headers });
      } catch (err) {
        this.log.warn('/mcp/%s: subscribing to %s failed: %s', rc.caller.gatewayId, uri, (err as Error).message);
      }
    }
    rc.caller.openListens++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      rc.caller.openListens--;
      rc.caller.lastUsed = Date.now();
      for (const h of held) void h.conn.unsubscribe(h.uri, h.headers).catch(() => undefined);
    };
    web.signal.addEventListener('abort', release, { once: true });
    const response = await handler.fetch(web, { authInfo: this.authInfo(rc), parsedBody: body });
    if (!response.body) {
      release();
      return response;
    }
    const body$ = response.body.pipeThrough(new TransformStream({ flush: release }));
    return new Response(body$, { status: response.status, headers: response.headers });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, caller] of this.callers) {
      if (caller.idle && now - caller.lastUsed > IDLE_MS) {
        caller.close();
        this.callers.delete(key);
      }
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const session of this.sessions.values()) void session.transport.close().catch(() => undefined);
    for (const caller of this.callers.values()) caller.close();
    this.callers.clear();
  }
}

/**
 * The SDK opens every POST stream of a 2025-11-25 session with a priming
 * event (an id and empty data) so that the client may resume the stream if
 * the server closes it early, which this gateway never does. Clients that do
 * not resume gain nothing from it, and some trip over it (VS Code logs
 * `Failed to parse message: ""` for each one): it is sent only once the
 * session's client has shown that it resumes streams (sent Last-Event-ID).
 * Every real event still carries its id.
 */
function primeOnlyWhenResuming(session: LegacySession): void {
  const transport = session.transport as unknown as { writePrimingEvent?: (...args: unknown[]) => Promise<void> };
  const prime = transport.writePrimingEvent;
  if (typeof prime !== 'function') return;
  transport.writePrimingEvent = (...args: unknown[]) => (session.resumes ? prime.apply(transport, args) : Promise.resolve());
}

/** The request as the SDK transport reads it (its body is passed parsed). */
function webRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'content-length') continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, { method: req.method ?? 'POST', headers });
}
