import type { Response } from 'express';
import { z } from 'zod';
import { InvalidRequestError, UnauthorizedClientError } from '../http/errors.ts';
import type { Client } from './clients.ts';

// Pieces every grant of the token endpoint shares: strict parameter parsing
// (RFC 6749 §3.2), client authentication parameters, the grant-type check and
// the uncached response.

/** A single-valued parameter: missing and repeated (RFC 6749 §3.2) each say so. */
export const one = (name: string, missing = `${name} is missing`) =>
  z.string({ error: (issue) => (issue.input === undefined ? missing : `${name} must appear once, as a string (RFC 6749 §3.2)`) });

/** A parameter that may repeat (RFC 8707 `resource`, RFC 8693 `audience`). */
export const many = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));

export const clientAuth = {
  client_id: one('client_id').optional(),
  client_secret: one('client_secret').optional(),
};

export function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) {
    throw new InvalidRequestError(result.error.issues[0]!.message);
  }
  return result.data;
}

export function tokenResponse(res: Response, body: Record<string, unknown>): void {
  // RFC 6749 §5.1: never cached.
  res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json(body);
}

/** RFC 6749 §5.2 unauthorized_client: the client may not use this grant type. */
export function requireGrantType(client: Client, grant: string): void {
  if (!client.grant_types.includes(grant)) throw new UnauthorizedClientError(`this client may not use the ${grant} grant`);
}
