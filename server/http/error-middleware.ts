import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../log.ts';
import { bearerChallenge } from '../inbound/authenticator.ts';
import { StoreUnavailableError } from '../store/store.ts';
import { InsufficientScopeError, InvalidClientError, InvalidTokenError, KeygateError, TemporarilyUnavailableError } from './errors.ts';

/**
 * One place turns errors into `{"error","error_description"}`: a KeygateError
 * keeps its code and status; a body that could not be parsed is
 * `invalid_request`; a store that cannot save (a full disk) is a 503
 * `temporarily_unavailable`, its cause logged; anything else is a 500
 * `server_error` whose cause is logged under a request id and never sent.
 */
export function errorMiddleware(log: Logger, resourceMetadata: string) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof StoreUnavailableError) {
      log.error('request %s %s: %s', req.method, req.path, err.message);
      err = new TemporarilyUnavailableError('the registry cannot save changes right now; nothing was changed, try again later', { retryAfter: 30 });
    }
    res.set('Cache-Control', 'no-store');
    if (err instanceof KeygateError) {
      if (err instanceof InvalidClientError && req.headers.authorization?.toLowerCase().startsWith('basic ')) {
        res.set('WWW-Authenticate', 'Basic realm="keygate"'); // RFC 6749 §5.2
      }
      if (err instanceof InvalidTokenError || err instanceof InsufficientScopeError) {
        res.set('WWW-Authenticate', bearerChallenge(resourceMetadata, { code: err.code, description: err.message }, err instanceof InsufficientScopeError ? err.scope : undefined));
      }
      if (err instanceof TemporarilyUnavailableError && err.retryAfter !== undefined) res.set('Retry-After', String(err.retryAfter));
      res.status(err.status).json(err.expose ? err.toJSON() : { error: err.code, error_description: 'the server could not complete the request' });
      return;
    }
    const status = (err as { status?: unknown }).status;
    const type = (err as { type?: unknown }).type;
    if (typeof status === 'number' && status >= 400 && status < 500 && typeof type === 'string') {
      // body-parser: malformed JSON, too large, wrong charset...
      const description = type === 'entity.parse.failed' ? 'the request body is not valid JSON' : type === 'entity.too.large' ? 'the request body is too large' : 'the request body could not be read';
      res.status(status === 413 ? 413 : 400).json({ error: 'invalid_request', error_description: description });
      return;
    }
    const requestId = randomUUID();
    log.error('request %s %s %s failed: %s', requestId, req.method, req.path, err instanceof Error ? (err.stack ?? err.message) : String(err));
    res.status(500).json({ error: 'server_error', error_description: `the server could not complete the request (request id ${requestId})` });
  };
}
