import { isIP } from 'node:net';
import { z } from 'zod';
import { duration } from '../duration.ts';
import { httpUrl } from './common.ts';

const listen = z
  .string()
  .regex(/^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8787');

/** An IPv4 or IPv6 address, or a CIDR block of either. */
const addressOrBlock = z.string().refine((value) => {
  const [ip = '', bits, ...rest] = value.split('/');
  const family = isIP(ip);
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}, 'expected an IP address or a CIDR block (10.0.0.0/8), or loopback, linklocal or uniquelocal');

/**
 * Which proxies' X-Forwarded-For/-Proto/-Host are believed (express's 'trust
 * proxy'): false (none: the socket's peer is the client), true (every hop:
 * only when nothing but the proxy can reach the registry), a number of hops
 * in front of the registry, or the proxies' addresses and CIDR blocks.
 */
export const trustProxy = z.union(
  [z.boolean(), z.number().int({ error: 'expected a whole number of hops' }).min(0, 'expected a number of hops from 0 to 32').max(32, 'expected a number of hops from 0 to 32'), z.array(z.union([z.enum(['loopback', 'linklocal', 'uniquelocal']), addressOrBlock])).min(1)],
  { error: 'expected false, true, a number of hops, or a list of addresses and CIDR blocks (the proxies)' },
);

export const serverSection = z.strictObject({
  listen: listen.default('127.0.0.1:8787'),
  /** The URL clients use to reach the registry; defaults to http://{listen}. */
  public_url: httpUrl.optional(),
  /** Browser origins (besides public_url's) allowed to call the MCP endpoints. */
  allowed_origins: z.array(z.url({ error: 'expected an origin like https://app.example.com' }).transform((u) => new URL(u).origin)).default([]),
  /** Believe X-Forwarded-* from these proxies (the client address of the sign-in and registration throttles). Default false: the socket's peer is the client. */
  trust_proxy: trustProxy.default(false),
});

/** Fetches of documents from other servers (discovery, JWKS, client metadata, validation endpoints). */
export const outboundSection = z.strictObject({
  /** Allow targets on private networks (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10). */
  allow_private_networks: z.boolean().default(false),
  /** Allow loopback targets (127/8, ::1): for IdPs on the same host. */
  allow_loopback: z.boolean().default(false),
  timeout: duration.default(10),
});
