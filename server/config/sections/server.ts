import { z } from 'zod';
import { duration } from '../duration.ts';
import { httpUrl } from './common.ts';

const listen = z
  .string()
  .regex(/^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8787');

export const serverSection = z.strictObject({
  listen: listen.default('127.0.0.1:8787'),
  /** The URL clients use to reach the registry; defaults to http://{listen}. */
  public_url: httpUrl.optional(),
  /** Browser origins (besides public_url's) allowed to call the MCP endpoints. */
  allowed_origins: z.array(z.url({ error: 'expected an origin like https://app.example.com' }).transform((u) => new URL(u).origin)).default([]),
});

/** Fetches of documents from other servers (discovery, JWKS, client metadata, validation endpoints). */
export const outboundSection = z.strictObject({
  /** Allow targets on private networks (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10). */
  allow_private_networks: z.boolean().default(false),
  /** Allow loopback targets (127/8, ::1): for IdPs on the same host. */
  allow_loopback: z.boolean().default(false),
  timeout: duration.default(10),
});
