import { InvalidRegistryUrlError } from './errors.ts';

// The registry's base URL: where discovery starts, what the registry calls
// itself (its issuer), and the `resource` (RFC 8707) the extension asks tokens
// for: the registry issues tokens whose audience is this base, which covers
// every /mcp/... endpoint and /api/v1.

export const DEFAULT_REGISTRY_URL = 'http://127.0.0.1:8787';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * The canonical form of a registry URL, or InvalidRegistryUrlError: http(s)
 * only, no credentials, query or fragment, no trailing slash (the registry
 * trims it from its issuer and resource identifiers too).
 */
export function parseRegistryUrl(raw: string): string {
  const value = raw.trim();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidRegistryUrlError(`"${value}" is not a URL; expected something like ${DEFAULT_REGISTRY_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidRegistryUrlError(`the registry URL must start with http:// or https://, not ${url.protocol}//`);
  }
  if (url.username || url.password) throw new InvalidRegistryUrlError('the registry URL must not contain a user name or password');
  if (url.search || url.hash) throw new InvalidRegistryUrlError('the registry URL must not contain a query or fragment');
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/** Problem with a typed registry URL, for an input box's validation message. */
export function registryUrlProblem(raw: string): string | undefined {
  try {
    parseRegistryUrl(raw);
    return undefined;
  } catch (err) {
    return err instanceof InvalidRegistryUrlError ? err.message : String(err);
  }
}

/** http on a loopback address: the only place plain http does not expose tokens to the network. */
export function isLoopbackHttp(registry: string): boolean {
  const url = new URL(registry);
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
}

/**
 * oauth4webapi refuses http unless told otherwise, per request. The registry
 * the user chose decides: an http registry (local development, a loopback
 * registry) may be spoken to over http; an https registry never downgrades.
 */
export function allowsInsecureRequests(registry: string): boolean {
  return new URL(registry).protocol === 'http:';
}

/** Is `url` the registry itself or under it (so the registry's tokens may be sent there)? */
export function isWithinRegistry(registry: string, url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.username || parsed.password) return false;
  const canonical = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  return canonical === registry || canonical.startsWith(`${registry}/`);
}
