import * as oauth from 'oauth4webapi';
import { InvalidTokenError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import { requestOptions } from '../net/authorization-server.ts';
import type { FetchLike } from '../net/outbound.ts';
import { type ClaimMapping, checkAudience, principalFromClaims, requireScopes } from './claims.ts';
import type { Principal } from './principal.ts';
import { unavailable } from './remote-errors.ts';
import type { TokenValidator } from './validator.ts';

// RFC 7662 token introspection: the issuer says whether a token is active and
// what it carries, including the audience it was issued for (required here). The primary check for opaque tokens (and for every token
// when no keys are configured); the answer is reused for `cache_ttl` at most,
// and never past the token's own `exp` (the Authenticator caches the
// principal until its expiresAt).

export interface IntrospectionOptions {
  /** The introspection endpoint and the issuer it speaks for (configured, or discovered). */
  server: () => Promise<{ endpoint: string; issuer: string | undefined }>;
  clientId: string;
  clientSecret: string;
  audience: string[] | undefined;
  clockSkew: number;
  cacheTtl: number;
  mapping: ClaimMapping;
  requiredScopes: string[];
  fetch: FetchLike;
  log: Logger;
}

const epoch = () => Math.floor(Date.now() / 1000);

export class IntrospectionValidator implements TokenValidator {
  readonly name = 'oauth-introspection';

  constructor(private readonly options: IntrospectionOptions) {}

  async validate(token: string): Promise<Principal | undefined> {
    const o = this.options;
    const { endpoint, issuer } = await o.server();
    const as: oauth.AuthorizationServer = { issuer: issuer ?? new URL(endpoint).origin, introspection_endpoint: endpoint };
    const client: oauth.Client = { client_id: o.clientId };
    let answer: oauth.IntrospectionResponse;
    try {
      // RFC 7662 §2.1: POST token (and a hint that it is an access token), client-authenticated.
      const response = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(o.clientSecret), token, {
        additionalParameters: { token_type_hint: 'access_token' },
        ...requestOptions(o.fetch, endpoint),
      });
      answer = await oauth.processIntrospectionResponse(as, client, response);
    } catch (err) {
      throw unavailable(o.log, 'the introspection endpoint', err);
    }
    // RFC 7662 §2.2: anything but active: true means the token is not usable.
    if (answer.active !== true) throw new InvalidTokenError('the identity provider says the access token is not active (RFC 7662 introspection)');
    // A refresh token is active too, but is not an access token (token_type, or Keycloak's typ, may say so;
    // where neither does, a refresh token names no audience and the audience rule refuses it).
    if ([answer.token_type, answer.typ].some((t) => typeof t === 'string' && /refresh/i.test(t))) throw new InvalidTokenError('a refresh token is not an access token');
    const now = epoch();
    if (typeof answer.exp === 'number' && answer.exp + o.clockSkew <= now) throw new InvalidTokenError('the access token has expired');
    if (typeof answer.nbf === 'number' && answer.nbf - o.clockSkew > now) throw new InvalidTokenError('the access token is not valid yet (nbf is in the future)');
    if (issuer !== undefined && answer.iss !== undefined && answer.iss !== issuer) {
      throw new InvalidTokenError(`the access token was issued by "${String(answer.iss)}", not by ${issuer}`);
    }
    // RFC 7662 §2.2 makes aud optional, but MCP authorization requires the
    // audience check: an answer without aud is refused, as a JWT without aud is.
    const audience = checkAudience(answer.aud, o.audience);
    const principal = principalFromClaims(answer as Record<string, unknown>, o.mapping, {
      audience,
      expiresAt: Math.min(typeof answer.exp === 'number' ? answer.exp : Infinity, Date.now() / 1000 + o.cacheTtl),
    });
    requireScopes(principal, o.requiredScopes);
    return principal;
  }
}
