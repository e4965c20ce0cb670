import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AccessChecks } from '../catalog/access.ts';
import { type Assignment, type CatalogHolder, type Gateway, mayUse, toolAllowed } from '../catalog/catalog.ts';
import { CODES, GatewayError, type GatewayFailure } from '../catalog/failure.ts';
import { endpointScopes, holdsEveryScope, missingScope } from '../catalog/scopes.ts';
import { type PolicyKind, policyDenial, policyFailure } from '../catalog/tool-policy.ts';
import { InsufficientScopeError, KeygateError, RevokedTokenError } from '../http/errors.ts';
import { type Authenticator, bearerChallenge } from '../inbound/authenticator.ts';
import type { Principal } from '../inbound/principal.ts';
import type { ResourceSpace } from '../oauth/resource.ts';
import { isJsonContentType } from '@modelcontextprotocol/server';
import { headerMismatch, isModernRequest } from './mcp-headers.ts';
import { callsIn, type RequestFacts } from './raw-policy.ts';
import { BODY_LIMIT, bodyFailure, NOT_JSON, parseJsonBody, readBody } from './request-body.ts';
import type { RequestRecord } from './request-record.ts';
import { isStalePlaceholder, type ToolCache } from './unconnected.ts';

// The steps of an MCP request, in the order both endpoints run them:
//
//   origin → route → authenticate → gateway → membership → breakGlass
//     → assignment → read → scope → policy → credential → forward
//
// Each step is a function named after it, here (forward: forward.ts; the
// 2025 session and the stand-in between credential and forward are the raw
// endpoint's own, in mcp-endpoint.ts). A step that refuses throws a
// GatewayError (server/catalog/failure.ts) carrying the step, the reason, the
// HTTP status and the JSON-RPC code; the endpoint turns it into the response
// in one place (mcp-endpoint.ts, with jsonrpc.ts sendFailure). The raw
// endpoint (/mcp/{gateway}/{server}) runs them for its one assignment; the
// merged endpoint (/mcp/{gateway}) runs the same per-call steps (assignment,
// scope, policy, credential) for the server a call is routed to
// (merged-endpoint.ts), so a refusal reads the same on both.

/** Streamable HTTP: an unknown session (or another caller's) is 404, and the client starts a new one. */
export const UNKNOWN_SESSION: GatewayFailure = { status: 404, code: CODES.notFound, step: 'gateway', reason: 'unknown_session', message: 'session not found' };

/** Throw a refusal, answered with the call's JSON-RPC id (undefined: peeked from the body). */
export function refuse(failure: GatewayFailure, id?: string | number | null): never {
  throw new GatewayError(failure, id);
}

const CORS_HEADERS = {
  'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, last-event-id',
  'access-control-expose-headers': 'mcp-session-id, mcp-protocol-version, www-authenticate',
  'access-control-max-age': '600',
};

/** origin: MCP transports validate Origin, so a DNS-rebinding page cannot reach the gateway. True when the request was a preflight, answered here. */
export function origin(req: IncomingMessage, res: ServerResponse, allowed: Set<string>): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  if (!allowed.has(origin)) {
    refuse({ status: 403, code: CODES.forbidden, step: 'route', reason: 'origin_not_allowed', message: `requests from origin ${origin} are not allowed; add it to server.allowed_origins` });
  }
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('vary', 'Origin');
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS_HEADERS).end();
    return true;
  }
  res.setHeader('access-control-expose-headers', CORS_HEADERS['access-control-expose-headers']);
  return false;
}

/** route: /mcp/{gateway} or /mcp/{gateway}/{server}, with a method MCP uses. */
export function route(req: IncomingMessage): { gatewayId: string; server: string | undefined; path: string } {
  const parts = (req.url ?? '/').split('?', 1)[0]!.split('/');
  // ['', 'mcp', gateway, server?]
  if (parts.length < 3 || parts.length > 4 || parts[1] !== 'mcp' || !parts[2]) {
    refuse({ status: 404, code: CODES.notFound, step: 'route', reason: 'not_found', message: 'MCP endpoints are /mcp/{gateway} and /mcp/{gateway}/{server}' });
  }
  if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
    refuse({ status: 405, code: CODES.invalidRequest, step: 'route', reason: 'method_not_allowed', message: `${req.method} is not an MCP method here; use POST, GET or DELETE`, headers: { allow: 'GET, POST, DELETE' } });
  }
  const gatewayId = parts[2];
  const server = parts[3] || undefined; // a trailing slash is the gateway
  return { gatewayId, server, path: server === undefined ? `/mcp/${gatewayId}` : `/mcp/${gatewayId}/${server}` };
}

