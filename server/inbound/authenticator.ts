import { hash } from 'node:crypto';
import { InvalidTokenError, RevokedTokenError } from '../http/errors.ts';
import { ResourceSpace } from '../oauth/resource.ts';
import type { Principal } from './principal.ts';
import type { TokenValidator } from './validator.ts';

const MAX_CACHED = 10_000;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
/** Tokens without an expiry of their own (static bearer tokens) are re-checked this often. */
const UNBOUNDED_TTL = 300;

type Revoked = { reason: string; description: string } | undefined;
/** What the registry revoked (Revocations.check): checked on every request, cache hit or not; a promise only while a change heard from another instance is being read. */
export type RevocationCheck = (principal: Principal) => Revoked | Promise<Revoked>;

/**
 * Inbound validation: a bearer token becomes a principal, or an
 * `invalid_token` error. Validated tokens are cached by a hash of the token,
 * never past their `exp`, so the hot path pays one SHA-256 instead of a
 * signature check. Failures are never cached. Every request, cached or not,
 * asks `revoked` whether the token's grant (or its user, or its client) has
 * been revoked since: a lookup in memory.
 */
export class Authenticator {
  private readonly cache = new Map<string, { principal: Principal; until: number }>();
  /**
   * Per connection (a keep-alive client sends the same Authorization header
   * call after call): the last header seen whole, its token and cache key, so
   * a repeat skips the parse and the SHA-256. Only the key is remembered: the
   * cache, the expiry and the revocation check are asked every time.
   */
  private readonly lastSeen = new WeakMap<object, { authorization: string; token: string; id: string }>();

  /** `validators` are asked in order (see TokenValidator). */
  constructor(
    private readonly validators: TokenValidator[],
    private readonly revoked: RevocationCheck = () => undefined,
  ) {}

  /**
   * The caller of `endpoint` (a canonical resource URI): undefined for an
   * anonymous request (no Authorization header).
   */
  async authenticate(authorization: string | undefined, endpoint: string): Promise<Principal | undefined> {
    return this.authenticateNow(authorization, endpoint);
  }

  /**
   * authenticate(), answered synchronously on the hot path (a cached token
   * whose revocation check is a lookup in memory): a promise only when the
   * token must be validated, or a revocation heard from another instance is
   * still being read. A refusal is thrown, or the promise rejects with it.
   * `connection`: the request's (its socket), whose last header is remembered.
   */
  authenticateNow(authorization: string | undefined, endpoint: string, connection?: object): Principal | undefined | Promise<Principal | undefined> {
    if (authorization === undefined || authorization === '') return undefined;
    let seen = connection && this.lastSeen.get(connection);
    if (seen?.authorization !== authorization) {
      const match = BEARER.exec(authorization);
      if (!match) throw new InvalidTokenError('expected "Authorization: Bearer <token>" (RFC 6750 §2.1)');
      seen = { authorization, token: match[1]!, id: hash('sha256', match[1]!, 'base64url') };
      if (connection) this.lastSeen.set(connection, seen);
    }
    const { token, id } = seen;
    const now = Date.now() / 1000;
    const hit = this.cache.get(id);
    if (hit) {
      if (hit.until > now) return this.admit(hit.principal, endpoint);
      this.cache.delete(id);
    }
    return this.validate(token, id, now).then((principal) => this.admit(principal, endpoint));
  }

  /** A valid token's principal, unless its grant was revoked since or it was issued for another resource. */
  private admit(principal: Principal, endpoint: string): Principal | Promise<Principal> {
    const revoked = this.revoked(principal);
    return revoked instanceof Promise ? revoked.then((r) => this.admitted(principal, r, endpoint)) : this.admitted(principal, revoked, endpoint);
  }

  private admitted(principal: Principal, revoked: Revoked, endpoint: string): Principal {
    if (revoked) throw new RevokedTokenError(revoked.description, revoked.reason, principal);
    // RFC 8707 / MCP authorization: a token is only good for the resource it was issued for.
    if (principal.audience && !ResourceSpace.covers(principal.audience, endpoint)) {
      throw new InvalidTokenError('the access token was issued for another resource');
    }
    return principal;
  }

  /** A token not in the cache: validated (a signature check, introspection...), then cached. A failure is never cached. */
  private async validate(token: string, id: string, now: number): Promise<Principal> {
    const principal = await this.check(token);
    const until = Math.min(principal.expiresAt ?? Infinity, now + UNBOUNDED_TTL);
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(id, { principal, until });
    return principal;
  }

  private async check(token: string): Promise<Principal> {
    for (const validator of this.validators) {
      const principal = await validator.validate(token);
      if (principal) return principal;
    }
    throw new InvalidTokenError('the access token is not valid here');
  }
}

/**
 * RFC 6750 §3 challenge with the RFC 9728 resource_metadata pointer, and the
 * scope the resource needs (MCP authorization: what a client should ask for).
 * §3.1: a request without any token gets no error code.
 */
export function bearerChallenge(resourceMetadata: string, error?: { code: string; description: string }, scope?: string): string {
  const parts = [`Bearer resource_metadata="${resourceMetadata}"`];
  if (error) parts.push(`error="${error.code}"`, `error_description="${error.description.replace(/["\\]/g, '')}"`);
  if (scope) parts.push(`scope="${scope}"`);
  return parts.join(', ');
}
