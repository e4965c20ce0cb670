import { ADMIN_SCOPE } from '../config/sections/access.ts';
import { InvalidScopeError } from '../http/errors.ts';

/** Scopes any client may ask for beside the configured ones. */
const ALWAYS_SUPPORTED = ['offline_access'];

export function parseScope(scope: string | undefined): string[] {
  return scope ? [...new Set(scope.split(' ').filter(Boolean))] : [];
}

/**
 * RFC 6749 §3.3: the scope to grant. A scope the server does not know is
 * `invalid_scope`; a known scope the user does not hold is left out (the
 * token response says which were granted). No scope asked: all the user holds.
 * Without a user (checking the request before sign-in) only validates.
 */
export function grantScope(requested: string | undefined, supported: readonly string[], userScopes: readonly string[] | undefined): string {
  const known = new Set([...supported, ...ALWAYS_SUPPORTED]);
  const asked = parseScope(requested);
  const unknown = asked.filter((s) => !known.has(s));
  if (unknown.length) throw new InvalidScopeError(`unknown scope ${unknown.map((s) => `"${s}"`).join(', ')}`);
  if (userScopes === undefined) return asked.join(' ');
  const held = new Set([...userScopes, ...ALWAYS_SUPPORTED]);
  const granted = asked.length ? asked.filter((s) => held.has(s)) : userScopes.filter((s) => known.has(s));
  return granted.join(' ');
}

/**
 * The admin scope is granted only when asked for by name, and only for the
 * admin API's audience (the registry as a whole, which is also what a request
 * without `resource` gets): a token for an MCP endpoint never carries it, and
 * an MCP client that asks for "everything" (no scope) does not receive it.
 * Left out silently, as a scope the user does not hold is (RFC 6749 §3.3).
 */
export function withoutUnaskedAdmin(scopes: readonly string[], requested: string | undefined, resource: readonly string[], registry: string): string[] {
  const admin = parseScope(requested).includes(ADMIN_SCOPE) && resource.length === 1 && resource[0] === registry;
  return admin ? [...scopes] : scopes.filter((s) => s !== ADMIN_SCOPE);
}
