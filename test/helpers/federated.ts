import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { type Era, newClient, TestOAuthProvider } from './mcp-oauth.ts';
import { authorizeUrl, pkce, REDIRECT, registerClient, tokenRequest, type TokenSet } from './oauth.ts';
import { startRegistry, type TestRegistry } from './registry.ts';
import { UserAgent } from './user-agent.ts';

// A registry in oauth_server.mode federated in front of the demo upstream,
// and a person signing in through the upstream IdP's own pages (any IdP whose
// login page is a form with `login` and `password`, and a Cancel button:
// test/helpers/oidc-provider.ts, or the GitHub stand-in).

export const IDP_CLIENT_ID = 'keygate-registry';
export const IDP_CLIENT_SECRET = 'registry-secret-0123456789abcdef0123456789';

export interface FederatedRegistry {
  registry: TestRegistry;
  upstream: DemoUpstream;
  apiKey: string;
  dataDir: string;
  close(): Promise<void>;
}

/** `federated`: the oauth_server.federated block (client_id and client_secret_env are filled in). */
export async function startFederatedRegistry(federated: Record<string, unknown>, options: { dataDir?: string; keepDataDir?: boolean; /** Replaces or adds top-level keys of the configuration (gateways, access). */ config?: Record<string, unknown> } = {}): Promise<FederatedRegistry> {
  const apiKey = `demo-${randomBytes(16).toString('hex')}`;
  const upstream = await startDemoUpstream({ apiKey });
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'keygate-federated-'));
  const registry = await startRegistry(
    {
      outbound: { allow_loopback: true },
      oauth_server: {
        mode: 'federated',
        scopes_supported: ['mcp:read', 'mcp:write', 'mcp:admin'],
        federated: { client_id: IDP_CLIENT_ID, client_secret_env: 'IDP_CLIENT_SECRET', ...federated },
      },
      upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
      identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
      gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
      ...options.config,
    },
    { IDP_CLIENT_SECRET, DEMO_KEY: apiKey },
    { dataDir },
  );
  return {
    registry,
    upstream,
    apiKey,
    dataDir,
    async close() {
      await registry.close();
      await upstream.close();
      if (!options.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface IdpSignIn {
  /** Where the browser was sent back to the client (code or error), if it got there. */
  landed: URL | undefined;
  /** The page it stopped on instead (an error page, the IdP's login page again...). */
  page: { status: number; url: URL; html: string } | undefined;
  ua: UserAgent;
}

/**
 * Follow an authorization URL of the registry as a browser: to the IdP's
 * login page, sign in there (or Cancel), back through /oauth/callback, approve
 * the registry's consent page if shown, until the client's redirect URI.
 * `stopAtCallback` hands back the /oauth/callback URL unfetched instead.
 */
export async function signInThroughIdp(
  start: string | URL,
  person: { login: string; password: string } | 'cancel',
  options: { ua?: UserAgent; redirect?: string; stopAtCallback?: boolean } = {},
): Promise<IdpSignIn & { callback?: URL }> {
  const ua = options.ua ?? new UserAgent();
  const redirect = options.redirect ?? REDIRECT;
  const atClient = (u: URL) => u.toString().startsWith(redirect);
  const stop = (u: URL) => atClient(u) || (options.stopAtCallback === true && u.pathname === '/oauth/callback');
  let step = await ua.follow(start, stop);
  // Each page on the way: the IdP's login form (sign in or Cancel), the registry's consent form (approve); anything else is where it stops.
  for (let pages = 0; pages < 5 && step.response; pages++) {
    const page = { html: await step.response.text(), url: step.url };
    let submitted: Response;
    if (/name="password"/.test(page.html) && !page.url.pathname.startsWith('/oauth/')) {
      submitted =
        person === 'cancel'
          ? await ua.submit(page, {}, { name: 'action', value: 'cancel' })
          : await ua.submit(page, { login: person.login, password: person.password }, { name: 'action', value: 'login' });
    } else if (/value="approve"/.test(page.html)) {
      submitted = await ua.submit(page, {}, { name: 'action', value: 'approve' });
    } else {
      return { landed: undefined, page: { status: step.response.status, url: step.url, html: page.html }, ua };
    }
    step = await ua.follow(step.url, stop, submitted);
  }
  if (step.response) throw new Error(`too many pages on the way, last ${step.url}`);
  return atClient(step.url) ? { landed: step.url, page: undefined, ua } : { landed: undefined, page: undefined, ua, callback: step.url };
}

/** Register a client, sign in through the IdP and redeem the code: the federated happy path. */
export async function federatedTokens(base: string, person: { login: string; password: string }, options: { resource?: string; scope?: string } = {}): Promise<{ clientId: string; tokens: TokenSet; ua: UserAgent }> {
  const { client_id } = await registerClient(base);
  const { verifier, challenge } = pkce();
  const url = authorizeUrl(base, { response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'st', resource: options.resource, scope: options.scope });
  const result = await signInThroughIdp(url, person);
  const code = result.landed?.searchParams.get('code');
  if (!code) throw new Error(`no code: ${result.landed ?? `${result.page?.status} ${result.page?.url}\n${result.page?.html}`}`);
  const res = await tokenRequest(base, { grant_type: 'authorization_code', client_id, code, redirect_uri: REDIRECT, code_verifier: verifier });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  return { clientId: client_id, tokens: (await res.json()) as TokenSet, ua: result.ua };
}

/** A real MCP SDK client connecting to an MCP URL, the person signing in at the upstream IdP when the registry asks. */
export async function connectThroughIdp(url: string, era: Era, person: { login: string; password: string }, provider = new TestOAuthProvider()) {
  let client = newClient(era);
  let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  try {
    await client.connect(transport);
    return { client, transport, provider };
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  if (!provider.pendingAuthorization) throw new Error('the client was not sent to authorize');
  const result = await signInThroughIdp(provider.pendingAuthorization, person, { redirect: provider.redirectUrl });
  if (!result.landed) throw new Error(`sign-in stopped at ${result.page?.status} ${result.page?.url}\n${result.page?.html}`);
  if (result.landed.searchParams.get('state') !== provider.lastState) throw new Error('state mismatch on the redirect');
  await transport.finishAuth(result.landed.searchParams);
  await transport.close().catch(() => undefined);
  client = newClient(era);
  transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await client.connect(transport);
  return { client, transport, provider };
}
