/** Who is calling: produced by inbound validation, consumed by gateway policy. */
export interface Principal {
  subject: string;
  email?: string | undefined;
  name?: string | undefined;
  scopes: string[];
  groups: string[];
  /** Roles, when the token's issuer names them (auth.oauth.claims.roles_claim). */
  roles?: string[] | undefined;
  /**
   * Which validator vouched for the caller: the registry's own tokens, a
   * bearer token (static, or a validation endpoint's verdict), or another
   * issuer's token (auth.type oauth: JWT, introspection or UserInfo).
   */
  provider: 'registry' | 'bearer' | 'oauth';
  clientId?: string | undefined;
  /** Resources the token is for (RFC 8707); undefined when the token is not audience-bound. */
  audience?: string[] | undefined;
  /** Epoch seconds; validated tokens are cached no longer than this. */
  expiresAt?: number | undefined;
}
