// Redirect URI policy (OAuth 2.1 §2.3.1, §7.5.1; RFC 8252 §7; RFC 9700 §4.1).

export const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Schemes a redirect may never use, whatever a client registers. */
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'blob:', 'about:', 'filesystem:', 'ws:', 'wss:']);

export function isLoopback(url: URL): boolean {
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
}

/**
 * Parse a redirect URI strictly: any whitespace or control character makes it
 * invalid rather than being trimmed away, so `java\tscript:` or a leading
 * space cannot sneak past the scheme check.
 */
export function parseRedirectUri(value: string): URL | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u00a0\u2028\u2029]/.test(value)) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.hash || value.includes('#')) return undefined; // OAuth 2.1 §2.3.1: no fragment
  if (url.username || url.password) return undefined;
  return url;
}

/**
 * Why a client may not register this redirect URI, or undefined when it may:
 * https anywhere; http only on a loopback address (RFC 8252 §7.3); a private-use
 * scheme for native apps (RFC 8252 §7.1) such as vscode:, cursor:; never the
 * schemes that execute or read locally.
 */
export function redirectUriProblem(value: string): string | undefined {
  const url = parseRedirectUri(value);
  if (!url) return `"${truncate(value)}" is not an absolute URI without fragment, credentials or whitespace`;
  const scheme = url.protocol.toLowerCase();
  if (FORBIDDEN_SCHEMES.has(scheme)) return `the ${scheme} scheme may not be used for a redirect`;
  if (scheme === 'https:') return undefined;
  if (scheme === 'http:') {
    return isLoopback(url) ? undefined : 'http redirect URIs are only allowed on a loopback address (127.0.0.1, [::1], localhost); use https';
  }
  // A private-use URI scheme: letters, digits, + - . (RFC 3986 §3.1), at least two characters.
  if (!/^[a-z][a-z0-9+.-]+:$/.test(scheme)) return `the scheme ${scheme} is not allowed`;
  return undefined;
}

/**
 * Does the URI a client sent match one it registered? Exact string comparison
 * (OAuth 2.1 §4.1.3), except that a loopback http URI matches on any port
 * (RFC 8252 §7.3): native apps get a free port from the OS at run time.
 */
export function redirectUriMatches(registered: string, presented: string): boolean {
  if (registered === presented) return true;
  const a = parseRedirectUri(registered);
  const b = parseRedirectUri(presented);
  if (!a || !b || !isLoopback(a) || !isLoopback(b)) return false;
  return a.hostname === b.hostname && a.pathname === b.pathname && a.search === b.search;
}

function truncate(value: string): string {
  return value.length > 80 ? `${value.slice(0, 77)}...` : value;
}
