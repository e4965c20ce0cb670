import * as oauth from 'oauth4webapi';
import { InvalidTokenError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import { requestOptions } from '../net/authorization-server.ts';
import type { FetchLike } from '../net/outbound.ts';
import { type ClaimMapping, principalFromClaims, requireScopes } from './claims.ts';
import type { Principal } from './principal.ts';
import { unavailable } from './remote-errors.ts';
import type { TokenValidator } from './validator.ts';

// Opaque tokens validated by the IdP's UserInfo endpoint (OpenID Connect Core
// §5.3), as the Bump.sh seed allows: the token is good if UserInfo accepts it,
// and the person is who UserInfo says. It proves identity only: UserInfo names
// no scopes and no audience. The answer is reused for `cache_ttl`.

export interface UserInfoOptions {
  server: () => Promise<{ endpoint: string; issuer: string | undefined }>;
  cacheTtl: number;
  mapping: ClaimMapping;
  requiredScopes: string[];
  fetch: FetchLike;
  log: Logger;
}

export class UserInfoValidator implements TokenValidator {
  readonly name = 'oauth-userinfo';

  constructor(private readonly options: UserInfoOptions) {}

  async validate(token: string): Promise<Principal | undefined> {
    const o = this.options;
    const { endpoint, issuer } = await o.server();
    const as: oauth.AuthorizationServer = { issuer: issuer ?? new URL(endpoint).origin, userinfo_endpoint: endpoint };
    const client: oauth.Client = { client_id: 'keygate' };
    let claims: oauth.UserInfoResponse;
    try {
      const response = await oauth.userInfoRequest(as, client, token, requestOptions(o.fetch, endpoint));
      // RFC 6750 §3.1: the IdP refuses the token itself.
      if (response.status === 401 || response.status === 403) throw new InvalidTokenError('the identity provider\'s UserInfo endpoint does not accept the access token');
      claims = await oauth.processUserInfoResponse(as, client, oauth.skipSubjectCheck, response);
    } catch (err) {
      if (err instanceof InvalidTokenError) throw err;
      throw unavailable(o.log, 'the UserInfo endpoint', err);
    }
    const principal = principalFromClaims(claims as Record<string, unknown>, o.mapping, { audience: undefined, expiresAt: Date.now() / 1000 + o.cacheTtl });
    requireScopes(principal, o.requiredScopes);
    return principal;
  }
}
