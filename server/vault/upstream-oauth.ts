import * as oauth from 'oauth4webapi';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import type { FetchLike } from '../net/outbound.ts';
import { Collection, type Store } from '../store/index.ts';
import type { Upstream } from '../catalog/catalog.ts';
import type { Secret } from './identities.ts';
import { sealedSchema, type Vault } from './vault.ts';

// Keygate as an OAuth client of an upstream's authorization server: for
// per-user OAuth identities (authorization code + PKCE, then refresh) and for
// client-credentials service accounts. The authorization server is configured
// (auth_url/token_url) or discovered from the upstream (RFC 9728 protected
// resource metadata, then RFC 8414 / OpenID discovery); without a configured
// client_id, Keygate registers itself there (RFC 7591) once and keeps the
// registration (its secret sealed).

export class UpstreamOAuthError extends Error {
  readonly code = 'ERR_UPSTREAM_OAUTH';
}

const registrationSchema = z.object({ client_id: z.string(), secret: sealedSchema.optional(), auth_method: z.string(), issuer: z.string(), redirect_uri: z.string() });

const DISCOVERY_TTL = 3600_000;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** http only where nothing can listen in between: loopback (tests and local IdPs). */
const insecure = (url: string | URL) => {
  const u = new URL(url);
  return u.protocol === 'http:' && LOOPBACK.has(u.hostname);
};

export interface UpstreamClient {
  client: oauth.Client;
  auth: oauth.ClientAuth;
}

export interface TokenSet {
  access_token: string;
  refresh_token?: string | undefined;
  token_type: string;
  expires_at?: number | undefined;
  scope?: string | undefined;
}

export class UpstreamOAuth {
  private readonly discovered = new Map<string, { as: oauth.AuthorizationServer; until: number }>();
  private readonly registrations: Collection<typeof registrationSchema>;
  private readonly registering = new Map<string, Promise<UpstreamClient>>();

  constructor(
    store: Store,
    private readonly vault: Vault,
    private readonly fetch: FetchLike,
    private readonly callbackUrl: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {
    this.registrations = new Collection(store, 'upstream_clients', registrationSchema);
  }

  private options(url: string | URL): { [oauth.customFetch]: FetchLike; [oauth.allowInsecureRequests]: boolean } {
    return { [oauth.customFetch]: this.fetch, [oauth.allowInsecureRequests]: insecure(url) };
  }

  /** The upstream's authorization server, configured or discovered (cached for an hour). */
  async authorizationServer(upstream: Upstream): Promise<oauth.AuthorizationServer> {
    const c = upstream.credential;
    if (c.type !== 'oauth' && c.type !== 'client_credentials') throw new UpstreamOAuthError(`upstream "${upstream.id}" does not use OAuth`);
    if (c.type === 'client_credentials') return { issuer: new URL(c.token_url).origin, token_endpoint: c.token_url };
    if (c.auth_url && c.token_url) return { issuer: new URL(c.auth_url).origin, authorization_endpoint: c.auth_url, token_endpoint: c.token_url };
    const cached = this.discovered.get(upstream.id);
    if (cached && cached.until > Date.now()) return cached.as;
    const issuer = await this.findIssuer(upstream);
    const as = await this.discoverIssuer(issuer);
    this.discovered.set(upstream.id, { as, until: Date.now() + DISCOVERY_TTL });
    return as;
  }

  /** RFC 9728: the upstream's protected resource metadata names its authorization server. */
  private async findIssuer(upstream: Upstream): Promise<URL> {
    const candidates: URL[] = [];
    // The upstream's own 401 may point at its metadata.
    try {
      const res = await this.fetch(upstream.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":0,"method":"ping"}' });
      const challenge = res.headers.get('www-authenticate') ?? '';
      const match = /resource_metadata="([^"]+)"/.exec(challenge);
      if (match) candidates.push(new URL(match[1]!, upstream.url));
    } catch {
      // fall back to the well-known locations
    }
    const path = upstream.url.pathname === '/' ? '' : upstream.url.pathname;
    candidates.push(new URL(`/.well-known/oauth-protected-resource${path}`, upstream.url), new URL('/.well-known/oauth-protected-resource', upstream.url));
    for (const url of candidates) {
      try {
        const res = await this.fetch(url, { headers: { accept: 'application/json' } });
        if (!res.ok) continue;
        const prm = z.looseObject({ authorization_servers: z.array(z.string()).min(1) }).safeParse(await res.json());
        if (prm.success) return new URL(prm.data.authorization_servers[0]!);
      } catch {
        // try the next place
      }
    }
    // MCP 2025-03-26: without metadata, the upstream's origin is its authorization server.
    return new URL(upstream.url.origin);
  }

  private async discoverIssuer(issuer: URL): Promise<oauth.AuthorizationServer> {
    for (const algorithm of ['oauth2', 'oidc'] as const) {
      try {
        const res = await oauth.discoveryRequest(issuer, { algorithm, ...this.options(issuer) });
        return await oauth.processDiscoveryResponse(issuer, res);
      } catch {
        // try the other well-known document
      }
    }
    throw new UpstreamOAuthError(`no OAuth authorization server metadata at ${issuer.href}`);
  }

  /** The client Keygate is at the upstream's authorization server: configured, or registered once (RFC 7591). */
  async client(upstream: Upstream): Promise<UpstreamClient> {
    const c = upstream.credential;
    if (c.type === 'client_credentials' || (c.type === 'oauth' && c.client_id)) {
      const clientId = c.client_id!;
      const secretEnv = c.client_secret_env;
      const secret = secretEnv === undefined ? undefined : this.env[secretEnv];
      if (secretEnv !== undefined && !secret) throw new UpstreamOAuthError(`upstream "${upstream.id}": environment variable ${secretEnv} is not set`);
      return { client: { client_id: clientId }, auth: secret ? oauth.ClientSecretBasic(secret) : oauth.None() };
    }
    let pending = this.registering.get(upstream.id);
    if (!pending) {
      pending = this.registeredClient(upstream).finally(() => this.registering.delete(upstream.id));
      this.registering.set(upstream.id, pending);
    }
    return pending;
  }

