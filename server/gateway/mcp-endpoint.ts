import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { InsufficientScopeError, KeygateError } from '../http/errors.ts';
import { type Authenticator, bearerChallenge } from '../inbound/authenticator.ts';
import type { Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import type { ResourceSpace } from '../oauth/resource.ts';
import { randomUUID } from 'node:crypto';
import type { AuditEntry, AuditSink } from '../audit/audit.ts';
import type { CredentialResolver } from '../vault/resolver.ts';
import type { AccessChecks } from './access.ts';
import { type Assignment, type CatalogHolder, mayUse } from './catalog.ts';
import { readClientCredentials } from './client-credentials.ts';
import { CODES, type GatewayFailure, sendFailure } from './jsonrpc.ts';
import type { SessionBinding } from './session-binding.ts';

// The MCP endpoints: /mcp/{gateway}/{server} forwards one assignment as is;
// /mcp/{gateway} is the gateway as one server. This path runs on plain
// node:http (no Express), never writes the store, and forwards raw bytes over
// pooled connections: the body is streamed through unparsed, SSE responses are
// relayed chunk by chunk as they arrive.

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

/** Request headers that reach the upstream; everything else (Authorization and cookies first) stays here. */
const FORWARD_REQUEST = new Set(['content-type', 'accept', 'content-length', 'last-event-id', 'user-agent']);
// (Mcp-* headers are forwarded too, except the session id, which is rewritten.)
/** Response headers that reach the client. */
const FORWARD_RESPONSE = new Set(['content-type', 'cache-control', 'content-length', 'mcp-protocol-version', 'retry-after', 'x-accel-buffering']);

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

  return async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The audit record, filled in as the request goes, written when the response ends.
    const record: RequestRecord = { started: performance.now(), outcome: 'ok', principal: undefined, gateway: undefined, server: undefined, upstream: undefined, identity: undefined, body: undefined };
    res.once('close', () => deps.audit.record(auditEntry(req, res, record)));
    const fail = (req: IncomingMessage, res: ServerResponse, failure: GatewayFailure) => {
      record.outcome = failure.reason;
      return sendFailure(req, res, failure);
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
    if (!gateway) {
      return fail(req, res, { status: 404, code: CODES.notFound, step: 'gateway', reason: 'unknown_gateway', message: `there is no gateway "${route.gateway}"` });
    }
    const path = route.server === undefined ? `/mcp/${route.gateway}` : `/mcp/${route.gateway}/${route.server}`;
    const endpoint = resources.endpoint(path);
    const resourceMetadata = `${resources.base}/.well-known/oauth-protected-resource${path}`;

    // Step 1: inbound validation.
    let principal: Principal | undefined;
    try {
      principal = await authenticator.authenticate(req.headers.authorization, endpoint);
      record.principal = principal;
    } catch (err) {
      if (!(err instanceof KeygateError)) throw err;
      // RFC 6750 §3.1: a valid token without the scope needed is 403 insufficient_scope, naming the scope.
      const scope = err instanceof InsufficientScopeError ? err.scope : undefined;
      return fail(req, res, {
        status: err.status,
        code: scope === undefined ? CODES.unauthorized : CODES.forbidden,
        step: 'inbound',
        reason: err.code,
        message: err.message,
        headers: { 'www-authenticate': bearerChallenge(resourceMetadata, { code: err.code, description: err.message, scope }) },
      });
    }

    // Step 2: a private gateway answers an anonymous caller with the RFC 9728
    // challenge, so MCP clients start sign-in.
    if (gateway.visibility === 'private' && !principal) {
      return fail(req, res, {
        status: 401,
        code: CODES.unauthorized,
        step: 'inbound',
        reason: 'authorization_required',
        message: `gateway "${gateway.id}" is private: sign in to use it`,
        headers: { 'www-authenticate': bearerChallenge(resourceMetadata) },
      });
    }
    if (gateway.disabled) {
      return fail(req, res, { status: 403, code: CODES.forbidden, step: 'gateway', reason: 'gateway_disabled', message: `gateway "${gateway.id}" is disabled by an admin` });
    }
    if (!mayUse(gateway, principal)) {
      return fail(req, res, { status: 403, code: CODES.forbidden, step: 'gateway', reason: 'not_a_member', message: `you are not a member of gateway "${gateway.id}"` });
    }
    const refused = deps.access.check(principal, gateway);
    if (refused) return fail(req, res, refused);

    // Step 3: the assignment.
    let assignment: Assignment | undefined;
    if (route.server !== undefined) {
      assignment = gateway.servers.get(route.server);
      if (!assignment) {
        return fail(req, res, { status: 404, code: CODES.notFound, step: 'assignment', reason: 'unknown_server', message: `gateway "${gateway.id}" has no server "${route.server}"` });
      }
    } else if (gateway.servers.size === 1) {
      assignment = gateway.servers.values().next().value!;
    } else {
      const names = [...gateway.servers.keys()].map((n) => `/mcp/${gateway.id}/${n}`).join(', ');
      return fail(req, res, {
        status: 501,
        code: CODES.notFound,
        step: 'assignment',
        reason: 'merged_endpoint_unavailable',
        message: `gateway "${gateway.id}" has ${gateway.servers.size} servers; connect to each: ${names}`,
      });
    }
    record.server = assignment.name;
    record.upstream = assignment.upstream.id;
    if (assignment.upstream.disabled) {
      return fail(req, res, { status: 403, code: CODES.forbidden, step: 'assignment', reason: 'upstream_disabled', message: `upstream "${assignment.upstream.id}" is disabled by an admin` });
    }

    // Step 4: the identity and its credential.
    const clientValues = readClientCredentials(req.headers, assignment.name);
    const resolved = await deps.resolver.resolve(principal, assignment, clientValues);
    if (!resolved.ok) {
      const failure = resolved.failure.status === 401 ? { ...resolved.failure, headers: { 'www-authenticate': bearerChallenge(resourceMetadata) } } : resolved.failure;
      return fail(req, res, failure);
    }
    const credentialHeaders = resolved.headers;
    record.identity = resolved.identity?.id;

    // 2025-era sessions: the client holds a caller-bound wrapper of the upstream's id.
    const caller = principal ? `${principal.provider}:${principal.subject}` : 'anonymous';
    // Bound to the identity too: after switching identities the old upstream session is not reused.
    const routeKey = `${gateway.id}/${assignment.name}/${resolved.identity?.id ?? ''}`;
    let upstreamSession: string | undefined;
    const presentedSession = req.headers['mcp-session-id'];
    if (typeof presentedSession === 'string') {
      upstreamSession = deps.sessions.unwrap(caller, routeKey, presentedSession);
      if (upstreamSession === undefined) {
        // Streamable HTTP: an unknown session is 404, and the client starts a new one.
        return fail(req, res, { status: 404, code: CODES.notFound, step: 'gateway', reason: 'unknown_session', message: 'session not found' });
      }
    }

    // Step 5: forward. (Without Mcp-* headers, the body is kept, up to a bound, for the audit's method and tool.)
    if (req.headers['mcp-method'] === undefined && req.method === 'POST') keepBodyForAudit(req, record);
    forward(req, res, assignment, buildUpstreamHeaders(req.headers, credentialHeaders, upstreamSession), (upstreamId) => deps.sessions.wrap(caller, routeKey, upstreamId), log);
  };
}

