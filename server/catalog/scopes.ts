import type { Principal } from '../inbound/principal.ts';

// Which scope each MCP method needs on a gateway (gateways[].scopes, these
// defaults): `mcp:read` for the handshake, every list method, reads,
// prompts/get, ping, completions, logging and subscriptions, notifications
// and answers to the server's own requests; `mcp:write` for tools/call and
// anything not named here (tasks, methods of later revisions). A token
// granted only `offline_access` reaches nothing. The scopes bind the tokens
// this registry issues (and static bearer tokens, which hold every scope);
// tokens of another issuer are held to auth.oauth.required_scopes instead,
// since another IdP does not issue our scopes. Anonymous callers of a public
// gateway present no scopes to check.

export interface ScopePolicy {
  read: string;
  write: string;
  /** Per-method overrides: method → the scope it needs. */
  methods: Readonly<Record<string, string>>;
}

export const DEFAULT_SCOPE_POLICY: ScopePolicy = { read: 'mcp:read', write: 'mcp:write', methods: {} };

/** Every scope the gateway's methods need: what its protected-resource metadata and challenges name. */
export function scopesOf(policy: ScopePolicy): string[] {
  return [...new Set([policy.read, policy.write, ...Object.values(policy.methods)])];
}

/**
 * What an MCP endpoint advertises (RFC 9728 scopes_supported) and names in its 401 challenge: the scopes
 * of its gateway (`gateway` undefined: `/mcp`, every gateway's). A gateway that does not exist answers as
 * one with the defaults would, so the answer does not tell which gateways exist.
 */
export function endpointScopes(gateways: ReadonlyMap<string, { scopes: ScopePolicy }>, gateway: string | undefined): readonly string[] {
  // Asked on every MCP request (its 401 names them): computed once per catalog snapshot (a rebuilt catalog is a new map).
  let known = SCOPES_BY_CATALOG.get(gateways);
  if (!known) SCOPES_BY_CATALOG.set(gateways, (known = new Map()));
  const key = gateway ?? '';
  let scopes = known.get(key);
  if (!scopes) {
    const policies = gateway === undefined ? [DEFAULT_SCOPE_POLICY, ...[...gateways.values()].map((g) => g.scopes)] : [gateways.get(gateway)?.scopes ?? DEFAULT_SCOPE_POLICY];
    scopes = Object.freeze([...new Set(policies.flatMap(scopesOf))]);
    // Names of gateways that do not exist are not kept (anyone may ask for any name).
    if (gateway === undefined || gateways.has(gateway)) known.set(key, scopes);
  }
  return scopes;
}
const SCOPES_BY_CATALOG = new WeakMap<ReadonlyMap<string, unknown>, Map<string, readonly string[]>>();

const READ_METHODS = new Set([
  'initialize',
  'ping',
  'server/discover',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'subscriptions/listen',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
]);

/** The scope `method` needs; undefined `method` is a GET stream, a DELETE, or the client's answer to a server request. */
export function requiredScope(policy: ScopePolicy, method: string | undefined): string {
  if (method === undefined) return policy.read;
  const explicit = policy.methods[method];
  if (explicit !== undefined) return explicit;
  return READ_METHODS.has(method) || method.startsWith('notifications/') ? policy.read : policy.write;
}

/** Whether the principal's scopes are checked against the methods it calls. */
function bound(principal: Principal | undefined): principal is Principal {
  return principal !== undefined && (principal.provider === 'registry' || principal.provider === 'bearer');
}

/** True when the caller may call anything on the gateway: then its requests need not be read to be checked. */
export function holdsEveryScope(policy: ScopePolicy, principal: Principal | undefined): boolean {
  if (!bound(principal)) return true;
  const held = new Set(principal.scopes);
  return held.has(policy.read) && held.has(policy.write) && Object.values(policy.methods).every((s) => held.has(s));
}

/** The first scope the request needs that the caller lacks (`methods`: the JSON-RPC methods it carries; none for GET, DELETE, answers). */
export function missingScope(policy: ScopePolicy, principal: Principal | undefined, methods: readonly (string | undefined)[]): string | undefined {
  if (!bound(principal)) return undefined;
  const held = new Set(principal.scopes);
  for (const method of methods.length ? methods : [undefined]) {
    const needed = requiredScope(policy, method);
    if (!held.has(needed)) return needed;
  }
  return undefined;
}