/** The endpoint as a protected resource: its RFC 8707 name, its RFC 9728 metadata URL, and the scopes a 401 names (never mcp:admin). */
export interface Challenge {
  endpoint: string;
  resourceMetadata: string;
  scope: string;
}

export function challengeOf(resources: ResourceSpace, catalog: CatalogHolder, { path, gatewayId, server }: ReturnType<typeof route>): Challenge {
  // Asked on every MCP request: made once per catalog snapshot and endpoint (a rebuilt catalog is a new object).
  const current = catalog.current;
  let known = CHALLENGES.get(current);
  if (!known) CHALLENGES.set(current, (known = new Map()));
  let challenge = known.get(path);
  if (!challenge) {
    challenge = {
      endpoint: resources.endpoint(path),
      resourceMetadata: `${resources.base}/.well-known/oauth-protected-resource${path}`,
      scope: endpointScopes(current.gateways, gatewayId).join(' '),
    };
    // Only endpoints that exist are kept (anyone may ask for any name).
    if (current.has(gatewayId, server)) known.set(path, challenge);
  }
  return challenge;
}
const CHALLENGES = new WeakMap<object, Map<string, Challenge>>();

/**
 * authenticate: the bearer token, validated for this endpoint; undefined for
 * an anonymous caller. Synchronous for a cached token (the hot path), else a
 * promise.
 */
export function authenticate(
  req: IncomingMessage,
  record: RequestRecord,
  authenticator: Authenticator,
  challenge: Challenge,
): Principal | undefined | Promise<Principal | undefined> {
  let principal;
  try {
    principal = authenticator.authenticateNow(req.headers.authorization, challenge.endpoint, req.socket);
  } catch (err) {
    return authenticationRefused(err, record, challenge);
  }
  if (principal instanceof Promise) {
    return principal.then(
      (p) => (record.principal = p),
      (err: unknown) => authenticationRefused(err, record, challenge),
    );
  }
  record.principal = principal;
  return principal;
}

/** The refusal of a token: 401 invalid_token (or revoked), or 403 insufficient_scope, with the endpoint's challenge. */
function authenticationRefused(err: unknown, record: RequestRecord, challenge: Challenge): never {
  if (!(err instanceof KeygateError)) throw err;
  // Whose revoked token it was: the audit says who tried.
  if (err instanceof RevokedTokenError) record.principal = err.principal as Principal;
  // RFC 6750 §3.1: a valid token without the scope needed is 403 insufficient_scope, naming the scope.
  const scope = err instanceof InsufficientScopeError ? err.scope : undefined;
  refuse({
    status: err.status,
    code: scope === undefined ? CODES.unauthorized : CODES.forbidden,
    step: 'inbound',
    reason: err instanceof RevokedTokenError ? err.reason : err.code,
    message: err.message,
    headers: { 'www-authenticate': bearerChallenge(challenge.resourceMetadata, { code: err.code, description: err.message }, scope ?? challenge.scope) },
  });
}

/**
 * gateway: it exists and is enabled. A private gateway answers an anonymous
 * caller with the RFC 9728 challenge, so MCP clients start sign-in; a gateway
 * that does not exist answers an anonymous caller exactly alike, so it cannot
 * tell the two apart.
 */
export function gateway(catalog: CatalogHolder, gatewayId: string, principal: Principal | undefined, challenge: Challenge): Gateway {
  const found = catalog.current.gateways.get(gatewayId);
  if (!principal && (!found || found.visibility === 'private')) {
    refuse({
      status: 401,
      code: CODES.unauthorized,
      step: 'inbound',
      reason: 'authorization_required',
      message: `sign in to use gateway "${gatewayId}"`,
      headers: { 'www-authenticate': bearerChallenge(challenge.resourceMetadata, undefined, challenge.scope) },
    });
  }
  if (!found) refuse({ status: 404, code: CODES.notFound, step: 'gateway', reason: 'unknown_gateway', message: `there is no gateway "${gatewayId}"` });
  if (found.disabled) refuse({ status: 403, code: CODES.forbidden, step: 'gateway', reason: 'gateway_disabled', message: `gateway "${found.id}" is disabled by an admin` });
  return found;
}

