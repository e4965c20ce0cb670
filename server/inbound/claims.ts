import type { OAuthAuthConfig } from '../config/sections/auth.ts';
import { InsufficientScopeError, InvalidTokenError } from '../http/errors.ts';
import type { Principal } from './principal.ts';

// Claims of another issuer's token (JWT payload, introspection answer,
// UserInfo response) → a principal, through auth.oauth.claims.

export type ClaimMapping = OAuthAuthConfig['claims'];

/**
 * A claim by name. A name with dots is first a key of its own (Auth0's
 * namespaced claims such as "https://example.com/roles"), then a path into
 * nested objects (Keycloak's "realm_access.roles").
 */
export function readClaim(claims: Record<string, unknown>, name: string): unknown {
  if (name in claims) return claims[name];
  let value: unknown = claims;
  for (const part of name.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** A list of strings from an array of strings, or from one string split on spaces (OAuth `scope`, RFC 6749 §3.3). */
export function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v.length > 0);
  return [];
}

const optionalString = (value: unknown): string | undefined => (typeof value === 'string' && value.length ? value : undefined);

export function principalFromClaims(
  claims: Record<string, unknown>,
  mapping: ClaimMapping,
  extra: Pick<Principal, 'audience' | 'expiresAt'> & { provider?: Principal['provider'] },
): Principal {
  const subject = readClaim(claims, mapping.subject_claim);
  if ((typeof subject !== 'string' && typeof subject !== 'number') || subject === '') {
    throw new InvalidTokenError(`the token has no "${mapping.subject_claim}" claim to name its subject (auth.oauth.claims.subject_claim)`);
  }
  const roles = mapping.roles_claim === undefined ? undefined : stringList(readClaim(claims, mapping.roles_claim));
  return {
    subject: String(subject),
    email: optionalString(readClaim(claims, mapping.email_claim)),
    name: optionalString(readClaim(claims, mapping.name_claim)),
    scopes: stringList(readClaim(claims, mapping.scope_claim)),
    groups: stringList(readClaim(claims, mapping.groups_claim)),
    ...(roles && { roles }),
    provider: extra.provider ?? 'oauth',
    clientId: optionalString(claims.client_id) ?? optionalString(claims.azp),
    audience: extra.audience,
    expiresAt: extra.expiresAt,
  };
}

/** RFC 6750 §3.1: a valid token without every required scope is 403 insufficient_scope, naming the scope needed. */
export function requireScopes(principal: Principal, required: readonly string[]): void {
  const missing = required.filter((s) => !principal.scopes.includes(s));
  if (missing.length) {
    throw new InsufficientScopeError(`the access token lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(' ')}`, required.join(' '));
  }
}

/** `aud` as a list (RFC 7519 §4.1.3: a string or an array of strings). */
export function audienceList(aud: unknown): string[] {
  return typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

/**
 * The audience rule for another issuer's token: with auth.oauth.audience
 * configured, `aud` must name one of them; without it, the token must be
 * audience-bound to this registry (RFC 8707), which the Authenticator checks
 * against the endpoint called, so the principal carries `aud`.
 */
export function checkAudience(aud: unknown, configured: readonly string[] | undefined): string[] | undefined {
  const audiences = audienceList(aud);
  const expected = configured ? configured.join(' or ') : 'this server (RFC 8707)';
  if (!audiences.length) throw new InvalidTokenError(`the access token names no audience (aud): it must be issued for ${expected}`);
  if (!configured) return audiences;
  if (!audiences.some((a) => configured.includes(a))) throw new InvalidTokenError(`the access token is for another audience (expected ${expected})`);
  return undefined;
}
