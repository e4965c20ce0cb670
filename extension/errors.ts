// Errors of the extension, after panva/jose: one class per failure, each with
// a stable `code` that callers and tests match on, and a message that says
// what was wrong. None of them ever carries a token in its message.

export abstract class KeygateExtensionError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The keygate.registryUrl setting (or what the user typed) is not an http(s) URL. */
export class InvalidRegistryUrlError extends KeygateExtensionError {
  readonly code = 'ERR_INVALID_REGISTRY_URL';
}

/** RFC 8414 discovery failed: unreachable, not a registry, or an issuer that is not the registry. */
export class DiscoveryError extends KeygateExtensionError {
  readonly code = 'ERR_DISCOVERY_FAILED';
}

/** RFC 6749 §10.12: the `state` of the redirect is not the one this sign-in sent. */
export class StateMismatchError extends KeygateExtensionError {
  readonly code = 'ERR_STATE_MISMATCH';
}

/** RFC 9207 §2.4: the redirect's `iss` is missing or names another authorization server. */
export class IssuerMismatchError extends KeygateExtensionError {
  readonly code = 'ERR_ISSUER_MISMATCH';
}

/** RFC 6749 §4.1.2.1: the registry answered the authorization request with an error. */
export class AuthorizationDeniedError extends KeygateExtensionError {
  readonly code = 'ERR_AUTHORIZATION_DENIED';
  constructor(
    readonly error: string,
    description: string | undefined,
  ) {
    super(description ? `${error}: ${description}` : error);
  }
}

/** The token endpoint refused a grant (RFC 6749 §5.2), e.g. `invalid_grant`. */
export class TokenRequestError extends KeygateExtensionError {
  readonly code = 'ERR_TOKEN_REQUEST';
  constructor(
    readonly error: string,
    description: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(description ? `${error}: ${description}` : error, options);
  }
}

/** The refresh token was rejected; the session is gone and the user must sign in again. */
export class SessionExpiredError extends KeygateExtensionError {
  readonly code = 'ERR_SESSION_EXPIRED';
}

export class SignInCancelledError extends KeygateExtensionError {
  readonly code = 'ERR_SIGN_IN_CANCELLED';
}

export class SignInTimeoutError extends KeygateExtensionError {
  readonly code = 'ERR_SIGN_IN_TIMEOUT';
}

/** The registry answered with an HTTP error (its `{error, error_description}` when it sent one). */
export class RegistryHttpError extends KeygateExtensionError {
  readonly code = 'ERR_REGISTRY_HTTP';
  constructor(
    readonly status: number,
    readonly error: string | undefined,
    message: string,
    /** The registry's error_description, for people. */
    readonly description?: string,
  ) {
    super(message);
  }
}

/** The registry did not answer at all (refused, reset, timed out): it is down or out of reach. */
export class RegistryUnreachableError extends KeygateExtensionError {
  readonly code = 'ERR_REGISTRY_UNREACHABLE';
}

/** The registry's https certificate is not trusted here (self-signed, expired, another name): nothing was sent. */
export class RegistryTlsError extends KeygateExtensionError {
  readonly code = 'ERR_REGISTRY_TLS';
}

/** The registry answered 200 with a body that is not the documented shape. */
export class RegistryResponseError extends KeygateExtensionError {
  readonly code = 'ERR_REGISTRY_RESPONSE';
}

/** A message for people: the error's own message, or a generic one. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