interface RequestRecord {
  started: number;
  outcome: string;
  principal: Principal | undefined;
  gateway: string | undefined;
  server: string | undefined;
  upstream: string | undefined;
  identity: string | undefined;
  body: Buffer[] | undefined;
}

const AUDIT_BODY_LIMIT = 64 * 1024;

function keepBodyForAudit(req: IncomingMessage, record: RequestRecord): void {
  const chunks: Buffer[] = [];
  let size = 0;
  record.body = chunks;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= AUDIT_BODY_LIMIT) chunks.push(chunk);
    else record.body = undefined;
  });
}

/** The JSON-RPC method and name of a request: from the Mcp-* headers, or from the kept body. */
function methodAndName(req: IncomingMessage, record: RequestRecord): { method: string | undefined; name: string | undefined } {
  const header = (n: string) => (typeof req.headers[n] === 'string' ? (req.headers[n] as string) : undefined);
  if (header('mcp-method')) return { method: header('mcp-method'), name: header('mcp-name') };
  if (!record.body?.length) return { method: undefined, name: undefined };
  try {
    const body = JSON.parse(Buffer.concat(record.body).toString('utf8')) as { method?: unknown; params?: { name?: unknown; uri?: unknown } };
    const name = body.params?.name ?? body.params?.uri;
    return { method: typeof body.method === 'string' ? body.method : undefined, name: typeof name === 'string' ? name : undefined };
  } catch {
    return { method: undefined, name: undefined };
  }
}

function auditEntry(req: IncomingMessage, res: ServerResponse, record: RequestRecord): AuditEntry {
  const { method, name } = methodAndName(req, record);
  const status = res.statusCode;
  const outcome = record.outcome !== 'ok' ? record.outcome : !res.writableFinished ? 'client_closed' : status >= 400 ? `upstream_http_${status}` : 'ok';
  return {
    time: new Date().toISOString(),
    request_id: randomUUID(),
    subject: record.principal?.subject,
    provider: record.principal?.provider,
    client_id: record.principal?.clientId,
    gateway: record.gateway ?? '',
    server: record.server,
    upstream: record.upstream,
    identity: record.identity,
    http_method: req.method ?? '',
    method,
    name,
    outcome,
    status,
    latency_ms: Math.round((performance.now() - record.started) * 10) / 10,
  };
}

function buildUpstreamHeaders(incoming: IncomingHttpHeaders, credential: Record<string, string>, session: string | undefined): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (FORWARD_REQUEST.has(name) || (name.startsWith('mcp-') && name !== 'mcp-session-id')) headers[name] = value;
  }
  if (session !== undefined) headers['mcp-session-id'] = session;
  // The upstream credential, never the inbound token (which is not copied above).
  Object.assign(headers, credential);
  return headers;
}

function forward(
  req: IncomingMessage,
  res: ServerResponse,
  assignment: Assignment,
  headers: OutgoingHttpHeaders,
  wrapSession: (upstreamId: string) => string,
  log: Logger,
): void {
  const { upstream } = assignment;
  const send = upstream.url.protocol === 'https:' ? httpsRequest : httpRequest;
  const upstreamReq = send({
    protocol: upstream.url.protocol,
    hostname: upstream.url.hostname,
    port: upstream.url.port,
    path: `${upstream.url.pathname}${upstream.url.search}`,
    method: req.method,
    headers,
    agent: upstream.agent,
  });

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

  req.pipe(upstreamReq);
}
