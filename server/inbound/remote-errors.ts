import * as oauth from 'oauth4webapi';
import { TemporarilyUnavailableError } from '../http/errors.ts';
import type { Logger } from '../log.ts';

/** What went wrong talking to another server, in words fit for a log line (never a token or a secret). */
export function describeRemoteFailure(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError) return `it answered HTTP ${err.status} ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`;
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const challenge = err.cause[0];
    return `it answered HTTP ${err.response.status} with a ${challenge?.scheme ?? ''} challenge ${challenge?.parameters.error ?? ''}`.trim();
  }
  if (err instanceof oauth.OperationProcessingError) return `its answer is not usable: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * A server the registry relies on to judge tokens (introspection, UserInfo,
 * a validation endpoint, discovery) could not be used: that is not the
 * token's fault, so the caller gets 503 temporarily_unavailable and the
 * operator a log line saying why.
 */
export function unavailable(log: Logger, what: string, err: unknown): TemporarilyUnavailableError {
  log.warn('%s cannot be used to check a token: %s', what, describeRemoteFailure(err));
  return new TemporarilyUnavailableError(`${what} cannot check the token right now; try again shortly`);
}
