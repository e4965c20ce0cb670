import { randomUUID } from 'node:crypto';
import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  type OAuthClientInformationContext,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type OAuthTokens,
  type StoredOAuthClientInformation,
} from '@modelcontextprotocol/client';
import { authorizeWithLogin } from './form.ts';

/**
 * An OAuthClientProvider as a native MCP client would implement it: it
 * registers dynamically, "opens the browser" by recording the authorization
 * URL, and keeps tokens in memory. Every token it saves is kept in `history`.
 */
export class TestOAuthProvider implements OAuthClientProvider {
  readonly history: OAuthTokens[] = [];
  readonly registered: StoredOAuthClientInformation[] = [];
  private clients = new Map<string, StoredOAuthClientInformation>();
  private current: OAuthTokens | undefined;
  private verifier: string | undefined;
  private discovery: OAuthDiscoveryState | undefined;
  lastState: string | undefined;
  pendingAuthorization: URL | undefined;

  constructor(readonly redirect = 'http://127.0.0.1:33418/callback') {}

  get redirectUrl(): string {
    return this.redirect;
  }
  get clientMetadata(): OAuthClientMetadata {
    return { client_name: 'Keygate test client', redirect_uris: [this.redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] };
  }
  state(): string {
    return (this.lastState = randomUUID());
  }
  clientInformation(ctx?: OAuthClientInformationContext) {
    return ctx ? this.clients.get(ctx.issuer) : [...this.clients.values()][0];
  }
  saveClientInformation(info: StoredOAuthClientInformation, ctx?: OAuthClientInformationContext) {
    this.registered.push(info);
    if (ctx) this.clients.set(ctx.issuer, info);
  }
  tokens() {
    return this.current;
  }
  saveTokens(tokens: OAuthTokens) {
    this.current = tokens;
    this.history.push(tokens);
  }
  /** Replace the access token (keeping the refresh token), as if it had expired or been revoked. */
  spoilAccessToken(value = 'not-a-valid-token') {
    if (this.current) this.current = { ...this.current, access_token: value };
  }
  redirectToAuthorization(url: URL) {
    this.pendingAuthorization = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }
  saveDiscoveryState(s: OAuthDiscoveryState) {
    this.discovery = s;
  }
  discoveryState() {
    return this.discovery;
  }
}

export type Era = '2026-07-28' | '2025-11-25' | '2025-06-18';

export function newClient(era: Era): Client {
  const info = { name: 'keygate-test', version: '1.0.0' };
  if (era === '2026-07-28') return new Client(info, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  return new Client(info, { supportedProtocolVersions: [era] });
}

/**
 * Connect a real SDK client to an MCP URL, signing in through the registry's
 * login form when the server asks for it (401 → discovery → registration →
 * authorize → form POST → code exchange with PKCE).
 */
export async function connectWithSignIn(
  url: string,
  era: Era,
  credentials: { username: string; password: string },
  provider = new TestOAuthProvider(),
): Promise<{ client: Client; transport: StreamableHTTPClientTransport; provider: TestOAuthProvider }> {
  let client = newClient(era);
  let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  try {
    await client.connect(transport);
    return { client, transport, provider };
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  if (!provider.pendingAuthorization) throw new Error('the client was not sent to authorize');
  const callback = await authorizeWithLogin(provider.pendingAuthorization, credentials.username, credentials.password);
  if (callback.get('state') !== provider.lastState) throw new Error('state mismatch on the redirect');
  await transport.finishAuth(callback);
  await transport.close().catch(() => undefined);
  client = newClient(era);
  transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await client.connect(transport);
  return { client, transport, provider };
}
