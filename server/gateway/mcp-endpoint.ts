import type { IncomingMessage, ServerResponse } from 'node:http';
import { InsufficientScopeError, KeygateError, RevokedTokenError } from '../http/errors.ts';
import { type Authenticator, bearerChallenge } from '../inbound/authenticator.ts';
import { callerKey, type Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import type { ResourceSpace } from '../oauth/resource.ts';
import type { AuditSink } from '../audit/audit.ts';
import type { CredentialResolver } from '../vault/resolver.ts';
import type { AccessChecks } from '../catalog/access.ts';
import { type Assignment, type CatalogHolder, mayUse, toolAllowed } from '../catalog/catalog.ts';
import { policyDenial, policyFailure, toolOffered } from '../catalog/tool-policy.ts';
import { readClientCredentials } from './client-credentials.ts';
import { CODES, type GatewayFailure } from '../catalog/failure.ts';
import { sendFailure } from './jsonrpc.ts';
import { MergedEndpoint } from './merged-endpoint.ts';
import { decodeMcpName, headerMismatch, isModernRequest } from './mcp-headers.ts';
import { callsIn, type RequestFacts, trustsHeaders } from './raw-policy.ts';
import { bodyFailure, NOT_JSON, readJsonBody } from './request-body.ts';
import { auditEntry, keepBodyForAudit, newRecord, type RequestRecord } from './request-record.ts';
import { gatewayStateCodec, PendingCalls } from './round-trips.ts';
import type { SessionBinding } from './session-binding.ts';
import { asUnconnected, CONNECT_TOOL, isStalePlaceholder, ToolCache } from './unconnected.ts';
import { initializeParamsOf, parseStandInSession, standInSessionId, unconnectedResponder } from './unconnected-responder.ts';
import { ContinuedSessions } from './stand-in-continuation.ts';
import { UpstreamError } from './upstream-client.ts';
import { buildUpstreamHeaders, forward, upstreamFailure } from './forward.ts';
import { UpstreamPool } from './upstream-pool.ts';
import { endpointScopes, holdsEveryScope, missingScope } from '../catalog/scopes.ts';

// The MCP endpoints: /mcp/{gateway}/{server} forwards one assignment as is;
// /mcp/{gateway} is the gateway as one server (merged-endpoint.ts; a gateway
// with a single server is that server, forwarded as is). This path runs on
// plain node:http (no Express), never writes the store, and forwards raw
// bytes over pooled connections: the body is streamed through unparsed (read
// only where tool policy needs it), SSE responses are relayed chunk by chunk
// as they arrive.

export interface McpEndpointDeps {
  catalog: CatalogHolder;
  resources: ResourceSpace;
  authenticator: Authenticator;
  resolver: CredentialResolver;
  access: AccessChecks;
  audit: AuditSink;
  sessions: SessionBinding;
  allowedOrigins: Set<string>;
  log: Logger;
}

/** How long close() waits for upstreams to answer the DELETE of their 2025 sessions. */
const CLOSE_WAIT_MS = 2_000;

/** Keygate's name toward upstreams and clients. */
const VERSION = '0.1.0';
const CORS_HEADERS = {
  'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, last-event-id',
  'access-control-expose-headers': 'mcp-session-id, mcp-protocol-version, www-authenticate',
  'access-control-max-age': '600',
};

function parsePath(url: string): { gateway: string; server: string | undefined } | undefined {
  const path = url.split('?', 1)[0]!;
  const parts = path.split('/');
  // ['', 'mcp', gateway, server?]
  if (parts.length < 3 || parts.length > 4 || parts[1] !== 'mcp' || !parts[2]) return undefined;
  if (parts.length === 4 && !parts[3]) return { gateway: parts[2], server: undefined }; // trailing slash
  return { gateway: parts[2], server: parts[3] };
}

export function mcpEndpoint(deps: McpEndpointDeps) {
  const { catalog, resources, authenticator, log } = deps;
  const tools = new ToolCache();
  const codec = gatewayStateCodec(deps.sessions.derive('requestState'));
  const pending = new PendingCalls();
  const pool = new UpstreamPool({ log, clientInfo: { name: 'keygate', version: VERSION } });
  const merged = new MergedEndpoint({ catalog, resolver: deps.resolver, pool, tools, codec, pending, log, version: VERSION });
  const standIn = unconnectedResponder({ tools, codec, version: VERSION });
  const continued = new ContinuedSessions(log);

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The audit record, filled in as the request goes, written when the response ends.
    const record: RequestRecord = newRecord();
    res.once('close', () => deps.audit.record(auditEntry(req, res, record)));
    const fail = (req: IncomingMessage, res: ServerResponse, failure: GatewayFailure, id?: string | number | null) => {
      record.outcome = failure.reason;
      return sendFailure(req, res, failure, id);
    };

    const origin = req.headers.origin;
    if (origin !== undefined) {
      // MCP transports: validate Origin to stop DNS-rebinding pages from reaching the gateway.
      if (!deps.allowedOrigins.has(origin)) {
        return fail(req, res, { status: 403, code: CODES.forbidden, step: 'route', reason: 'origin_not_allowed', message: `requests from origin ${origin} are not allowed; add it to server.allowed_origins` });
      }
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, CORS_HEADERS).end();
        return;
      }
      res.setHeader('access-control-expose-headers', CORS_HEADERS['access-control-expose-headers']);
    }

    const route = parsePath(req.url ?? '/');
    if (!route) {
      return fail(req, res, { status: 404, code: CODES.notFound, step: 'route', reason: 'not_found', message: 'MCP endpoints are /mcp/{gateway} and /mcp/{gateway}/{server}' });
    }
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      return fail(req, res, { status: 405, code: CODES.invalidRequest, step: 'route', reason: 'method_not_allowed', message: `${req.method} is not an MCP method here; use POST, GET or DELETE`, headers: { allow: 'GET, POST, DELETE' } });
    }

    // Step 2 (first half): the gateway must exist before anything else is said about it.
    record.gateway = route.gateway;
    record.server = route.server;
    const gateway = catalog.current.gateways.get(route.gateway);
    const path = route.server === undefined ? `/mcp/${route.gateway}` : `/mcp/${route.gateway}/${route.server}`;
    const endpoint = resources.endpoint(path);
    const resourceMetadata = `${resources.base}/.well-known/oauth-protected-resource${path}`;
    // MCP authorization: a 401 names the scopes the endpoint's methods need, so clients ask for those (never mcp:admin).
    const challengeScope = endpointScopes(catalog.current.gateways, route.gateway).join(' ');

    // Step 1: inbound validation.
    let principal: Principal | undefined;
    try {
      principal = await authenticator.authenticate(req.headers.authorization, endpoint);
      record.principal = principal;
    } catch (err) {
      if (!(err instanceof KeygateError)) throw err;
      // Whose revoked token it was: the audit says who tried.
      if (err instanceof RevokedTokenError) record.principal = err.principal as Principal;
      // RFC 6750 §3.1: a valid token without the scope needed is 403 insufficient_scope, naming the scope.
      const scope = err instanceof InsufficientScopeError ? err.scope : undefined;
      return fail(req, res, {
        status: err.status,
        code: scope === undefined ? CODES.unauthorized : CODES.forbidden,
        step: 'inbound',
        reason: err instanceof RevokedTokenError ? err.reason : err.code,
        message: err.message,
        headers: { 'www-authenticate': bearerChallenge(resourceMetadata, { code: err.code, description: err.message }, scope ?? challengeScope) },
      });
    }

    // Step 2: a private gateway answers an anonymous caller with the RFC 9728
    // challenge, so MCP clients start sign-in; a gateway that does not exist
    // answers an anonymous caller exactly alike, so it cannot tell the two apart.
    if (!principal && (!gateway || gateway.visibility === 'private')) {
      return fail(req, res, {
        status: 401,
        code: CODES.unauthorized,
        step: 'inbound',
        reason: 'authorization_required',
        message: `sign in to use gateway "${route.gateway}"`,
        headers: { 'www-authenticate': bearerChallenge(resourceMetadata, undefined, challengeScope) },
      });
    }
    if (!gateway) {
      return fail(req, res, { status: 404, code: CODES.notFound, step: 'gateway', reason: 'unknown_gateway', message: `there is no gateway "${route.gateway}"` });
    }
    if (gateway.disabled) {
      return fail(req, res, { status: 403, code: CODES.forbidden, step: 'gateway', reason: 'gateway_disabled', message: `gateway "${gateway.id}" is disabled by an admin` });
    }
    if (!mayUse(gateway, principal)) {
      return fail(req, res, { status: 403, code: CODES.forbidden, step: 'gateway', reason: 'not_a_member', message: `you are not a member of gateway "${gateway.id}"` });
    }
    const refused = deps.access.check(principal, gateway);
    if (refused) return fail(req, res, refused);

    // The scope each method needs (gateways[].scopes): RFC 6750 §3.1 insufficient_scope naming it, so
    // an MCP client can step up (ask for that scope) instead of signing in again. Only a caller who
    // lacks one of the gateway's scopes has its calls read and checked.
    const scopeLimited = !holdsEveryScope(gateway.scopes, principal);
    /** Answers with 403 (and returns true) when a call needs a scope the caller lacks. `body`: the calls came from a body already read. */
    const refuseScope = (calls: RequestFacts['calls'], body = true): boolean => {
      const scope = missingScope(gateway.scopes, principal, calls.map((c) => c.method));
      if (scope === undefined) return false;
      record.outcome = 'insufficient_scope';
      const failure: GatewayFailure = {
        status: 403,
        code: CODES.forbidden,
        step: 'scope',
        reason: 'insufficient_scope',
        message: `this call needs the scope ${scope}, which the access token was not granted`,
        headers: { 'www-authenticate': bearerChallenge(resourceMetadata, { code: 'insufficient_scope', description: `this call needs the scope ${scope}` }, scope) },
      };
      // Calls named by headers only: the body is peeked for the id.
      void sendFailure(req, res, failure, body ? (calls[0]?.id ?? null) : undefined);
      return true;
    };

    // Step 3: the assignment. /mcp/{gateway} of a gateway with several servers is the merged endpoint.
    let assignment: Assignment | undefined;
    if (route.server !== undefined) {
      assignment = gateway.servers.get(route.server);
      if (!assignment) {
        return fail(req, res, { status: 404, code: CODES.notFound, step: 'assignment', reason: 'unknown_server', message: `gateway "${gateway.id}" has no server "${route.server}"` });
      }
    } else if (gateway.servers.size === 1) {
      assignment = gateway.servers.values().next().value!;
    } else {
      return merged.handle(req, res, {
        gateway,
        principal,
        record,
        ...(scopeLimited && { refuseScope }),
      });
    }
    record.server = assignment.name;
    record.upstream = assignment.upstream.id;
    if (assignment.upstream.disabled) {
      return fail(req, res, { status: 403, code: CODES.forbidden, step: 'assignment', reason: 'upstream_disabled', message: `upstream "${assignment.upstream.id}" is disabled by an admin` });
    }

    // Tool policy (the assignment's allow/deny globs and its rules by caller) and scopes judge the
    // method and the tool of each call: read from the body, whose 2026-07-28 headers must agree with it
    // (an upstream may route by either). Where nothing is judged, a 2026-07-28 request's headers are
    // enough for the stand-in below, and its body streams through unread.
    const guarded = assignment.tools !== undefined || assignment.policies !== undefined || scopeLimited;
    const needsFacts = guarded || assignment.identity === 'per_user';
    let facts: RequestFacts = { calls: [], body: undefined };
    /** Mirrored headers (Mcp-Method, Mcp-Name) go upstream only when they were checked against the body, or nothing was judged. */
    let mirroredHeaders = true;
    if (req.method === 'POST') {
      if (trustsHeaders(req.headers) && !guarded) {
        const name = header(req, 'mcp-name');
        facts.calls = [{ method: req.headers['mcp-method'] as string, name: name === undefined ? undefined : decodeMcpName(name), id: null }];
      } else if (needsFacts) {
        let parsed: unknown;
        try {
          ({ body: facts.body, parsed } = await readJsonBody(req));
        } catch (err) {
          const failure = bodyFailure(err);
          if (!failure) throw err;
          return fail(req, res, failure, null);
        }
        if (parsed === undefined) return fail(req, res, NOT_JSON, null);
        facts.calls = callsIn(parsed);
        if (guarded && isModernRequest(req.headers, parsed)) {
          // MCP 2026-07-28, Streamable HTTP, "Server Validation": headers that disagree with the body are
          // refused with 400 and -32020 (HeaderMismatch), before anything is forwarded.
          const mismatch = headerMismatch(req.headers, parsed);
          if (mismatch) return fail(req, res, { status: 400, code: CODES.headerMismatch, step: 'route', reason: 'header_mismatch', message: `Bad Request: the request headers and body disagree: ${mismatch}` }, facts.calls[0]?.id ?? null);
        } else if (guarded) {
          mirroredHeaders = false;
        }
      }
    }
    if (scopeLimited && refuseScope(facts.calls, facts.body !== undefined)) return;
    if (assignment.tools) {
      const refused = facts.calls.find((c) => c.method === 'tools/call' && c.name !== undefined && !toolAllowed(assignment!.tools, c.name));
      if (refused) {
        // HTTP 200: a JSON-RPC error the client shows, not an HTTP failure it would retry or re-authorize on.
        record.outcome = 'tool_not_allowed';
        return void sendFailure(req, res, {
          status: 200,
          code: CODES.forbidden,
          step: 'assignment',
          reason: 'tool_not_allowed',
          message: `tool "${refused.name}" is not available on /mcp/${gateway.id}/${assignment.name}`,
        }, refused.id);
      }
    }
    if (assignment.policies) {
      // The first call of the request that a rule denies to this caller: refused here, never forwarded.
      for (const call of facts.calls) {
        if (call.method !== 'tools/call' || call.name === undefined) continue;
        const rule = policyDenial(assignment, principal, call.name);
        if (!rule) continue;
        record.outcome = 'policy_denied';
        record.method = 'tools/call';
        record.name = call.name;
        return void sendFailure(req, res, policyFailure(assignment, call.name, rule), call.id);
      }
    }

    // Step 4: the identity and its credential.
    const clientValues = readClientCredentials(req.headers, assignment.name);
    const resolved = await deps.resolver.resolve(principal, assignment, clientValues);
    // 2025-era sessions: the client holds a caller-bound wrapper of the upstream's id.
    const caller = callerKey(principal);
    // Bound to the identity too: after switching identities the old upstream session is not reused.
    const routeOf = (identity: string) => `${gateway.id}/${assignment!.name}/${identity}`;
    const routeKey = routeOf((resolved.ok && resolved.identity?.id) || '');
    // Not connected yet (no identity, or its sign-in expired): a stand-in answers, below.
    const unconnected = resolved.ok || resolved.failure.status === 401 ? undefined : asUnconnected(resolved.failure, resolved.connectUrl);
    if (!resolved.ok && !unconnected) {
      // Refused at the credential step (a disabled identity, say): said as such, also on an open 2025
      // session, whose id is bound to an identity that cannot be resolved now (not "unknown session").
      const failure = resolved.failure.status === 401 ? { ...resolved.failure, headers: { 'www-authenticate': bearerChallenge(resourceMetadata, undefined, challengeScope) } } : resolved.failure;
      return fail(req, res, failure);
    }
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
          return fail(req, res, upstreamFailure(err, assignment));
        }
      } else if (upstreamSession === undefined || opened) {
        // Streamable HTTP: an unknown session is 404, and the client starts a new one.
        return fail(req, res, { status: 404, code: CODES.notFound, step: 'gateway', reason: 'unknown_session', message: 'session not found' });
      }
    }
    if (unconnected) {
      // A local stand-in answers (tools listed, calls say how to connect).
      record.outcome = unconnected.reason;
      const standInSession = upstreamSession === undefined ? undefined : parseStandInSession(upstreamSession);
      if (upstreamSession !== undefined && !standInSession) return fail(req, res, { status: 404, code: CODES.notFound, step: 'gateway', reason: 'unknown_session', message: 'session not found' });
      const init = facts.calls.some((c) => c.method === 'initialize') ? initializeParamsOf(facts.body) : undefined;
      // MCP 2025-11-25: a client that can open a URL for the user declares capabilities.elicitation.url.
      const urlElicitation = init ? (init.capabilities.elicitation as { url?: unknown } | undefined)?.url !== undefined : (standInSession?.urlElicitation ?? false);
      if (facts.calls.length === 0 && req.method === 'POST' && facts.body === undefined) keepBodyForAudit(req, record);
      return standIn(req, res, { assignment, unconnected, caller, principal, urlElicitation }, facts.body, init ? deps.sessions.wrap(caller, routeKey, standInSessionId(urlElicitation, init)) : undefined);
    }
    if (!resolved.ok) throw new Error('unreachable: every refusal is answered above');
    const only = facts.calls.length === 1 ? facts.calls[0] : undefined;
    if (only?.method === 'tools/call' && only.name !== undefined && isStalePlaceholder(tools, assignment, only.name)) {
      // The placeholder tool, listed before the person connected: the upstream has no such tool; the stand-in says to list again.
      record.outcome = 'already_connected';
      record.method = 'tools/call';
      record.name = CONNECT_TOOL;
      const connected = { reason: 'already_connected', message: `your ${assignment.upstream.name} account is connected`, connectUrl: undefined };
      return standIn(req, res, { assignment, unconnected: connected, connected: true, caller, principal, urlElicitation: false }, facts.body, undefined);
    }
    const credentialHeaders = resolved.headers;
    record.identity = resolved.identity?.id;

    // Step 5: forward. (Without Mcp-* headers, the body is kept, up to a bound, for the audit's method and tool.)
    if (facts.body !== undefined) record.body = [facts.body];
    else if (req.headers['mcp-method'] === undefined && req.method === 'POST') keepBodyForAudit(req, record);
    // A tools/list answer is read on its way back: filtered by the tool policy, and remembered for callers not connected yet.
    const listing = facts.calls.some((c) => c.method === 'tools/list') && needsFacts;
    const rewrite = listing
      ? (listed: unknown[]) => {
          tools.remember(assignment!.upstream.id, listed);
          return listed.filter((t) => toolOffered(assignment!, principal, String((t as { name?: unknown }).name)));
        }
      : undefined;
    if (continuedKey !== undefined && req.method === 'DELETE') continued.forget(continuedKey);
    // A continued session keeps the id the client holds.
    const wrapSession = (upstreamId: string) => continuedKey !== undefined && typeof presentedSession === 'string' ? presentedSession : deps.sessions.wrap(caller, routeKey, upstreamId);
    forward(req, res, assignment, buildUpstreamHeaders(req.headers, credentialHeaders, upstreamSession, mirroredHeaders), wrapSession, log, facts.body, rewrite);
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

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}
