import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditSink } from '../audit/audit.ts';
import type { AccessChecks } from '../catalog/access.ts';
import type { Assignment, CatalogHolder } from '../catalog/catalog.ts';
import { GatewayError } from '../catalog/failure.ts';
import { offered, toolOffered } from '../catalog/tool-policy.ts';
import type { Authenticator } from '../inbound/authenticator.ts';
import { callerKey, type Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import type { ResourceSpace } from '../oauth/resource.ts';
import type { Store } from '../store/index.ts';
import type { CredentialResolver } from '../vault/resolver.ts';
import { readClientCredentials } from './client-credentials.ts';
import { buildUpstreamHeaders, forward, upstreamFailure } from './forward.ts';
import { sendFailure } from './jsonrpc.ts';
import { MergedEndpoint } from './merged-endpoint.ts';
import { auditEntry, newRecord, type RequestRecord } from './request-record.ts';
import type { ListKey } from './raw-policy.ts';
import { gatewayStateCodec, PendingCalls } from './round-trips.ts';
import { RoamingSessions } from './roaming-sessions.ts';
import type { SessionBinding } from './session-binding.ts';
import { ContinuedSessions } from './stand-in-continuation.ts';
import * as step from './steps.ts';
import { asUnconnected, CONNECT_TOOL, isStalePlaceholder, ToolCache } from './unconnected.ts';
import { initializeParamsOf, parseStandInSession, standInSessionId, unconnectedResponder } from './unconnected-responder.ts';
import { UpstreamError } from './upstream-client.ts';
import { UpstreamPool } from './upstream-pool.ts';

// The MCP endpoints: /mcp/{gateway}/{server} forwards one assignment as is;
// /mcp/{gateway} is the gateway as one server (merged-endpoint.ts; a gateway
// with a single server is that server, forwarded as is). Both run the steps
// of steps.ts, in its order, and a refusal from any step is answered in one
// place (handleMcp, below). This path runs on plain node:http (no Express),
// never writes the store, and forwards over pooled connections: the body is
// read (bounded) and judged, then sent on as it came; SSE responses are
// relayed chunk by chunk as they arrive.

export interface McpEndpointDeps {
  catalog: CatalogHolder;
  resources: ResourceSpace;
  authenticator: Authenticator;
  resolver: CredentialResolver;
  access: AccessChecks;
  audit: AuditSink;
  sessions: SessionBinding;
  /** For the 2025 sessions of /mcp/{gateway} ended on any instance (roaming-sessions.ts). */
  store: Store;
  allowedOrigins: Set<string>;
  log: Logger;
}

/** How long close() waits for upstreams to answer the DELETE of their 2025 sessions. */
const CLOSE_WAIT_MS = 2_000;

/** Keygate's name toward upstreams and clients. */
const VERSION = '0.1.0';

const LISTS = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']);

/** A list answer's items this caller is offered: what the tool filter and the policies leave (a tools/list is remembered first). */
function listedFor(a: Assignment, principal: Principal | undefined, key: ListKey, listed: unknown[], tools: ToolCache): unknown[] {
  const field = (item: unknown, name: string) => String((item as Record<string, unknown> | null)?.[name]);
  switch (key) {
    case 'tools':
      tools.remember(a.upstream.id, listed);
      return listed.filter((t) => toolOffered(a, principal, field(t, 'name')));
    case 'prompts':
      return listed.filter((p) => offered(a, principal, 'prompt', field(p, 'name')));
    case 'resources':
      return listed.filter((r) => offered(a, principal, 'resource', field(r, 'uri')));
    case 'resourceTemplates':
      return listed.filter((t) => offered(a, principal, 'resource', field(t, 'uriTemplate')));
  }
}

export function mcpEndpoint(deps: McpEndpointDeps) {
  const { catalog, resources, authenticator, log } = deps;
  const tools = new ToolCache();
  const codec = gatewayStateCodec(deps.sessions.derive('requestState'));
  const pending = new PendingCalls();
  const pool = new UpstreamPool({ log, clientInfo: { name: 'keygate', version: VERSION } });
  const roaming = new RoamingSessions(deps.sessions, deps.store);
  const merged = new MergedEndpoint({ catalog, resolver: deps.resolver, pool, tools, codec, pending, roaming, log, version: VERSION });
  const standIn = unconnectedResponder({ tools, codec, version: VERSION });
  const continued = new ContinuedSessions(log);

  /** Every MCP request: the steps in order (steps.ts); a refusal from any of them is answered here, in one place. */
  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const record: RequestRecord = newRecord();
    res.once('close', () => deps.audit.record(auditEntry(req, res, record)));
    try {
      await pipeline(req, res, record);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      record.outcome = err.failure.reason;
      record.rule = err.failure.rule;
      await sendFailure(req, res, err.failure, err.id);
    }
  }

  async function pipeline(req: IncomingMessage, res: ServerResponse, record: RequestRecord): Promise<void> {
    if (step.origin(req, res, deps.allowedOrigins)) return;
    const route = step.route(req);
    record.gateway = route.gatewayId;
    record.server = route.server;
    const challenge = step.challengeOf(resources, catalog, route);
    // (Steps that can answer at once, from memory, do: a promise only when one must wait.)
    const authenticated = step.authenticate(req, record, authenticator, challenge);
    const principal = authenticated instanceof Promise ? await authenticated : authenticated;
    const gateway = step.gateway(catalog, route.gatewayId, principal, challenge);
    step.membership(gateway, principal);
    step.breakGlass(deps.access, gateway, principal);
    const scopeLimited = step.scopeLimited(gateway, principal);

    // /mcp/{gateway} of a gateway with several servers is the merged endpoint: the same steps, per call (merged-endpoint.ts).
    const only = gateway.servers.size === 1 ? gateway.servers.values().next().value : undefined;
    if (route.server === undefined && !only) {
      return merged.handle(req, res, { gateway, principal, record, scopeLimited, challenge });
    }
    const assignment = route.server === undefined ? only! : step.assignment(gateway, route.server);
    step.upstreamEnabled(assignment);
    record.server = assignment.name;
    record.upstream = assignment.upstream.id;

    const reading = step.read(req);
    const { facts, mirroredHeaders } = reading instanceof Promise ? await reading : reading;
    const id = step.idOf(facts);
    const single = facts.calls.length === 1 ? facts.calls[0] : undefined;
    // The audit names the method and tool of the body (a batch: none).
    if (single) {
      record.method = single.method;
      record.name = single.name;
    }
    if (scopeLimited) step.scope(gateway, principal, facts.calls, challenge.resourceMetadata, id);
    step.policy(assignment, principal, facts.calls, record, tools);

    // credential: the identity this caller's calls use here, and its credential headers.
    const resolving = deps.resolver.resolveNow(principal, assignment, readClientCredentials(req.headers, assignment.name));
    const resolved = resolving instanceof Promise ? await resolving : resolving;
    // Not connected yet (no identity, or its sign-in expired): a stand-in answers, below.
    const unconnected = resolved.ok || resolved.failure.status === 401 ? undefined : asUnconnected(resolved.failure, resolved.connectUrl);
    if (!resolved.ok && !unconnected) {
      // Refused at the credential step (a disabled identity, say): said as such, also on an open 2025
      // session, whose id is bound to an identity that cannot be resolved now (not "unknown session").
      step.credential(resolved.failure, challenge, id);
    }

    // session: 2025-era clients hold a caller-bound wrapper of the upstream's session id, bound to the identity
    // too (after switching identities the old upstream session is not reused).
    const caller = callerKey(principal);
    const routeOf = (identity: string) => `${gateway.id}/${assignment.name}/${identity}`;
    const routeKey = routeOf((resolved.ok && resolved.identity?.id) || '');
    const presentedSession = req.headers['mcp-session-id'];
    let upstreamSession: string | undefined;
    /** A session the stand-in opened before the person connected, going on upstream now: its key in `continued`. */
    let continuedKey: string | undefined;
    if (typeof presentedSession === 'string') {
      upstreamSession = deps.sessions.unwrap(caller, routeKey, presentedSession);
      // The stand-in's sessions are bound to the route without an identity (the caller had none then).
      const opened = resolved.ok ? parseStandInSession(upstreamSession ?? deps.sessions.unwrap(caller, routeOf(''), presentedSession) ?? '') : undefined;
      if (resolved.ok && opened?.initialize) {
        continuedKey = `${caller}\n${routeKey}\n${presentedSession}`;
        try {
          upstreamSession = (await continued.upstreamSession(continuedKey, assignment.upstream, resolved.headers, opened.initialize)).upstreamId;
        } catch (err) {
          if (!(err instanceof UpstreamError)) throw err;
          step.refuse(upstreamFailure(err, assignment), id);
        }
      } else if (upstreamSession === undefined || opened) {
        step.refuse(step.UNKNOWN_SESSION, id);
      }
    }

    if (!resolved.ok) {
      // A local stand-in answers (tools listed, calls say how to connect).
      record.outcome = unconnected!.reason;
      const standInSession = upstreamSession === undefined ? undefined : parseStandInSession(upstreamSession);
      if (upstreamSession !== undefined && !standInSession) step.refuse(step.UNKNOWN_SESSION, id);
      const init = facts.calls.some((c) => c.method === 'initialize') ? initializeParamsOf(facts.body) : undefined;
      // MCP 2025-11-25: a client that can open a URL for the user declares capabilities.elicitation.url.
      const urlElicitation = init ? (init.capabilities.elicitation as { url?: unknown } | undefined)?.url !== undefined : (standInSession?.urlElicitation ?? false);
      return standIn(req, res, { assignment, unconnected: unconnected!, caller, principal, urlElicitation }, facts.body, init ? deps.sessions.wrap(caller, routeKey, standInSessionId(urlElicitation, init)) : undefined);
    }
    if (single?.method === 'tools/call' && single.name !== undefined && isStalePlaceholder(tools, assignment, single.name)) {
      // The placeholder tool, listed before the person connected: the upstream has no such tool; the stand-in says to list again.
      record.outcome = 'already_connected';
      record.method = 'tools/call';
      record.name = CONNECT_TOOL;
      const connected = { reason: 'already_connected', message: `your ${assignment.upstream.name} account is connected`, connectUrl: undefined };
      return standIn(req, res, { assignment, unconnected: connected, connected: true, caller, principal, urlElicitation: false }, facts.body, undefined);
    }
    record.identity = resolved.identity?.id;

    // forward.
    // A list answer is read on its way back: filtered by the tool filter and the policies (tools/list is
    // remembered too, for callers not connected yet).
    const listing = facts.calls.some((c) => LISTS.has(c.method)) && (assignment.policies !== undefined || (facts.calls.some((c) => c.method === 'tools/list') && (assignment.tools !== undefined || assignment.identity === 'per_user')));
    const rewrite = listing ? (key: ListKey, listed: unknown[]) => listedFor(assignment, principal, key, listed, tools) : undefined;
    if (continuedKey !== undefined && req.method === 'DELETE') continued.forget(continuedKey);
    // A continued session keeps the id the client holds.
    const wrapSession = (upstreamId: string) => (continuedKey !== undefined && typeof presentedSession === 'string' ? presentedSession : deps.sessions.wrap(caller, routeKey, upstreamId));
    forward(req, res, assignment, buildUpstreamHeaders(req.headers, resolved.headers, upstreamSession, mirroredHeaders), wrapSession, log, facts.body, rewrite, id, record);
  }

  return Object.assign(handleMcp, {
    pool,
    merged,
    /** The registry is closing: held calls cancelled, and every 2025 session it opened upstream ended (DELETE). */
    async close() {
      merged.close();
      pending.close();
      // An upstream that does not answer its DELETE does not hold the shutdown up for long.
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS).unref()));
      await Promise.race([Promise.all([pool.close(), continued.close()]), bound]);
      clearTimeout(timer);
    },
  });
}