/** membership: the gateway's members (anyone, when it names none). */
export function membership(gateway: Gateway, principal: Principal | undefined): void {
  if (!mayUse(gateway, principal)) refuse({ status: 403, code: CODES.forbidden, step: 'gateway', reason: 'not_a_member', message: `you are not a member of gateway "${gateway.id}"` });
}

/** breakGlass: the switches that follow the caller (a deactivated user, a disabled connection). */
export function breakGlass(access: AccessChecks, gateway: Gateway, principal: Principal | undefined): void {
  const refused = access.check(principal, gateway);
  if (refused) refuse(refused);
}

/** assignment: the server a call goes to is assigned here and its upstream is not switched off. */
export function assignment(gateway: Gateway, server: string): Assignment {
  const found = gateway.servers.get(server);
  if (!found) refuse({ status: 404, code: CODES.notFound, step: 'assignment', reason: 'unknown_server', message: `gateway "${gateway.id}" has no server "${server}"` });
  upstreamEnabled(found);
  return found;
}

export function upstreamEnabled(a: Assignment, id?: string | number | null): void {
  if (a.upstream.disabled) refuse(upstreamDisabled(a), id);
}

/** An upstream an admin switched off (break-glass): nothing reaches it, from any gateway. */
export function upstreamDisabled(a: Assignment): GatewayFailure {
  return { status: 403, code: CODES.forbidden, step: 'assignment', reason: 'upstream_disabled', message: `upstream "${a.upstream.id}" is disabled by an admin` };
}

/**
 * read: every POST body is read (bounded in size and nesting) and parsed
 * before anything is forwarded, on both endpoints, so bad input is answered
 * alike wherever it is sent: not application/json 415, too large 413, too
 * deep or not JSON 400. A 2026-07-28 request's headers must agree with its
 * body (an upstream may route by either): MCP 2026-07-28 "Server
 * Validation", 400 and -32020. A 2025 request's Mcp-Method and Mcp-Name
 * headers are not defined by its revision and not checked, so they are not
 * forwarded (`mirroredHeaders` false).
 */
export function read(req: IncomingMessage): Read | Promise<Read> {
  if (req.method !== 'POST') return { facts: { calls: [], body: undefined }, value: undefined, mirroredHeaders: true };
  // (The id is peeked from the body, if it is JSON after all.)
  if (!isJsonContentType(req.headers['content-type'] ?? null)) refuse(UNSUPPORTED_MEDIA_TYPE);
  return readBody(req, BODY_LIMIT).then((body) => judge(req, body), bodyRefused);
}

export interface Read {
  facts: RequestFacts;
  value: unknown;
  mirroredHeaders: boolean;
}

/** A body read whole: parsed (or refused as too deep, or not JSON), and a 2026-07-28 request's headers checked against it. */
function judge(req: IncomingMessage, body: Buffer): Read {
  const value = parsed(body);
  const facts: RequestFacts = { calls: callsIn(value), body };
  if (!isModernRequest(req.headers, value)) return { facts, value, mirroredHeaders: false };
  const mismatch = headerMismatch(req.headers, value);
  if (mismatch) refuse({ status: 400, code: CODES.headerMismatch, step: 'route', reason: 'header_mismatch', message: `Bad Request: the request headers and body disagree: ${mismatch}` }, facts.calls[0]?.id ?? null);
  return { facts, value, mirroredHeaders: true };
}

/** Streamable HTTP: a POST carries JSON-RPC as application/json. */
const UNSUPPORTED_MEDIA_TYPE: GatewayFailure = { status: 415, code: CODES.serverError, step: 'route', reason: 'unsupported_media_type', message: 'Unsupported Media Type: Content-Type must be application/json' };

/** The JSON-RPC id to answer a refusal with: the request's, once its body was read (a batch, or nothing read: null). */
export function idOf(facts: RequestFacts): string | number | null {
  return facts.calls.length === 1 ? facts.calls[0]!.id : null;
}

