// Errors that carry their wire form. Like node-oidc-provider, each error knows
// its HTTP status and whether its description may be shown to the client;
// anything that is not a KeygateError becomes a 500 `server_error` whose cause
// is logged (never sent) under a request id.

export abstract class KeygateError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  /** false: the description is replaced by a generic text on the wire. */
  readonly expose: boolean = true;

  constructor(description: string, options?: { cause?: unknown }) {
    super(description, options);
    this.name = new.target.name;
  }

  get description(): string {
    return this.message;
  }

  toJSON(): { error: string; error_description: string } {
    return { error: this.code, error_description: this.message };
  }
}

// RFC 6749 §5.2 and §4.1.2.1 error codes.
export class InvalidRequestError extends KeygateError {
  readonly code = 'invalid_request';
  readonly status = 400;
}
export class InvalidClientError extends KeygateError {
  readonly code = 'invalid_client';
  readonly status = 401;
}
export class InvalidGrantError extends KeygateError {
  readonly code = 'invalid_grant';
  readonly status = 400;
}
export class UnauthorizedClientError extends KeygateError {
  readonly code = 'unauthorized_client';
  readonly status: number = 400;
}
/**
 * RFC 7662 §4: the caller authenticated, but is not a protected resource
 * allowed to introspect. Its credentials are fine (so not invalid_client and
 * 401, which asks it to authenticate again): unauthorized_client, and 403 as
 * for any authenticated request that is refused.
 */
export class IntrospectionNotAllowedError extends UnauthorizedClientError {
  override readonly status = 403;
}
export class UnsupportedGrantTypeError extends KeygateError {
  readonly code = 'unsupported_grant_type';
  readonly status = 400;
}
export class UnsupportedResponseTypeError extends KeygateError {
  readonly code = 'unsupported_response_type';
  readonly status = 400;
}
export class InvalidScopeError extends KeygateError {
  readonly code = 'invalid_scope';
  readonly status = 400;
}
export class AccessDeniedError extends KeygateError {
  readonly code = 'access_denied';
  readonly status = 403;
}
// OpenID Connect Core §3.1.2.6, for prompt=none.
export class LoginRequiredError extends KeygateError {
  readonly code = 'login_required';
  readonly status = 400;
}
export class ConsentRequiredError extends KeygateError {
  readonly code = 'consent_required';
  readonly status = 400;
}
// RFC 8707 §2: a resource the server does not know or will not issue for.
export class InvalidTargetError extends KeygateError {
  readonly code = 'invalid_target';
  readonly status = 400;
}
// RFC 7591 §3.2.2.
export class InvalidRedirectUriError extends KeygateError {
  readonly code = 'invalid_redirect_uri';
  readonly status = 400;
}
export class InvalidClientMetadataError extends KeygateError {
  readonly code = 'invalid_client_metadata';
  readonly status = 400;
}
// RFC 6750 §3.1.
export class InvalidTokenError extends KeygateError {
  readonly code = 'invalid_token';
  readonly status = 401;
}
/**
 * A token of a grant the registry ended: `invalid_token`, with why (for the
 * audit and the JSON-RPC error's reason) and whose it was (the audit records
 * who tried).
 */
export class RevokedTokenError extends InvalidTokenError {
  constructor(
    description: string,
    readonly reason: string,
    readonly principal: unknown,
  ) {
    super(description);
  }
}
export class InsufficientScopeError extends KeygateError {
  readonly code = 'insufficient_scope';
  readonly status = 403;
  constructor(
    description: string,
    readonly scope: string,
  ) {
    super(description);
  }
}
// Keygate's own API errors, same JSON shape.
export class NotFoundError extends KeygateError {
  readonly code = 'not_found';
  readonly status = 404;
}
export class ForbiddenError extends KeygateError {
  readonly code = 'forbidden';
  readonly status = 403;
}
export class ServerError extends KeygateError {
  readonly code = 'server_error';
  readonly status = 500;
  override readonly expose = false;
}
export class TemporarilyUnavailableError extends KeygateError {
  readonly code = 'temporarily_unavailable';
  readonly status: number = 503;
  /** Seconds, sent as Retry-After (RFC 9110 §10.2.3). */
  readonly retryAfter: number | undefined;
  constructor(description: string, options?: { retryAfter?: number; cause?: unknown }) {
    super(description, options);
    this.retryAfter = options?.retryAfter;
  }
}
/** RFC 6585 §4: too many requests from this caller; Retry-After says when to try again. */
export class TooManyRequestsError extends TemporarilyUnavailableError {
  override readonly status = 429;
}
