import type { IncomingHttpHeaders } from 'node:http';
import {
  inputRequired,
  type InputRequiredResult,
  ProtocolError,
  type RequestStateCodec,
  ResourceNotFoundError,
  Server,
  type ServerContext,
  UriTemplate,
  UrlElicitationRequiredError,
} from '@modelcontextprotocol/server';
import type { Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import type { CredentialResolver } from '../vault/resolver.ts';
import { type Assignment, type CatalogHolder, type Gateway } from '../catalog/catalog.ts';
import { offered, policyDenial, policyFailure, toolOffered } from '../catalog/tool-policy.ts';
import { readClientCredentials } from './client-credentials.ts';
import { CODES, GatewayError, type GatewayFailure } from '../catalog/failure.ts';
import * as step from './steps.ts';
import type { CallerState, LegacySession } from './merged-caller.ts';
import { exposedName, NameBook } from './naming.ts';
import { routeUnlisted, type ServerResources } from './resource-routes.ts';
import type { RequestRecord } from './request-record.ts';
import type { RoamingSessions } from './roaming-sessions.ts';
import { type GatewayState, type PendingCall, type PendingCalls } from './round-trips.ts';
import {
  asUnconnected,
  CONNECT_TOOL,
  connectedResult,
  connectElicitation,
  connectToolError,
  isStalePlaceholder,
  placeholderTool,
  supportsUrlElicitation,
  type ToolCache,
  type ToolDefinition,
  type Unconnected,
} from './unconnected.ts';
import { type Exchange, type Implementation, type RequestId, type RpcMessage, type UpstreamConnection, UpstreamError } from './upstream-client.ts';
import { identityKey, type UpstreamPool } from './upstream-pool.ts';
import { upstreamFailure } from './upstream-transport.ts';

// /mcp/{gateway} as one MCP server: an SDK `Server` (one per 2025 session,
// one per 2026-07-28 request) whose handlers merge what every assignment the
// caller may use offers, and route each call to its assignment's upstream
// with the identity the resolver picks for this caller. Names are prefixed
// with the assignment (naming.ts); resource URIs stay as the upstream gave
// them and are routed by who listed them, or whose template matches
// (resource-routes.ts).

const ENVELOPE_CAPS = 'io.modelcontextprotocol/clientCapabilities';
const ENVELOPE_INFO = 'io.modelcontextprotocol/clientInfo';
const ENVELOPE_LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
const SERVER_INFO = 'io.modelcontextprotocol/serverInfo';
const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
const MAX_PAGES = 64;

/** What one client request brings to the handlers (passed through the SDK as authInfo.extra). */
export interface RequestContext {
  principal: Principal | undefined;
  headers: IncomingHttpHeaders;
  record: RequestRecord;
  caller: CallerState;
  session: LegacySession | undefined;
  /** The request's last reach(), shared by its copies: the steps judge a call, then a path serves it, with one credential lookup. */
  reached?: { a?: Assignment; session?: LegacySession | undefined; reach?: Reach } | undefined;
}

export interface MergedDeps {
  catalog: CatalogHolder;
  resolver: CredentialResolver;
  pool: UpstreamPool;
  tools: ToolCache;
  codec: RequestStateCodec<GatewayState>;
  pending: PendingCalls;
  /** What a 2025 session's id carries, for any instance to pick it up; sessions ended everywhere. */
  roaming: RoamingSessions;
  log: Logger;
  version: string;
}

type Reach =
  | { ok: true; a: Assignment; conn: UpstreamConnection; headers: Record<string, string>; identity: string | undefined }
  | { ok: false; a: Assignment; failure: GatewayFailure; unconnected: Unconnected | undefined };

/** Where the 2025 fast path sends a tools/call. */
export interface FastRoute {
  original: string;
  reach: Extract<Reach, { ok: true }>;
}

/** What the client is, per era: the 2025 session's initialize, or the 2026-07-28 request's envelope. */
interface ClientView {
  modern: boolean;
  capabilities: Record<string, unknown>;
  info: Implementation | undefined;
  logLevel: string | undefined;
}

function failureError(failure: GatewayFailure, extra: Record<string, unknown> = {}): ProtocolError {
  return new ProtocolError(failure.code, failure.message, { step: failure.step, reason: failure.reason, ...extra });
}

/** A 2026-07-28 result's wire-only members are the gateway's to set, not the upstream's. */
function clean(result: Record<string, unknown> | undefined): Record<string, any> {
  if (!result) return {};
  const { resultType: _r, ttlMs: _t, cacheScope: _c, ...rest } = result;
  const meta = rest._meta as Record<string, unknown> | undefined;
  if (meta && SERVER_INFO in meta) {
    const { [SERVER_INFO]: _s, ...others } = meta;
    if (Object.keys(others).length) rest._meta = others;
    else delete rest._meta;
  }
  return rest;
}

const MULTI_ROUND_TRIP = new Set(['tools/call', 'prompts/get', 'resources/read']);

export class MergedHandlers {
  private readonly books = new Map<string, NameBook>();

  constructor(readonly deps: MergedDeps) {}

  book(gateway: string): NameBook {
    let book = this.books.get(gateway);
    if (!book) this.books.set(gateway, (book = new NameBook()));
    return book;
  }

  /** The assignment a tools/call or prompts/get names (by its merged name), and the upstream's own name. */
  target(gatewayId: string, method: string, name: string | undefined): { a: Assignment; original: string } | undefined {
    if ((method !== 'tools/call' && method !== 'prompts/get') || name === undefined) return undefined;
    const gateway = this.deps.catalog.current.gateways.get(gatewayId);
    const alias = gateway && this.book(gateway.id).resolve(name, gateway.servers.values());
    const a = alias && gateway.servers.get(alias.assignment);
    return a ? { a, original: alias.original } : undefined;
  }

  gateway(rc: RequestContext): Gateway {
    const gateway = this.deps.catalog.current.gateways.get(rc.caller.gatewayId);
    if (!gateway) throw new ProtocolError(CODES.notFound, `there is no gateway "${rc.caller.gatewayId}"`, { step: 'gateway', reason: 'unknown_gateway' });
    return gateway;
  }

  /** Steps 3-4 for one assignment: the upstream, the identity and its headers, and the pooled connection. */
  async reach(rc: RequestContext, a: Assignment): Promise<Reach> {
    const memo = rc.reached;
    if (memo?.reach && memo.a === a && memo.session === rc.session) return memo.reach;
    const reach = await this.reachNow(rc, a);
    if (memo) {
      memo.a = a;
      memo.session = rc.session;
      memo.reach = reach;
    }
    return reach;
  }

  private async reachNow(rc: RequestContext, a: Assignment): Promise<Reach> {
    if (a.upstream.disabled) {
      return { ok: false, a, unconnected: undefined, failure: step.upstreamDisabled(a) };
    }
    const resolving = this.deps.resolver.resolveNow(rc.principal, a, readClientCredentials(rc.headers, a.name));
    const resolved = resolving instanceof Promise ? await resolving : resolving;
    if (!resolved.ok) return { ok: false, a, failure: resolved.failure, unconnected: asUnconnected(resolved.failure, resolved.connectUrl) };
    // A 2025 session's calls ride a 2025 session upstream where the upstream speaks both eras (upstream-pool.ts).
    const conn = this.deps.pool.get(a.upstream, identityKey(resolved.identity?.id, resolved.headers), rc.session ? 'legacy' : undefined);
    rc.caller.watch(a.name, conn, rc.session ? 'sessions' : 'listeners');
    return { ok: true, a, conn, headers: resolved.headers, identity: resolved.identity?.id };
  }

  client(rc: RequestContext, ctx: ServerContext): ClientView {
    if (rc.session) {
      return { modern: false, capabilities: (rc.session.server.getClientCapabilities() ?? {}) as Record<string, unknown>, info: rc.session.server.getClientVersion(), logLevel: rc.session.logLevel };
    }
    const envelope = (ctx.mcpReq.envelope ?? {}) as Record<string, unknown>;
    return {
      modern: true,
      capabilities: (envelope[ENVELOPE_CAPS] ?? {}) as Record<string, unknown>,
      info: envelope[ENVELOPE_INFO] as Implementation | undefined,
      logLevel: envelope[ENVELOPE_LOG_LEVEL] as string | undefined,
    };
  }

  private note(rc: RequestContext, method: string, name: string | undefined, a?: Assignment): void {
    rc.record.method = method;
    rc.record.name = name;
    if (a) {
      rc.record.server = a.name;
      rc.record.upstream = a.upstream.id;
    }
  }

  /** Notifications on a call's stream go to the client's request; log messages only at or above its level. */
  private relay(rc: RequestContext, ctx: ServerContext, view: ClientView, a: Assignment): (message: RpcMessage) => void {
    return (message) => {
      if (message.method === 'notifications/progress') {
        void ctx.mcpReq.notify({ method: message.method, params: message.params ?? {} }).catch(() => undefined);
      } else if (message.method === 'notifications/message') {
        const level = String(message.params?.level ?? 'info');
        // 2026-07-28: log messages only for a request that asked for them; 2025: the session's level.
        if (view.modern && view.logLevel === undefined) return;
        if (view.logLevel !== undefined && LEVELS.indexOf(level) < LEVELS.indexOf(view.logLevel)) return;
        void ctx.mcpReq.notify({ method: message.method, params: message.params ?? {} }).catch(() => undefined);
      } else if (message.method) {
        rc.caller.onUpstream(a.name, message);
      }
    };
  }

  private exchange(rc: RequestContext, ctx: ServerContext, reach: Extract<Reach, { ok: true }>, view: ClientView): Exchange {
    return {
      headers: reach.headers,
      signal: ctx.mcpReq.signal,
      onNotification: this.relay(rc, ctx, view, reach.a),
      // 2025 client: the upstream's server-to-client requests go to it as they are.
      onRequest: view.modern
        ? undefined
        : async (message) => {
            try {
              const result = await ctx.mcpReq.send({ method: message.method as 'elicitation/create', params: message.params ?? {} });
              return { result: result as Record<string, unknown> };
            } catch (err) {
              const e = err as { code?: unknown; message: string; data?: unknown };
              return { error: { code: typeof e.code === 'number' ? e.code : CODES.internalError, message: e.message, ...(e.data !== undefined && { data: e.data }) } };
            }
          },
      clientInfo: view.info,
      clientCapabilities: view.capabilities,
      logLevel: view.logLevel,
    };
  }

  /** Every page of a list method of one assignment. */
  private async listAll(reach: Extract<Reach, { ok: true }>, method: string, key: string, rc: RequestContext, ctx: ServerContext): Promise<Record<string, any>[]> {
    const view = this.client(rc, ctx);
    const items: Record<string, any>[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const answer = await reach.conn.request(method, cursor === undefined ? undefined : { cursor }, { ...this.exchange(rc, ctx, reach, view), onRequest: undefined });
      if (answer.error) throw new ProtocolError(answer.error.code, answer.error.message, answer.error.data);
      const list = answer.result?.[key];
      if (Array.isArray(list)) items.push(...(list as Record<string, any>[]));
      cursor = typeof answer.result?.nextCursor === 'string' ? answer.result.nextCursor : undefined;
      if (cursor === undefined) break;
    }
    return items;
  }

  /** Each reachable assignment's list, merged; an assignment that fails is left out (and logged), never the whole list. */
  private async merge<T>(rc: RequestContext, ctx: ServerContext, capability: string, each: (reach: Extract<Reach, { ok: true }>) => Promise<T[]>, unreachable?: (reach: Extract<Reach, { ok: false }>) => T[]): Promise<T[]> {
    const gateway = this.gateway(rc);
    const lists = await Promise.all(
      [...gateway.servers.values()].map(async (a) => {
        try {
          const reach = await this.reach(rc, a);
          if (!reach.ok) return unreachable?.(reach) ?? [];
          await reach.conn.connect(reach.headers);
          if (!reach.conn.capabilities[capability]) return [];
          return await each(reach);
        } catch (err) {
          this.deps.log.warn('/mcp/%s: listing %s of "%s" failed: %s', gateway.id, capability, a.name, (err as Error).message);
          return [];
        }
      }),
    );
    return lists.flat();
  }

  async listTools(rc: RequestContext, ctx: ServerContext): Promise<{ tools: ToolDefinition[] }> {
    this.note(rc, 'tools/list', undefined);
    const book = this.book(rc.caller.gatewayId);
    const all = [...this.gateway(rc).servers.values()];
    const expose = (a: Assignment) => (tools: ToolDefinition[]) => this.exposed(rc, a, tools, (t) => book.expose(a, t.name, all));
    const tools = await this.merge<ToolDefinition>(
      rc,
      ctx,
      'tools',
      async (reach) => {
        const listed = (await this.listAll(reach, 'tools/list', 'tools', rc, ctx)) as ToolDefinition[];
        this.deps.tools.remember(reach.a.upstream.id, listed);
        // Hidden: what the filter leaves out, and what a policy denies this caller.
        return expose(reach.a)(listed.filter((t) => toolOffered(reach.a, rc.principal, t.name)));
      },
      (reach) => {
        if (!reach.unconnected) {
          this.deps.log.warn('/mcp/%s: the tools of "%s" are left out: %s', rc.caller.gatewayId, reach.a.name, reach.failure.message);
          return [];
        }
        // Not connected yet: the tools as last seen at the upstream, else a placeholder that says how to connect.
        const cached = this.deps.tools.get(reach.a.upstream.id)?.filter((t) => toolOffered(reach.a, rc.principal, t.name));
        if (cached?.length) return expose(reach.a)(cached);
        const placeholder = book.expose(reach.a, CONNECT_TOOL, all);
        return placeholder === undefined ? [] : [placeholderTool(placeholder, reach.a.upstream.name, reach.unconnected)];
      },
    );
    return { tools };
  }

  /** Items under their merged names; one whose name would be another server's is left out (naming.ts), and logged. */
  private exposed<T extends { name: string }>(rc: RequestContext, a: Assignment, items: T[], name: (item: T) => string | undefined): T[] {
    return items.flatMap((item) => {
      const exposed = name(item);
      if (exposed !== undefined) return [{ ...item, name: exposed }];
      this.deps.log.warn('/mcp/%s: "%s" of server "%s" is left out: the name belongs to another server of the gateway', rc.caller.gatewayId, item.name, a.name);
      return [];
    });
  }

  async callTool(request: { params: { name: string; [k: string]: unknown } }, rc: RequestContext, ctx: ServerContext): Promise<Record<string, unknown>> {
    const { name } = request.params;
    const gateway = this.gateway(rc);
    const alias = this.book(gateway.id).resolve(name, gateway.servers.values());
    const a = alias && gateway.servers.get(alias.assignment);
    // The audit names the assignment (server) and the upstream's own tool name.
    this.note(rc, 'tools/call', a ? alias.original : name, a);
    if (!alias || !a) {
      rc.record.outcome = 'unknown_tool';
      throw new ProtocolError(CODES.invalidParams, `Unknown tool: ${name}`);
    }
    if (isStalePlaceholder(this.deps.tools, a, alias.original)) {
      const reach = await this.reach(rc, a);
      // Still not connected: the placeholder says how (below). Connected since the client listed it: answered here, and the lists are new.
      if (!reach.ok) return this.routed(rc, ctx, a, 'tools/call', { ...request.params, name: alias.original });
      rc.record.outcome = 'already_connected';
      rc.caller.listsChanged();
      return connectedResult(a.upstream.name);
    }
    // The filter and the policies, as on the raw endpoint (a call the endpoint judged before never gets here refused).
    try {
      step.policy(a, rc.principal, [{ method: 'tools/call', name: alias.original, id: null }], rc.record, this.deps.tools);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      this.refused(rc, err.failure);
    }
    return this.routed(rc, ctx, a, 'tools/call', { ...request.params, name: alias.original });
  }

  /**
   * The 2025 session fast path's route for a tools/call (merged-session-fast-path.ts): the
   * assignment's reach and the upstream's own tool name; undefined for whatever callTool
   * answers otherwise (an unknown, filtered or denied tool, an identity not connected, a
   * disabled upstream), so the SDK path gives that answer; undefined too while the pooled
   * connection has not learnt its upstream's era (the SDK path connects it).
   */
  async fastRoute(rc: RequestContext, name: string): Promise<FastRoute | undefined> {
    const gateway = this.deps.catalog.current.gateways.get(rc.caller.gatewayId);
    const alias = gateway && this.book(gateway.id).resolve(name, gateway.servers.values());
    const a = alias && gateway.servers.get(alias.assignment);
    // The placeholder tool (connected since, or not yet): the SDK path answers it, as every refusal.
    if (!alias || !a || alias.original === CONNECT_TOOL || !toolOffered(a, rc.principal, alias.original)) return undefined;
    const reach = await this.reach(rc, a);
    return reach.ok && reach.conn.era !== undefined ? { original: alias.original, reach } : undefined;
  }

  /**
   * The fast path's call: what `routed` does for a 2025 client, as the JSON-RPC message the SDK
   * server would send; or, when a 2026-07-28 upstream answers input_required, that answer for
   * the SDK path to take over with (its server turns the rounds into real requests to the client).
   */
  async fastCall(rc: RequestContext, ctx: ServerContext, route: FastRoute, params: Record<string, unknown>, id: RequestId): Promise<{ message: RpcMessage; status: number } | { inputRequired: RpcMessage }> {
    const { reach } = route;
    this.note(rc, 'tools/call', route.original, reach.a);
    rc.record.identity = reach.identity;
    try {
      await reach.conn.connect(reach.headers);
      const answer = await reach.conn.request('tools/call', params, this.exchange(rc, ctx, reach, this.client(rc, ctx)));
      if (answer.result?.resultType === 'input_required') return { inputRequired: answer };
      return { message: { jsonrpc: '2.0', id, result: await this.answer(answer, rc, reach) }, status: 200 };
    } catch (err) {
      // The upstream failed: its HTTP status, as on the raw endpoint (when the answer has not started streaming).
      const status = err instanceof UpstreamError ? upstreamFailure(err, reach.a).status : 200;
      // As the SDK server words a thrown error (its 2025 codec sends -32002 as -32602).
      const e = this.upstreamFailure(err, rc, reach.a) as { code?: unknown; message?: string; data?: unknown };
      const code = typeof e.code === 'number' && Number.isSafeInteger(e.code) ? e.code : CODES.internalError;
      return { message: { jsonrpc: '2.0', id, error: { code: code === CODES.resourceNotFound ? CODES.invalidParams : code, message: e.message ?? 'Internal error', ...(e.data !== undefined && { data: e.data }) } }, status };
    }
  }

  /** A request routed to one assignment: identity, then forwarding (with the multi-round-trip cases). */
  private async routed(rc: RequestContext, ctx: ServerContext, a: Assignment, method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const state = ctx.mcpReq.requestState<GatewayState>();
    if (state !== undefined && (typeof state !== 'object' || state.c !== rc.caller.callerKey || state.a !== a.name)) {
      throw new ProtocolError(CODES.invalidParams, 'Invalid or expired requestState');
    }
    const view = this.client(rc, ctx);
    const reach = await this.reach(rc, a);
    if (!reach.ok) {
      if (reach.unconnected) return this.unconnected(reach.unconnected, rc, view, a, method, state);
      rc.record.outcome = reach.failure.reason;
      throw failureError(reach.failure);
    }
    rc.record.identity = reach.identity;
    try {
      await reach.conn.connect(reach.headers);
      if (state?.k === 'pending') return await this.resume(state, rc, ctx, reach);
      let forwarded = params;
      if (state?.k === 'upstream') {
        const responses = ctx.mcpReq.inputResponses;
        forwarded = { ...params, ...(responses !== undefined && { inputResponses: responses }), ...(state.s !== undefined && { requestState: state.s }) };
      }
      // A 2025 upstream may ask the client things mid-call; a 2026-07-28 client can only answer between rounds.
      if (view.modern && reach.conn.era === 'legacy' && MULTI_ROUND_TRIP.has(method)) return await this.hold(rc, ctx, reach, view, method, forwarded);
      // The fast path's first round, handed over (merged-session-fast-path.ts): the upstream is not asked twice.
      const handedOver = state === undefined ? rc.session?.fast.handedOver.get(ctx.mcpReq.id) : undefined;
      if (handedOver) rc.session!.fast.handedOver.delete(ctx.mcpReq.id);
      const answer = handedOver ?? (await reach.conn.request(method, forwarded, this.exchange(rc, ctx, reach, view)));
      return await this.answer(answer, rc, reach);
    } catch (err) {
      throw this.upstreamFailure(err, rc, a);
    }
  }

  /** An UpstreamError as every path answers it (upstream-transport.ts), thrown as the SDK server words it. */
  upstreamFailure(err: unknown, rc: RequestContext, a: Assignment): unknown {
    if (!(err instanceof UpstreamError)) return err;
    rc.record.outcome = err.reason;
    return failureError(upstreamFailure(err, a));
  }

  async answer(answer: RpcMessage, rc: RequestContext, reach: Extract<Reach, { ok: true }>): Promise<Record<string, unknown>> {
    if (answer.error) {
      rc.record.outcome = 'upstream_error';
      throw new ProtocolError(answer.error.code, answer.error.message, answer.error.data);
    }
    const result = answer.result ?? {};
    if (result.resultType === 'input_required') {
      // The upstream's embedded requests go to the client as they are; its requestState rides inside ours.
      const requests = result.inputRequests as Record<string, any> | undefined;
      const state: GatewayState = { k: 'upstream', c: rc.caller.callerKey, a: reach.a.name, s: typeof result.requestState === 'string' ? result.requestState : undefined };
      return inputRequired({ ...(requests !== undefined && { inputRequests: requests }), requestState: await this.deps.codec.mint(state) }) as unknown as Record<string, unknown>;
    }
    return clean(result);
  }

  /** 2026-07-28 client, 2025 upstream: hold the upstream call; its server-to-client requests become rounds. */
  private async hold(rc: RequestContext, ctx: ServerContext, reach: Extract<Reach, { ok: true }>, view: ClientView, method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    let call: PendingCall | undefined;
    const capable = (m: RpcMessage) =>
      m.method === 'sampling/createMessage' ? view.capabilities.sampling !== undefined : m.method === 'roots/list' ? view.capabilities.roots !== undefined : m.method === 'elicitation/create' ? view.capabilities.elicitation !== undefined : false;
    call = this.deps.pending.start(rc.caller.callerKey, reach.a.name, (ask: (m: RpcMessage) => Promise<Pick<RpcMessage, 'result' | 'error'>>, signal: AbortSignal) =>
      reach.conn.request(method, params, {
        ...this.exchange(rc, ctx, reach, view),
        signal,
        onNotification: (m) => call?.relay?.(m),
        onRequest: (m) => (capable(m) ? ask(m) : Promise.resolve({ error: { code: CODES.methodNotFound, message: `the client did not declare support for ${m.method}` } })),
      }),
    );
    return this.round(call, rc, ctx, reach, view);
  }

  private async resume(state: Extract<GatewayState, { k: 'pending' }>, rc: RequestContext, ctx: ServerContext, reach: Extract<Reach, { ok: true }>): Promise<Record<string, unknown>> {
    const call = this.deps.pending.get(state.p, rc.caller.callerKey);
    if (!call) throw new ProtocolError(CODES.invalidParams, 'Invalid or expired requestState: the held call is over; call again');
    call.respond(ctx.mcpReq.inputResponses);
    return this.round(call, rc, ctx, reach, this.client(rc, ctx));
  }

  private async round(call: PendingCall, rc: RequestContext, ctx: ServerContext, reach: Extract<Reach, { ok: true }>, view: ClientView): Promise<Record<string, unknown>> {
    call.relay = this.relay(rc, ctx, view, reach.a);
    try {
      const next = await call.next(ctx.mcpReq.signal);
      if ('answer' in next) {
        this.deps.pending.finish(call);
        return await this.answer(next.answer, rc, reach);
      }
      const state: GatewayState = { k: 'pending', c: rc.caller.callerKey, a: reach.a.name, p: call.id };
      return inputRequired({ inputRequests: next.input as never, requestState: await this.deps.codec.mint(state) }) as unknown as Record<string, unknown>;
    } finally {
      call.relay = undefined;
    }
  }

  /** A per-user server the caller has not connected: the connect URL, in the form the client can act on. */
  private async unconnected(u: Unconnected, rc: RequestContext, view: ClientView, a: Assignment, method: string, state: GatewayState | undefined): Promise<Record<string, unknown>> {
    rc.record.outcome = u.reason;
    const url = u.connectUrl;
    if (url !== undefined && supportsUrlElicitation(view.capabilities)) {
      if (view.modern) {
        if (state?.k !== 'connect') {
          const next: GatewayState = { k: 'connect', c: rc.caller.callerKey, a: a.name };
          return inputRequired({ inputRequests: { connect: inputRequired.elicitUrl({ message: u.message, url }) }, requestState: await this.deps.codec.mint(next) }) as unknown as Record<string, unknown>;
        }
      } else {
        // MCP 2025-11-25: URLElicitationRequiredError (-32042) asks the client to open the URL, then retry.
        throw new UrlElicitationRequiredError([connectElicitation({ ...u, connectUrl: url })], u.message);
      }
    }
    if (method === 'tools/call') return connectToolError(u);
    throw new ProtocolError(CODES.credential, u.message, { step: 'vault', reason: u.reason, ...(url !== undefined && { connect_url: url }) });
  }

  // ---- resources ----

  async listResources(rc: RequestContext, ctx: ServerContext): Promise<{ resources: Record<string, unknown>[] }> {
    this.note(rc, 'resources/list', undefined);
    const seen = new Set<string>();
    const lists = await this.merge(rc, ctx, 'resources', async (reach) => {
      const listed = await this.listAll(reach, 'resources/list', 'resources', rc, ctx);
      // Hidden: what a policy denies this caller (as on the raw endpoint).
      return listed.filter((r) => offered(reach.a, rc.principal, 'resource', String(r.uri))).map((r) => ({ r, a: reach.a.name, prefix: reach.a.prefix }));
    });
    const resources: Record<string, unknown>[] = [];
    for (const { r, a, prefix } of lists) {
      if (typeof r.uri !== 'string' || seen.has(r.uri)) continue; // one URI, one route: the first assignment that lists it
      seen.add(r.uri);
      rc.caller.routes.set(r.uri, a);
      resources.push({ ...r, name: exposedName(prefix, String(r.name ?? r.uri)) });
    }
    return { resources };
  }

  async listTemplates(rc: RequestContext, ctx: ServerContext): Promise<{ resourceTemplates: Record<string, unknown>[] }> {
    this.note(rc, 'resources/templates/list', undefined);
    const lists = await this.merge(rc, ctx, 'resources', async (reach) => {
      const listed = await this.listAll(reach, 'resources/templates/list', 'resourceTemplates', rc, ctx);
      return listed.filter((t) => offered(reach.a, rc.principal, 'resource', String(t.uriTemplate))).map((t) => ({ t, a: reach.a.name, prefix: reach.a.prefix }));
    });
    rc.caller.templates = [];
    const out: Record<string, unknown>[] = [];
    for (const { t, a, prefix } of lists) {
      if (typeof t.uriTemplate !== 'string') continue;
      try {
        rc.caller.templates.push({ assignment: a, uriTemplate: t.uriTemplate, matcher: new UriTemplate(t.uriTemplate) });
      } catch {
        continue;
      }
      out.push({ ...t, name: exposedName(prefix, String(t.name ?? t.uriTemplate)) });
    }
    return { resourceTemplates: out };
  }

  /**
   * Which assignment serves a URI (resource-routes.ts): the one that listed it, else the first whose
   * template matches, else, for a URI nobody listed, the one server that can serve `need` (by its
   * capabilities, then the URI's scheme and authority). A URI no rule places: resource not found, saying why.
   */
  async route(rc: RequestContext, ctx: ServerContext, uri: string, need: 'read' | 'subscribe' = 'read'): Promise<Assignment | ResourceNotFoundError> {
    const gateway = this.gateway(rc);
    const find = () => {
      const listed = rc.caller.routes.get(uri);
      if (listed !== undefined) return gateway.servers.get(listed);
      const t = rc.caller.templates.find((x) => x.matcher.match(uri) !== null);
      return t && gateway.servers.get(t.assignment);
    };
    let a = find();
    if (!a && !rc.caller.routesFilled) {
      // A fresh gateway process, or a client that never listed: learn the routes now.
      rc.caller.routesFilled = true;
      const record = { ...rc.record };
      await Promise.all([this.listResources(rc, ctx), this.listTemplates(rc, ctx)]);
      Object.assign(rc.record, record);
      a = find();
    }
    if (a) return a;
    // Not listed, no template: the servers this caller reaches that can serve the request.
    const serving = await Promise.all(
      [...gateway.servers.values()].map(async (s): Promise<ServerResources | undefined> => {
        try {
          const reach = await this.reach(rc, s);
          if (!reach.ok) return undefined;
          await reach.conn.connect(reach.headers);
          const resources = reach.conn.capabilities.resources;
          if (!resources || (need === 'subscribe' && !resources.subscribe)) return undefined;
        } catch {
          return undefined;
        }
        const uris = [...rc.caller.routes].filter(([, name]) => name === s.name).map(([u]) => u);
        return { name: s.name, uris, templates: rc.caller.templates.filter((t) => t.assignment === s.name).map((t) => t.uriTemplate) };
      }),
    );
    const routed = routeUnlisted(uri, serving.filter((s) => s !== undefined), need === 'subscribe' ? 'support subscriptions' : 'offer resources');
    if ('server' in routed) return gateway.servers.get(routed.server)!;
    // The SDK's resource-not-found: -32602 with data exactly { uri } (every revision).
    return new ResourceNotFoundError(uri, `Resource not found: ${routed.refused}`);
  }

  async readResource(request: { params: { uri: string; [k: string]: unknown } }, rc: RequestContext, ctx: ServerContext): Promise<Record<string, unknown>> {
    const { uri } = request.params;
    const a = await this.route(rc, ctx, uri);
    if (a instanceof ResourceNotFoundError) {
      this.note(rc, 'resources/read', uri);
      rc.record.outcome = 'unknown_resource';
      throw a;
    }
    this.note(rc, 'resources/read', uri, a);
    this.judge(rc, a, 'resource', uri);
    return this.routed(rc, ctx, a, 'resources/read', request.params);
  }

  async subscribe(request: { params: { uri: string } }, rc: RequestContext, ctx: ServerContext, on: boolean): Promise<Record<string, never>> {
    const { uri } = request.params;
    const session = rc.session;
    const held = session?.subscriptions.get(uri);
    if (!on && held) {
      this.note(rc, 'resources/unsubscribe', uri);
      session!.subscriptions.delete(uri);
      await held.conn.unsubscribe(uri, held.headers);
      return {};
    }
    const a = await this.route(rc, ctx, uri, 'subscribe');
    this.note(rc, on ? 'resources/subscribe' : 'resources/unsubscribe', uri, a instanceof ResourceNotFoundError ? undefined : a);
    if (!session || !on) return {};
    if (a instanceof ResourceNotFoundError) {
      rc.record.outcome = 'unknown_resource';
      throw a;
    }
    this.judge(rc, a, 'resource', uri);
    const reach = await this.reach(rc, a);
    if (!reach.ok) {
      rc.record.outcome = reach.failure.reason;
      throw failureError(reach.failure);
    }
    if (session.subscriptions.has(uri)) return {};
    try {
      await reach.conn.connect(reach.headers);
      if (!reach.conn.capabilities.resources?.subscribe) throw new ProtocolError(CODES.methodNotFound, `server "${a.name}" does not support resource subscriptions`);
      await reach.conn.subscribe(uri, reach.headers);
    } catch (err) {
      const rpc = (err as { rpc?: { code: number; message: string; data?: unknown } }).rpc;
      if (rpc) throw new ProtocolError(rpc.code, rpc.message, rpc.data);
      throw this.upstreamFailure(err, rc, a);
    }
    session.subscriptions.set(uri, { conn: reach.conn, headers: reach.headers });
    return {};
  }

  // ---- prompts ----

  async listPrompts(rc: RequestContext, ctx: ServerContext): Promise<{ prompts: Record<string, unknown>[] }> {
    this.note(rc, 'prompts/list', undefined);
    const book = this.book(rc.caller.gatewayId);
    const all = [...this.gateway(rc).servers.values()];
    const prompts = await this.merge(rc, ctx, 'prompts', async (reach) => {
      const listed = await this.listAll(reach, 'prompts/list', 'prompts', rc, ctx);
      const shown = listed.filter((p) => typeof p.name === 'string' && offered(reach.a, rc.principal, 'prompt', p.name)) as { name: string }[];
      return this.exposed(rc, reach.a, shown, (p) => book.expose(reach.a, p.name, all));
    });
    return { prompts };
  }

  async getPrompt(request: { params: { name: string; [k: string]: unknown } }, rc: RequestContext, ctx: ServerContext): Promise<Record<string, unknown>> {
    const gateway = this.gateway(rc);
    const alias = this.book(gateway.id).resolve(request.params.name, gateway.servers.values());
    const a = alias && gateway.servers.get(alias.assignment);
    this.note(rc, 'prompts/get', a ? alias.original : request.params.name, a);
    if (!alias || !a) {
      rc.record.outcome = 'unknown_prompt';
      throw new ProtocolError(CODES.invalidParams, `Unknown prompt: ${request.params.name}`);
    }
    this.judge(rc, a, 'prompt', alias.original);
    return this.routed(rc, ctx, a, 'prompts/get', { ...request.params, name: alias.original });
  }

  /** The assignment's policies on a prompt or a resource, as on the raw endpoint: a denial is the rule's JSON-RPC error, and the audit names the rule. */
  private judge(rc: RequestContext, a: Assignment, kind: 'prompt' | 'resource', name: string): void {
    const rule = policyDenial(a, rc.principal, name, kind);
    if (rule) this.refused(rc, policyFailure(a, name, rule, kind));
  }

  /** A policy refusal on the SDK path: the audit's outcome and rule, and the JSON-RPC error the client gets. */
  private refused(rc: RequestContext, failure: GatewayFailure): never {
    rc.record.outcome = failure.reason;
    rc.record.rule = failure.rule;
    throw failureError(failure);
  }

  async complete(request: { params: { ref: { type: string; name?: string; uri?: string }; [k: string]: unknown } }, rc: RequestContext, ctx: ServerContext): Promise<Record<string, unknown>> {
    const gateway = this.gateway(rc);
    const { ref } = request.params;
    let a: Assignment | undefined;
    let params: Record<string, unknown> = request.params;
    if (ref.type === 'ref/prompt' && typeof ref.name === 'string') {
      const alias = this.book(gateway.id).resolve(ref.name, gateway.servers.values());
      a = alias && gateway.servers.get(alias.assignment);
      if (alias) params = { ...request.params, ref: { ...ref, name: alias.original } };
    } else if (ref.type === 'ref/resource' && typeof ref.uri === 'string') {
      const uri = ref.uri;
      const t = rc.caller.templates.find((x) => x.uriTemplate === uri);
      const routed = t ? gateway.servers.get(t.assignment) : await this.route(rc, ctx, uri);
      a = routed instanceof ResourceNotFoundError ? undefined : routed;
    }
    this.note(rc, 'completion/complete', ref.name ?? ref.uri, a);
    if (!a) return { completion: { values: [], hasMore: false } };
    // Completions of a prompt or resource the caller may not use are refused as its use is.
    const named = params.ref as { name?: string; uri?: string };
    this.judge(rc, a, ref.type === 'ref/prompt' ? 'prompt' : 'resource', (ref.type === 'ref/prompt' ? named.name : named.uri) ?? '');
    return this.routed(rc, ctx, a, 'completion/complete', params);
  }

  /** 2025 logging/setLevel: the session's level, and each of its upstreams that logs is told too. */
  async setLevel(request: { params: { level: string } }, rc: RequestContext, ctx: ServerContext): Promise<Record<string, never>> {
    this.note(rc, 'logging/setLevel', request.params.level);
    if (rc.session) rc.session.logLevel = request.params.level;
    const gateway = this.gateway(rc);
    const view = this.client(rc, ctx);
    await Promise.all(
      [...gateway.servers.values()].map(async (a) => {
        const reach = await this.reach(rc, a).catch(() => undefined);
        if (!reach?.ok) return;
        try {
          await reach.conn.connect(reach.headers);
          if (reach.conn.era === 'legacy' && reach.conn.capabilities.logging) await reach.conn.request('logging/setLevel', { level: request.params.level }, { ...this.exchange(rc, ctx, reach, view), onRequest: undefined });
        } catch (err) {
          this.deps.log.warn('/mcp/%s: logging/setLevel on "%s" failed: %s', gateway.id, a.name, (err as Error).message);
        }
      }),
    );
    return {};
  }

  /** Start listening to every assignment's upstream (list_changed), without listing anything. */
  async watchAll(rc: RequestContext): Promise<void> {
    const gateway = this.gateway(rc);
    await Promise.all(
      [...gateway.servers.values()].map(async (a) => {
        const reach = await this.reach(rc, a).catch(() => undefined);
        if (reach?.ok) await reach.conn.connect(reach.headers).catch(() => undefined);
      }),
    );
  }

  /** The SDK server for a 2025 session (one per session) or one 2026-07-28 request. */
  buildServer(gatewayId: string, session: LegacySession | undefined): Server {
    const gateway = this.deps.catalog.current.gateways.get(gatewayId);
    const names = gateway ? [...gateway.servers.values()].map((a) => (a.prefix === a.name ? a.name : a.prefix === '' ? `${a.name} (names as they are)` : `${a.name} (as ${a.prefix}__<name>)`)) : [];
    const server = new Server(
      { name: gateway?.name ?? gatewayId, version: this.deps.version },
      {
        capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true }, logging: {}, completions: {} },
        instructions: `${gateway?.description ? `${gateway.description}\n\n` : ''}Keygate gateway "${gateway?.name ?? gatewayId}": the tools and prompts of each server are named <server>__<name> unless said otherwise; servers: ${names.join(', ')}.`,
        requestState: { verify: this.deps.codec.verify },
      },
    );
    const rc = (ctx: ServerContext): RequestContext => {
      const found = (ctx.http?.authInfo?.extra as { keygate?: RequestContext } | undefined)?.keygate;
      if (!found) throw new ProtocolError(CODES.internalError, 'request context missing');
      return session ? { ...found, session } : found;
    };
    server.setRequestHandler('tools/list', (_req, ctx) => this.listTools(rc(ctx), ctx) as Promise<any>);
    server.setRequestHandler('tools/call', (req, ctx) => this.callTool(req as never, rc(ctx), ctx) as Promise<any>);
    server.setRequestHandler('resources/list', (_req, ctx) => this.listResources(rc(ctx), ctx) as Promise<any>);
    server.setRequestHandler('resources/templates/list', (_req, ctx) => this.listTemplates(rc(ctx), ctx) as Promise<any>);
    server.setRequestHandler('resources/read', (req, ctx) => this.readResource(req as never, rc(ctx), ctx) as Promise<any>);
    server.setRequestHandler('resources/subscribe', (req, ctx) => this.subscribe(req as never, rc(ctx), ctx, true));
    server.setRequestHandler('resources/unsubscribe', (req, ctx) => this.subscribe(req as never, rc(ctx), ctx, false));
    server.setRequestHandler('prompts/list', (_req, ctx) => this.listPrompts(rc(ctx), ctx) as Promise<any>);
    server.setRequestHandler('prompts/get', (req, ctx) => this.getPrompt(req as never, rc(ctx), ctx) as Promise<any>);
    server.setRequestHandler('completion/complete', (req, ctx) => this.complete(req as never, rc(ctx), ctx) as Promise<any>);
    server.setRequestHandler('logging/setLevel', (req, ctx) => this.setLevel(req as never, rc(ctx), ctx));
    if (session) {
      server.setNotificationHandler('notifications/roots/list_changed', () => session.caller.forward('notifications/roots/list_changed'));
    }
    return server;
  }
}

export type { InputRequiredResult };
