/** Who is calling: produced by inbound validation, consumed by gateway policy. */
export interface Principal {
  subject: string;
  email?: string | undefined;
  name?: string | undefined;
  scopes: string[];
  groups: string[];
  /** Which validator vouched for the caller: the registry's own tokens, a static bearer token, ... */
  provider: 'registry' | 'bearer';
  clientId?: string | undefined;
  /** Resources the token is for (RFC 8707); undefined when the token is not audience-bound. */
  audience?: string[] | undefined;
  /** Epoch seconds; validated tokens are cached no longer than this. */
  expiresAt?: number | undefined;
}
