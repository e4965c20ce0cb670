import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { InvalidTokenError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import type { FetchLike } from '../net/outbound.ts';
import { type ClaimMapping, checkAudience, principalFromClaims, requireScopes } from './claims.ts';
import type { Principal } from './principal.ts';
import { unavailable } from './remote-errors.ts';
import type { TokenValidator } from './validator.ts';

// auth.type oauth: JWT access tokens of another issuer, verified with the keys
// of its JWKS (RFC 7517), fetched through the outbound guard and cached by
// jose's remote key set: kept for `refresh_interval`, refetched for an
// unknown `kid` at most once per `cooldown`, each fetch bounded by
// `fetch_timeout`. While the JWKS cannot be fetched (down, timing out, not a
// key set), the keys fetched before keep verifying, and a fetch is tried again
// at most once per `cooldown`: an outage of the IdP's key endpoint does not
// lock out tokens it signed, and a `kid` it never published is still refused.
// Keys come only from there: a token that names its own key (jku, x5u, jwk,
// x5c) is refused (RFC 8725 §3.10).

export interface IssuerJwtOptions {
  /** The issuer's JWKS URL (from configuration, or discovered). */
  jwksUri: () => Promise<string>;
  /** The expected `iss`; undefined: not checked (jwks_url without issuer). */
  issuer: () => Promise<string | undefined>;
  audience: string[] | undefined;
  algorithms: string[];
  clockSkew: number;
  requireExpiration: boolean;
  maxTokenAge: number | undefined;
  jwks: { refreshInterval: number; fetchTimeout: number; cooldown: number };
  mapping: ClaimMapping;
  requiredScopes: string[];
  /** Another validator (introspection, UserInfo) may judge tokens of other issuers. */
  othersMayJudge: boolean;
  fetch: FetchLike;
  log: Logger;
}

const SELF_KEYED_HEADERS = ['jku', 'x5u', 'jwk', 'x5c'] as const;

export class IssuerJwtValidator implements TokenValidator {
  readonly name = 'oauth-jwt';
  private keySet: { uri: string; keys: JWTVerifyGetKey } | undefined;

  constructor(private readonly options: IssuerJwtOptions) {}

  private async keys(): Promise<JWTVerifyGetKey> {
    const uri = await this.options.jwksUri();
    if (this.keySet?.uri !== uri) {
      const { jwks } = this.options;
      const remote = createRemoteJWKSet(new URL(uri), {
        cacheMaxAge: jwks.refreshInterval * 1000,
        cooldownDuration: jwks.cooldown * 1000,
        timeoutDuration: jwks.fetchTimeout * 1000,
        [customFetch]: this.options.fetch as never,
      });
      let failedAt: number | undefined;
      const keys: JWTVerifyGetKey = async (header, token) => {
        const cached = remote.jwks();
        // The last fetch failed within the cooldown: the keys fetched before, without trying again yet.
        if (cached && failedAt !== undefined && Date.now() - failedAt < jwks.cooldown * 1000) return createLocalJWKSet(cached)(header, token);
        try {
          const key = await remote(header, token);
          failedAt = undefined;
          return key;
        } catch (err) {
          if (!cached || !fetchFailed(err)) throw err;
          if (failedAt === undefined) this.options.log.warn('the JWKS of the token issuer cannot be fetched (%s): verifying with the keys fetched before', (err as Error).message);
          failedAt = Date.now();
          return createLocalJWKSet(cached)(header, token);
        }
      };
      this.keySet = { uri, keys };
    }
    return this.keySet.keys;
  }

  async validate(token: string): Promise<Principal | undefined> {
    if (token.split('.').length !== 3) return undefined; // opaque: introspection or UserInfo may know it
    let header: ReturnType<typeof decodeProtectedHeader>;
    let iss: unknown;
    try {
      header = decodeProtectedHeader(token);
      iss = decodeJwt(token).iss;
    } catch {
      return undefined;
    }
    const o = this.options;
    const issuer = await o.issuer();
    if (issuer !== undefined && iss !== issuer) {
      if (o.othersMayJudge) return undefined;
      throw new InvalidTokenError(`the access token was issued by ${typeof iss === 'string' ? `"${iss}"` : 'no issuer'}, not by ${issuer}`);
    }
    for (const name of SELF_KEYED_HEADERS) {
      if (header[name] !== undefined) {
        throw new InvalidTokenError(`the token header carries "${name}": keys are only taken from the issuer's configured JWKS, never from the token (RFC 8725 §3.10)`);
      }
    }
    const keys = await this.keys();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        ...(issuer !== undefined && { issuer }),
        ...(o.audience && { audience: o.audience }),
        algorithms: o.algorithms,
        clockTolerance: o.clockSkew,
        ...(o.maxTokenAge !== undefined && { maxTokenAge: o.maxTokenAge }),
        requiredClaims: [...(o.requireExpiration ? ['exp'] : []), ...(o.maxTokenAge !== undefined ? ['iat'] : [])],
      }));
    } catch (err) {
      throw this.refusal(err, header);
    }
    const principal = principalFromClaims(payload, o.mapping, { audience: checkAudience(payload.aud, o.audience), expiresAt: typeof payload.exp === 'number' ? payload.exp : undefined });
    requireScopes(principal, o.requiredScopes);
    return principal;
  }

  /** jose's error → what the caller is told (each names the rule); a key fetch that failed is not the token's fault. */
  private refusal(err: unknown, header: { alg?: string; kid?: string }): Error {
    const o = this.options;
    if (err instanceof errors.JWTExpired) {
      // jose reports max_token_age (maxTokenAge) as an expiry of the iat claim.
      if (err.claim === 'iat') return new InvalidTokenError(`the access token was issued more than max_token_age (${o.maxTokenAge}s) ago`);
      return new InvalidTokenError('the access token has expired');
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.reason === 'missing') {
        if (err.claim === 'exp') return new InvalidTokenError('the access token has no expiry (exp), which auth.oauth.validation.require_expiration requires');
        if (err.claim === 'iat') return new InvalidTokenError('the access token has no iat, which auth.oauth.validation.max_token_age requires');
        return new InvalidTokenError(`the access token has no "${err.claim}" claim`);
      }
      switch (err.claim) {
        case 'nbf':
          return new InvalidTokenError('the access token is not valid yet (nbf is in the future)');
        case 'iat':
          return new InvalidTokenError('the access token\'s iat is in the future');
        case 'aud':
          return new InvalidTokenError(`the access token is for another audience (expected ${o.audience?.join(' or ')})`);
        case 'iss':
          return new InvalidTokenError('the access token was issued by another issuer');
        default:
          return new InvalidTokenError(`the access token's "${err.claim}" claim is not acceptable`);
      }
    }
    if (err instanceof errors.JOSEAlgNotAllowed) {
      return new InvalidTokenError(`the access token is signed with ${JSON.stringify(header.alg ?? 'none')}, which is not among auth.oauth.validation.allowed_algorithms (${o.algorithms.join(', ')})`);
    }
    if (err instanceof errors.JWKSNoMatchingKey) {
      return new InvalidTokenError(`no key of the issuer's JWKS matches the access token${header.kid ? `'s kid "${header.kid}"` : ''}`);
    }
    if (err instanceof errors.JWSSignatureVerificationFailed) return new InvalidTokenError('the access token\'s signature is not valid');
    if (fetchFailed(err)) return unavailable(o.log, 'the JWKS of the token\'s issuer', err);
    if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return new InvalidTokenError(`the access token is not a well-formed JWT: ${err.message}`);
    return new InvalidTokenError(`the access token is not valid: ${(err as Error).message}`);
  }
}

/** A JWKS that cannot be fetched or read (timeout, non-200 such as a redirect, not a key set), or a refused fetch. */
function fetchFailed(err: unknown): boolean {
  return err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError) || (err as errors.JOSEError).code === 'ERR_JOSE_GENERIC';
}
