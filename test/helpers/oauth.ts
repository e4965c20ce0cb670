import { createHash, randomBytes } from 'node:crypto';
import { authorizeWithLogin } from './form.ts';

// The OAuth client side of the tests, by hand, so each step can be bent.

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export const REDIRECT = 'http://127.0.0.1:43210/callback';

export async function registerClient(base: string, metadata: Record<string, unknown> = {}): Promise<{ client_id: string; client_secret?: string }> {
  const res = await fetch(`${base}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'raw test client', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', ...metadata }),
  });
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { client_id: string; client_secret?: string };
}

export function authorizeUrl(base: string, params: Record<string, string | string[] | undefined>): URL {
  const url = new URL(`${base}/oauth/authorize`);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const value of Array.isArray(v) ? v : [v]) url.searchParams.append(k, value);
  }
  return url;
}

export function tokenRequest(base: string, params: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Response> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const value of Array.isArray(v) ? v : [v]) body.append(k, value);
  return fetch(`${base}/oauth/token`, { method: 'POST', body, headers });
}

export interface TokenSet {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  scope: string;
  token_type: string;
}

/** What an admin tool asks for: mcp:admin is granted only when asked for by name (and only for the registry as a whole). */
export const ADMIN_SCOPE_REQUEST = 'mcp:read mcp:write mcp:admin';

/** signIn as an admin tool does: asking for mcp:admin by name. */
export function signInAdmin(base: string, user: { username: string; password: string }, options: { clientId?: string } = {}) {
  return signIn(base, user, { ...options, scope: ADMIN_SCOPE_REQUEST });
}

/** Register, sign in as `user` and redeem the code: the happy path, returning every intermediate. */
export async function signIn(
  base: string,
  user: { username: string; password: string },
  options: { resource?: string | string[]; scope?: string; clientId?: string } = {},
): Promise<{ clientId: string; code: string; verifier: string; tokens: TokenSet }> {
  const clientId = options.clientId ?? (await registerClient(base)).client_id;
  const { verifier, challenge } = pkce();
  const callback = await authorizeWithLogin(
    authorizeUrl(base, { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'st', resource: options.resource, scope: options.scope }),
    user.username,
    user.password,
  );
  const code = callback.get('code');
  if (!code) throw new Error(`no code in the redirect: ${callback}`);
  const res = await tokenRequest(base, { grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: REDIRECT, code_verifier: verifier });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  return { clientId, code, verifier, tokens: (await res.json()) as TokenSet };
}
