import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { InsufficientScopeError, InvalidRequestError, InvalidTokenError, KeygateError } from '../http/errors.ts';
import type { Principal } from '../inbound/principal.ts';

// What the admin and audit routes share: input parsed strictly with zod (the
// error names the field), the caller's scope checked before anything else, and
// a 409 for a change that contradicts what is there.

/** The change contradicts the current state (an id taken, a config-defined entry, a reference still in use). */
export class ConflictError extends KeygateError {
  readonly code = 'conflict';
  readonly status = 409;
}

/** `servers.0.identity: expected identity: shared or per_user`; unknown keys are named too. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.join('.');
    return `unknown field ${issue.keys.map((k) => (where ? `${where}.${k}` : k)).join(', ')}`;
  }
  const where = issue.path.map(String).join('.');
  return where ? `${where}: ${issue.message}` : issue.message;
}

/** Parse client input strictly: the first problem becomes a 400 invalid_request naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what?: string): z.infer<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    const description = describeIssue(result.error.issues[0]!);
    throw new InvalidRequestError(what ? `${what}: ${description}` : description);
  }
  return result.data;
}

/** The caller, or 401 (RFC 6750 §3.1 invalid_token, with the challenge). */
export function caller(req: Request, why: string): Principal {
  if (!req.principal) throw new InvalidTokenError(why);
  return req.principal;
}

/** RFC 6750 §3.1: a token without the scope is 403 insufficient_scope naming the scope; no token is 401. */
export function requireScope(scope: string) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const principal = caller(req, `this API needs an access token with the scope ${scope}`);
    if (!principal.scopes.includes(scope)) throw new InsufficientScopeError(`this API needs the scope ${scope}`, scope);
    next();
  };
}

export const epoch = (): number => Math.floor(Date.now() / 1000);
