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
  /**
   * The subject is an OAuth client acting as itself (client credentials, RFC
   * 9068 §2.2), not a person: it reaches shared servers, never per-user ones.
   */
  isClient?: boolean | undefined;
  /** RFC 8693 §4.1 `act`: the agent acting for the subject (it exchanged the person's token). */
  actor?: { subject: string } | undefined;
  /** The registry's own tokens: the grant the token belongs to (`gid`), ended as a whole when revoked. */
  grant?: string | undefined;
  /** The registry's own tokens: `jti`. */
  tokenId?: string | undefined;
  /** The registry's own tokens: `iat` (epoch seconds), against revocations of everything issued before a moment. */
  issuedAt?: number | undefined;
}

/** Who a request runs as, for binding sessions: a person, a client as itself, or a person through an agent never share one. */
export function callerKey(principal: Principal | undefined): string {
  if (!principal) return 'anonymous';
  const who = `${principal.provider}:${principal.isClient ? 'client:' : ''}${principal.subject}`;
  return principal.actor ? `${who} act:${principal.actor.subject}` : who;
}
