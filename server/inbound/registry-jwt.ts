import { decodeJwt, errors, jwtVerify } from 'jose';
import { InvalidTokenError } from '../http/errors.ts';
import type { KeyRing } from '../oauth/signing-keys.ts';
import { stringList } from './claims.ts';
import type { Principal } from './principal.ts';
import type { TokenValidator } from './validator.ts';

/**
 * How far apart the clocks of the registry's instances may be (seconds): a
 * token issued by an instance whose clock is ahead is not "issued in the
 * future" on the others, and one whose clock is behind does not expire early
 * there (docs/deployment.md). Keep clocks in sync (NTP); this is the leeway.
 */
export const CLOCK_LEEWAY = 60;

/** The `gty` claim of a client-credentials token: its `sub` is the client, not a person. */
export const CLIENT_CREDENTIALS_GTY = 'client_credentials';

/** RFC 8693 §4.1: `act` is an object naming the actor in its own `sub`. */
function actorOf(act: unknown): { subject: string } | undefined {
  if (act === null || typeof act !== 'object') return undefined;
  const sub = (act as { sub?: unknown }).sub;
  return typeof sub === 'string' && sub !== '' ? { subject: sub } : undefined;
}

export class TokenRejected extends Error {
  readonly code = 'ERR_TOKEN_REJECTED';
}

/**
 * Validate an access token this registry issued (RFC 9068) and read its
 * principal: signed by a key of the ring (chosen by kid; the header's own
 * jwk/jku/x5u are never used), our issuer, not expired, not revoked.
 */
export async function verifyRegistryToken(token: string, keys: KeyRing, issuer: string, revoked: (principal: Principal) => { description: string } | undefined = () => undefined): Promise<Principal> {
  try {
    const { payload } = await jwtVerify(
      token,
      async (header) => {
        const key = await keys.lookup(header.kid);
        if (!key || key.alg !== header.alg) throw new TokenRejected('the access token is signed by a key this registry does not know');
        return key.publicKey;
      },
      { issuer, algorithms: keys.algorithms, typ: 'at+jwt', requiredClaims: ['sub', 'exp', 'aud', 'iat', 'jti'], clockTolerance: CLOCK_LEEWAY },
    );
    // Dated later than any instance's clock can be: a clock gone wrong, or a key misused. (jose checks iat only with maxTokenAge.)
    if (payload.iat! > Math.floor(Date.now() / 1000) + CLOCK_LEEWAY) throw new TokenRejected('the access token is dated in the future (iat): a registry clock is off by more than the leeway');
    const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud!];
    const principal: Principal = {
      subject: payload.sub!,
      name: typeof payload.name === 'string' ? payload.name : undefined,
      email: typeof payload.email === 'string' ? payload.email : undefined,
      scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
      // RFC 9068 §2.2.3.1 (groups, roles): as the account had them when the token was issued.
      groups: stringList(payload.groups),
      ...(payload.roles !== undefined && { roles: stringList(payload.roles) }),
      provider: 'registry',
      clientId: typeof payload.client_id === 'string' ? payload.client_id : undefined,
      audience,
      expiresAt: payload.exp,
      ...(payload.gty === CLIENT_CREDENTIALS_GTY && { isClient: true }),
      ...(actorOf(payload.act) && { actor: actorOf(payload.act) }),
      ...(typeof payload.gid === 'string' && { grant: payload.gid }),
      tokenId: payload.jti,
      issuedAt: payload.iat,
    };
    const why = revoked(principal);
    if (why) throw new TokenRejected(why.description);
    return principal;
  } catch (err) {
    if (err instanceof TokenRejected) throw err;
    if (err instanceof errors.JWTExpired) throw new TokenRejected('the access token has expired');
    if (err instanceof errors.JOSEError) throw new TokenRejected('the access token is not valid here');
    throw err;
  }
}

/**
 * The registry's own access tokens: JWTs whose `iss` is this registry.
 * Revocation is checked by the Authenticator on every request (cache hit or
 * not), not here.
 */
export class RegistryTokenValidator implements TokenValidator {
  readonly name = 'registry';

  constructor(
    private readonly keys: KeyRing,
    private readonly issuer: string,
  ) {}

  async validate(token: string): Promise<Principal | undefined> {
    if (token.split('.').length !== 3) return undefined;
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return undefined;
    }
    if (iss !== this.issuer) return undefined;
    try {
      return await verifyRegistryToken(token, this.keys, this.issuer);
    } catch (err) {
      if (err instanceof TokenRejected) throw new InvalidTokenError(err.message);
      throw err;
    }
  }
}
