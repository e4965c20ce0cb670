import { z } from 'zod';

/** Ids appear in URLs (`/mcp/{gateway}/{server}`): keep them to a safe alphabet. */
export const id = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/, 'expected a lowercase id of letters, digits, ".", "_" or "-" (1-64 chars)');

export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of an environment variable');

export const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

export const scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected an OAuth scope token (RFC 6749 §3.3)');
