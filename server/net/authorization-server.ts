import * as oauth from 'oauth4webapi';
import { idpUrl } from '../config/sections/auth.ts';
import type { FetchLike } from './outbound.ts';

// Talking to another authorization server with oauth4webapi, every request
// through the SSRF-guarded outbound fetch. Plain http is allowed by the
// configuration only for an IdP on this machine (see config idpUrl); the
// outbound policy still decides whether loopback may be reached at all.

/** The options every oauth4webapi request gets: our fetch, and http only where the URL itself is http. */
export function requestOptions(fetch: FetchLike, url: string | URL): { [oauth.customFetch]: (url: string, options: unknown) => Promise<Response>; [oauth.allowInsecureRequests]: boolean } {
  return {
    [oauth.customFetch]: fetch as (url: string, options: unknown) => Promise<Response>,
    // Deliberately awkward in oauth4webapi; here it follows from a config check
    // that admits http only for localhost / 127.0.0.1 / [::1].
    [oauth.allowInsecureRequests]: new URL(url).protocol === 'http:',
  };
}

const OIDC_SUFFIX = '/.well-known/openid-configuration';
const RFC8414_SEGMENT = '/.well-known/oauth-authorization-server';

/**
 * Where a configured discovery URL points: an issuer identifier (OpenID
 * Connect Discovery appends the well-known suffix), or a well-known URL
 * itself, OIDC style or RFC 8414 §3 path-inserted.
 */
export function discoveryTarget(configured: string): { issuer: URL; algorithm: 'oidc' | 'oauth2' } {
  const url = new URL(configured);
  if (url.pathname.endsWith(OIDC_SUFFIX)) {
    url.pathname = url.pathname.slice(0, -OIDC_SUFFIX.length) || '/';
    return { issuer: url, algorithm: 'oidc' };
  }
  if (url.pathname.startsWith(RFC8414_SEGMENT)) {
    url.pathname = url.pathname.slice(RFC8414_SEGMENT.length) || '/';
    return { issuer: url, algorithm: 'oauth2' };
  }
  return { issuer: url, algorithm: 'oidc' };
}

/** OpenID Connect Discovery 1.0 §4 / RFC 8414 §3: fetch and check the metadata (its issuer must be the one asked for). */
export async function discover(configured: string, fetch: FetchLike): Promise<oauth.AuthorizationServer> {
  const { issuer, algorithm } = discoveryTarget(configured);
  const response = await oauth.discoveryRequest(issuer, { algorithm, ...requestOptions(fetch, issuer) });
  return oauth.processDiscoveryResponse(issuer, response);
}

/** Is this a URL a document from another server may send us to? The same rule as configured IdP URLs: https, or http on this machine. */
export function acceptableEndpoint(value: unknown): value is string {
  return idpUrl.safeParse(value).success;
}

/**
 * A value loaded on first use and kept for `ttlSeconds`; concurrent callers
 * share one load, and a failed load is not kept (the next caller tries again).
 */
export class Cached<T> {
  private value: { data: T; until: number } | undefined;
  private pending: Promise<T> | undefined;

  constructor(
    private readonly load: () => Promise<T>,
    private readonly ttlSeconds: number,
  ) {}

  get(): Promise<T> {
    if (this.value && this.value.until > Date.now()) return Promise.resolve(this.value.data);
    this.pending ??= this.load().then(
      (data) => {
        this.value = { data, until: Date.now() + this.ttlSeconds * 1000 };
        this.pending = undefined;
        return data;
      },
      (err: unknown) => {
        this.pending = undefined;
        throw err;
      },
    );
    return this.pending;
  }
}