  private async registeredClient(upstream: Upstream): Promise<UpstreamClient> {
    const as = await this.authorizationServer(upstream);
    const stored = await this.registrations.find(upstream.id);
    if (stored && stored.issuer === as.issuer && stored.redirect_uri === this.callbackUrl) return this.fromRegistration(upstream.id, stored);
    if (!as.registration_endpoint) throw new UpstreamOAuthError(`upstream "${upstream.id}": its authorization server offers no registration; configure credential.client_id`);
    const res = await oauth.dynamicClientRegistrationRequest(
      as,
      { client_name: 'Keygate', redirect_uris: [this.callbackUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', application_type: 'web' },
      this.options(as.registration_endpoint),
    );
    const registered = await oauth.processDynamicClientRegistrationResponse(res);
    const secret = typeof registered.client_secret === 'string' ? registered.client_secret : undefined;
    const record = {
      client_id: registered.client_id,
      ...(secret !== undefined && { secret: this.vault.seal(secret, `upstream_clients/${upstream.id}`) }),
      auth_method: secret ? String(registered.token_endpoint_auth_method ?? 'client_secret_basic') : 'none',
      issuer: as.issuer,
      redirect_uri: this.callbackUrl,
    };
    await this.registrations.upsert(upstream.id, record);
    this.log.info('registered Keygate as client %s at %s for upstream %s', registered.client_id, as.issuer, upstream.id);
    return this.fromRegistration(upstream.id, record);
  }

  private fromRegistration(upstreamId: string, r: z.infer<typeof registrationSchema>): UpstreamClient {
    const secret = r.secret && this.vault.open(r.secret, `upstream_clients/${upstreamId}`);
    const auth = !secret ? oauth.None() : r.auth_method === 'client_secret_post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
    return { client: { client_id: r.client_id }, auth };
  }

  private resource(upstream: Upstream): string {
    const c = upstream.credential;
    return ((c.type === 'oauth' || c.type === 'client_credentials') && c.resource) || upstream.url.href;
  }

  private scopes(upstream: Upstream): string {
    const c = upstream.credential;
    return c.type === 'oauth' || c.type === 'client_credentials' ? c.scopes.join(' ') : '';
  }

  /** The authorization URL to send the person to (PKCE S256, state, RFC 8707 resource). */
  async authorizationUrl(upstream: Upstream, state: string, codeChallenge: string): Promise<URL> {
    const as = await this.authorizationServer(upstream);
    const { client } = await this.client(upstream);
    if (!as.authorization_endpoint) throw new UpstreamOAuthError(`upstream "${upstream.id}": its authorization server has no authorization endpoint`);
    const url = new URL(as.authorization_endpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', client.client_id);
    url.searchParams.set('redirect_uri', this.callbackUrl);
    url.searchParams.set('state', state);
    url.searchParams.set('code_challenge', codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('resource', this.resource(upstream));
    const scope = this.scopes(upstream);
    if (scope) url.searchParams.set('scope', scope);
    return url;
  }

  /** The redirect came back: check it (state, iss, error) and redeem the code. */
  async exchange(upstream: Upstream, callback: URLSearchParams, state: string, codeVerifier: string): Promise<TokenSet> {
    const as = await this.authorizationServer(upstream);
    const { client, auth } = await this.client(upstream);
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const res = await oauth.authorizationCodeGrantRequest(as, client, auth, params, this.callbackUrl, codeVerifier, {
      additionalParameters: { resource: this.resource(upstream) },
      ...this.options(as.token_endpoint!),
    });
    return toTokenSet(await oauth.processAuthorizationCodeResponse(as, client, res));
  }

  async refresh(upstream: Upstream, refreshToken: string): Promise<TokenSet> {
    const as = await this.authorizationServer(upstream);
    const { client, auth } = await this.client(upstream);
    const res = await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, { additionalParameters: { resource: this.resource(upstream) }, ...this.options(as.token_endpoint!) });
    const tokens = toTokenSet(await oauth.processRefreshTokenResponse(as, client, res));
    // A server that does not rotate keeps the old refresh token valid.
    return { ...tokens, refresh_token: tokens.refresh_token ?? refreshToken };
  }

  async clientCredentials(upstream: Upstream): Promise<TokenSet> {
    const as = await this.authorizationServer(upstream);
    const { client, auth } = await this.client(upstream);
    const params: Record<string, string> = { resource: this.resource(upstream) };
    const scope = this.scopes(upstream);
    if (scope) params.scope = scope;
    const res = await oauth.clientCredentialsGrantRequest(as, client, auth, params, this.options(as.token_endpoint!));
    return toTokenSet(await oauth.processClientCredentialsResponse(as, client, res));
  }
}

function toTokenSet(t: oauth.TokenEndpointResponse): TokenSet {
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    token_type: t.token_type,
    expires_at: typeof t.expires_in === 'number' ? Math.floor(Date.now() / 1000) + t.expires_in : undefined,
    scope: t.scope,
  };
}

export function oauthSecret(tokens: TokenSet): Secret {
  return { kind: 'oauth', access_token: tokens.access_token, refresh_token: tokens.refresh_token, token_type: tokens.token_type, expires_at: tokens.expires_at, scope: tokens.scope };
}