/** A body that could not be read whole: too large (or the connection's own error, passed on). */
function bodyRefused(err: unknown): never {
  const failure = bodyFailure(err);
  if (!failure) throw err;
  refuse(failure, null);
}

/** A body's JSON value, or the refusal of one too deep or not JSON. */
function parsed(body: Buffer): unknown {
  let value;
  try {
    value = parseJsonBody(body);
  } catch (err) {
    bodyRefused(err);
  }
  if (value === undefined) refuse(NOT_JSON, null);
  return value;
}

/** Does the caller hold every scope of the gateway (then no call needs to be read for the scope step)? */
export function scopeLimited(gateway: Gateway, principal: Principal | undefined): boolean {
  return !holdsEveryScope(gateway.scopes, principal);
}

/**
 * scope: each method needs a scope of the gateway's (gateways[].scopes); a
 * call needing one the token lacks is RFC 6750 §3.1 insufficient_scope,
 * naming it, so an MCP client can step up instead of signing in again.
 * `id`: the first call's, or undefined when the calls came from headers (peeked).
 */
export function scope(gateway: Gateway, principal: Principal | undefined, calls: RequestFacts['calls'], resourceMetadata: string, id: string | number | null | undefined): void {
  const needed = missingScope(gateway.scopes, principal, calls.map((c) => c.method));
  if (needed === undefined) return;
  refuse({
    status: 403,
    code: CODES.forbidden,
    step: 'scope',
    reason: 'insufficient_scope',
    message: `this call needs the scope ${needed}, which the access token was not granted`,
    headers: { 'www-authenticate': bearerChallenge(resourceMetadata, { code: 'insufficient_scope', description: `this call needs the scope ${needed}` }, needed) },
  }, id);
}

/**
 * credential: the vault's refusal of the identity this caller's calls would
 * use (a disabled identity, a value no header can carry, no shared identity,
 * …), said as such; where signing in is the answer (an anonymous caller on a
 * per-user server), with the endpoint's sign-in challenge. (An identity not
 * connected yet is no refusal: a stand-in says how to connect.)
 */
export function credential(failure: GatewayFailure, challenge: Challenge, id: string | number | null): never {
  refuse(failure.status === 401 ? { ...failure, headers: { 'www-authenticate': bearerChallenge(challenge.resourceMetadata, undefined, challenge.scope) } } : failure, id);
}

/**
 * policy: the assignment's tool filter (tools.allow/deny) and its policies
 * judge each tools/call, prompts/get, resources/read and resources/subscribe,
 * and a completion/complete of a prompt's or a resource template's argument;
 * the first call refused is answered with an HTTP 200 JSON-RPC error (the
 * client shows it; it is no HTTP failure to retry or re-authorize on), the
 * audit names the rule, and nothing is forwarded.
 */
export function policy(a: Assignment, principal: Principal | undefined, calls: RequestFacts['calls'], record: RequestRecord, tools: ToolCache): void {
  for (const call of calls) {
    if (call.name === undefined) continue;
    const kind = call.completes ?? POLICY_KINDS[call.method];
    if (kind === undefined) continue;
    // The gateway's own placeholder (listed before the person connected) is no upstream tool: the stand-in answers it.
    if (kind === 'tool' && isStalePlaceholder(tools, a, call.name)) continue;
    const filtered = kind === 'tool' && !toolAllowed(a.tools, call.name);
    const rule = filtered ? undefined : a.policies && policyDenial(a, principal, call.name, kind);
    const failure: GatewayFailure | undefined = filtered
      ? { status: 200, code: CODES.forbidden, step: 'assignment', reason: 'tool_not_allowed', message: `tool "${call.name}" is not available on /mcp/${a.gateway}/${a.name}` }
      : rule
        ? policyFailure(a, call.name, rule, kind)
        : undefined;
    if (!failure) continue;
    // The audit names the call refused (in a batch, not necessarily the first).
    record.method = call.method;
    record.name = call.name;
    refuse(failure, call.id);
  }
}

/** The calls a policy judges, and what each names (a tool, a prompt, a resource's URI). */
const POLICY_KINDS: Record<string, PolicyKind | undefined> = { 'tools/call': 'tool', 'prompts/get': 'prompt', 'resources/read': 'resource', 'resources/subscribe': 'resource' };
