import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { Collection, type Store } from '../store/index.ts';
import type { KeyRing } from './signing-keys.ts';
import type { Account } from './accounts.ts';
import type { RevocationReason, Revocations } from './revocations.ts';

// Authorization codes and refresh tokens are random strings handed out once;
// only their SHA-256 is stored, so a copy of the store yields no usable token.
// A grant is what one authorization gave one client: its code, its refresh
// tokens (one family) and every access token issued from them, which carry
// its id as `gid`. Ending a grant revokes all of them at once.

export const codeSchema = z.object({
  client_id: z.string(),
  redirect_uri: z.string(),
  code_challenge: z.string(),
  scope: z.string(),
  resource: z.array(z.string()),
  sub: z.string(),
  auth_time: z.number(),
  /** The code may be redeemed until then (epoch seconds). */
  expires_at: z.number(),
  /** Set when redeemed: a second redemption is a replay. */
  used: z.boolean(),
  /** The refresh-token family the code was redeemed into. */
  family: z.string(),
});
export type AuthorizationCode = z.infer<typeof codeSchema>;

export const refreshSchema = z.object({
  family: z.string(),
  client_id: z.string(),
  sub: z.string(),
  scope: z.string(),
  resource: z.array(z.string()),
  auth_time: z.number(),
  /** Set when rotated: presenting it again revokes the family. */
  used: z.boolean(),
});
export type RefreshGrant = z.infer<typeof refreshSchema>;

export const CODE_LIFETIME = 60; // seconds; OAuth 2.1 §4.1.2 recommends at most 10 minutes

export const randomToken = (): string => randomBytes(32).toString('base64url');
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');
export const epoch = (): number => Math.floor(Date.now() / 1000);

export class Grants {
  readonly codes: Collection<typeof codeSchema, 'authorization_codes'>;
  readonly refreshTokens: Collection<typeof refreshSchema, 'refresh_tokens'>;

  constructor(
    store: Store,
    private readonly keys: KeyRing,
    private readonly issuer: string,
    private readonly lifetimes: { access: number; refresh: number },
    readonly revocations: Revocations,
  ) {
    this.codes = new Collection(store, 'authorization_codes', codeSchema);
    this.refreshTokens = new Collection(store, 'refresh_tokens', refreshSchema);
  }

  /**
   * End a grant: its access tokens are refused from the next request on (any
   * instance, token cache or not), its refresh tokens are gone. Returns how
   * many refresh tokens it had.
   */
  async end(grant: string, reason: RevocationReason): Promise<number> {
    await this.revocations.revoke('grant', grant, reason);
    return this.refreshTokens.destroyBy('family', grant);
  }

  /** End every grant of a user made so far (deactivation); a later sign-in starts afresh. */
  async endUser(sub: string): Promise<number> {
    await this.revocations.revoke('subject', sub, 'user_disabled');
    await this.endFamilies('subject', sub, 'user_disabled');
    return this.refreshTokens.destroyBy('subject', sub);
  }

  /** End every grant of a client made so far (break-glass, deletion). */
  async endClient(clientId: string): Promise<number> {
    await this.revocations.revoke('client', clientId, 'client_disabled');
    await this.endFamilies('client', clientId, 'client_disabled');
    return this.refreshTokens.destroyBy('client', clientId);
  }
  /**
   * A subject or client revocation covers tokens issued before it by the
   * clock of the instance that revokes; an instance whose clock runs ahead
   * (within CLOCK_LEEWAY) dates its tokens later. Every grant of theirs the
   * store knows is ended by its id as well, which no clock decides.
   */
  private async endFamilies(index: 'subject' | 'client', key: string, reason: RevocationReason): Promise<void> {
    const families = new Set((await this.refreshTokens.findBy(index, key)).map(([, grant]) => grant.family));
    for (const family of families) await this.revocations.revoke('grant', family, reason);
  }


  /** An access token issued before grants were named (no `gid`): revoked by its jti alone. */
  revokeAccessToken(jti: string): Promise<void> {
    return this.revocations.revoke('jti', jti, 'token_revoked');
  }

  async issueCode(grant: Omit<AuthorizationCode, 'used' | 'family' | 'expires_at'>): Promise<string> {
    const code = randomToken();
    const expires_at = epoch() + CODE_LIFETIME;
    // The code record outlives its redemption window a little, so a late
    // replay is still recognised as one (and revokes what it issued).
    await this.codes.upsert(tokenHash(code), { ...grant, expires_at, used: false, family: randomUUID() }, expires_at + CODE_LIFETIME * 10);
    return code;
  }

  async issueRefreshToken(grant: Omit<RefreshGrant, 'used'>): Promise<string> {
    const token = randomToken();
    await this.refreshTokens.upsert(tokenHash(token), { ...grant, used: false }, epoch() + this.lifetimes.refresh);
    return token;
  }

  /** An RFC 9068 JWT access token, audience-bound to the resources it was issued for, naming its grant (`gid`). */
  async accessToken(input: { user: Pick<Account, 'sub' | 'name' | 'email'> & Partial<Pick<Account, 'groups' | 'roles'>>; clientId: string; scope: string; resource: string[]; grant: string },
    /** `claims`: `gty` (client credentials) or `act` (RFC 8693 §4.1); `lifetime`: shorter than token_lifetime (exchanged tokens). */
    options: { claims?: { gty?: string; act?: { sub: string } }; lifetime?: number } = {},
  ): Promise<{ token: string; expiresIn: number }> {
    // Until the second of a revocation of this subject or client has passed (a timer may fire a little
    // early against the wall clock: asked again until it has).
    for (let wait = this.revocations.delayBeforeIssuing(input.user.sub, input.clientId); wait > 0; wait = this.revocations.delayBeforeIssuing(input.user.sub, input.clientId)) {
      await new Promise((resolve) => setTimeout(resolve, wait + 1));
    }
    const now = epoch();
    const lifetime = Math.max(1, Math.min(options.lifetime ?? this.lifetimes.access, this.lifetimes.access));
    const token = await new SignJWT({
      client_id: input.clientId,
      scope: input.scope,
      gid: input.grant,
      ...(input.user.name && { name: input.user.name }),
      ...(input.user.email && { email: input.user.email }),
      ...options.claims,
      // RFC 9068 §2.2.3.1: groups and roles of the user, for gateway members, tool policies and access roles.
      ...(input.user.groups?.length && { groups: input.user.groups }),
      ...(input.user.roles?.length && { roles: input.user.roles }),
    })
      .setProtectedHeader({ alg: this.keys.active.alg, kid: this.keys.active.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setSubject(input.user.sub)
      .setAudience(input.resource.length === 1 ? input.resource[0]! : input.resource)
      .setIssuedAt(now)
      .setExpirationTime(now + lifetime)
      .setJti(randomUUID())
      .sign(this.keys.active.privateKey);
    return { token, expiresIn: lifetime };
  }
}
