import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';

// Outbound fetches whose target is not fully trusted (discovery documents,
// JWKS, Client ID Metadata Documents, validation endpoints): the resolved
// address is checked before connecting, and the connection is made to that
// very address (no second DNS answer can swap it: DNS rebinding). Link-local
// and cloud-metadata addresses are always refused; private and loopback
// addresses only when the configuration allows them. Redirects are not
// followed, bodies are capped, and every fetch has a deadline.

export interface OutboundPolicy {
  allowPrivateNetworks: boolean;
  allowLoopback: boolean;
  timeoutMs: number;
  maxResponseBytes: number;
}

export const DEFAULT_OUTBOUND: OutboundPolicy = { allowPrivateNetworks: false, allowLoopback: false, timeoutMs: 10_000, maxResponseBytes: 1024 * 1024 };

export class OutboundError extends Error {
  readonly code = 'ERR_OUTBOUND';
}

const never = new BlockList();
// Link-local (incl. cloud metadata 169.254.169.254, fd00:ec2::254 is ULA, listed below), "this network", multicast, reserved.
never.addSubnet('169.254.0.0', 16);
never.addSubnet('0.0.0.0', 8);
never.addSubnet('224.0.0.0', 4);
never.addSubnet('240.0.0.0', 4);
never.addSubnet('fe80::', 10, 'ipv6');
never.addSubnet('ff00::', 8, 'ipv6');
never.addAddress('::', 'ipv6');
// Cloud metadata services outside link-local.
never.addAddress('fd00:ec2::254', 'ipv6'); // AWS IMDS over IPv6
never.addAddress('100.100.100.200'); // Alibaba Cloud

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8);
loopback.addAddress('::1', 'ipv6');

const privateNets = new BlockList();
privateNets.addSubnet('10.0.0.0', 8);
privateNets.addSubnet('172.16.0.0', 12);
privateNets.addSubnet('192.168.0.0', 16);
privateNets.addSubnet('100.64.0.0', 10); // carrier-grade NAT
privateNets.addSubnet('198.18.0.0', 15); // benchmarking
privateNets.addSubnet('fc00::', 7, 'ipv6'); // unique local

export type AddressClass = 'forbidden' | 'loopback' | 'private' | 'public';

export function classifyAddress(address: string): AddressClass {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  if (never.check(address, family)) return 'forbidden';
  if (loopback.check(address, family)) return 'loopback';
  if (privateNets.check(address, family)) return 'private';
  return 'public';
}

function refusal(address: string, policy: OutboundPolicy): string | undefined {
  const kind = classifyAddress(address);
  if (kind === 'forbidden') return `${address} is a link-local, metadata or reserved address`;
  if (kind === 'loopback' && !policy.allowLoopback) return `${address} is a loopback address (allow with outbound.allow_loopback)`;
  if (kind === 'private' && !policy.allowPrivateNetworks) return `${address} is a private address (allow with outbound.allow_private_networks)`;
  return undefined;
}

/** Throws when the URL's host may not be reached under the policy (literal IPs are checked here; names at connect time). */
export function checkUrl(url: URL, policy: OutboundPolicy): void {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new OutboundError(`only http(s) URLs may be fetched, not ${url.protocol}`);
  if (url.username || url.password) throw new OutboundError('URLs with credentials are not fetched');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) {
    const why = refusal(host, policy);
    if (why) throw new OutboundError(`refusing to fetch ${url.origin}: ${why}`);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

function guardedLookup(policy: OutboundPolicy) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback) => {
    dnsLookup(hostname, { all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const refused = addresses.map((a) => refusal(a.address, policy)).find(Boolean);
      // Any refused answer refuses the name: a mixed answer is how rebinding starts.
      if (refused) return callback(Object.assign(new OutboundError(`refusing to connect to ${hostname}: ${refused}`), { code: 'ERR_OUTBOUND' }), '');
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A fetch (the subset libraries use) that applies the policy to every request. */
export function outboundFetch(policy: OutboundPolicy): FetchLike {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    checkUrl(url, policy);
    const method = init.method ?? (input instanceof Request ? input.method : 'GET');
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init.headers).forEach((value, key) => headers.set(key, value));
    let body: Buffer | undefined;
    const rawBody = init.body ?? (input instanceof Request && input.body ? await input.arrayBuffer() : undefined);
    if (rawBody !== undefined && rawBody !== null) {
      body = typeof rawBody === 'string' ? Buffer.from(rawBody) : rawBody instanceof URLSearchParams ? Buffer.from(rawBody.toString()) : Buffer.from(rawBody as ArrayBuffer);
      if (rawBody instanceof URLSearchParams && !headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    }
    const signals = [AbortSignal.timeout(policy.timeoutMs), init.signal].filter((s): s is AbortSignal => !!s);
    const signal = AbortSignal.any(signals);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;

    return new Promise<Response>((resolve, reject) => {
      const req = send(url, {
        method,
        headers: Object.fromEntries(headers),
        lookup: guardedLookup(policy) as never,
        signal,
      });
      req.on('error', (err) => reject(signal.aborted ? new OutboundError(`${url.origin} did not answer within ${policy.timeoutMs} ms`) : err));
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > policy.maxResponseBytes) {
            res.destroy();
            reject(new OutboundError(`${url.origin} sent more than ${policy.maxResponseBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            for (const value of Array.isArray(v) ? v : [v]) responseHeaders.append(k, value);
          }
          const status = res.statusCode ?? 502;
          const nullBody = status === 204 || status === 304 || method === 'HEAD';
          const response = new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: responseHeaders });
          Object.defineProperty(response, 'url', { value: url.toString() });
          resolve(response);
        });
      });
      req.end(body);
    });
  };
}

/** The policy of the `outbound` configuration section. */
export function outboundPolicy(config: { allow_private_networks: boolean; allow_loopback: boolean; timeout: number }): OutboundPolicy {
  return { allowPrivateNetworks: config.allow_private_networks, allowLoopback: config.allow_loopback, timeoutMs: config.timeout * 1000, maxResponseBytes: DEFAULT_OUTBOUND.maxResponseBytes };
}
