import * as oauth from 'oauth4webapi';
import { AuthorizationDeniedError, DiscoveryError, IssuerMismatchError, StateMismatchError, TokenRequestError } from '../errors.ts';
import type { Fetch } from '../registry-client.ts';
import { allowsInsecureRequests } from '../registry-url.ts';

// OAuth 2.1 authorization code + PKCE (S256) for the extension, a public
// client pre-registered in every registry, with oauth4webapi. Pure: no VS Code,
// the HTTP client and the clock are passed in. The redirect URI is whatever
// the editor hands out (vscode://keygate.keygate/auth-callback on the
// desktop, the editor's own /callback page in a browser) and is sent
// byte-for-byte the same on the authorization and token requests.

/** The extension's client_id, known to every registry (server/oauth/clients.ts). */
export const CLIENT_ID = 'keygate-vscode';
/** What the extension asks for; trimmed to what the registry lists in scopes_supported. */
export const WANTED_SCOPES = ['mcp:read', 'mcp:write', 'offline_access'] as const;

const REQUEST_TIMEOUT_MS = 15_000;
/** Metadata is read again after this long, so a reconfigured registry is noticed. */
const METADATA_TTL_MS = 15 * 60_000;

export interface TokenSet {
  accessToken: string;
  refreshToken: string | undefined;
  /** Epoch milliseconds, or undefined when the registry did not say (RFC 6749 §5.1 expires_in). */
  expiresAt: number | undefined;
  /** The scopes granted (RFC 6749 §5.1: the requested ones when the response omits scope). */
  scopes: string[];
}

/** What one sign-in must remember between sending the user away and the redirect coming back. */
export interface PendingAuthorization {
  state: string;
  codeVerifier: string;
  redirectUri: string;
  scopes: string[];
}

export interface OAuthFlowOptions {
  /** Canonical registry base URL: the issuer and the `resource` (RFC 8707). */
  registry: string;
  fetch?: Fetch;
  now?: () => number;
  /** Called with each secret as soon as it exists, so the logger can scrub it. */
  onSecret?: (value: string) => void;
}

export class OAuthFlow {
  readonly registry: string;
  private readonly client: oauth.Client = { client_id: CLIENT_ID };
  private readonly fetchImpl: Fetch;
  private readonly now: () => number;
  private readonly onSecret: (value: string) => void;
  private metadata: { value: Promise<oauth.AuthorizationServer>; fetchedAt: number } | undefined;

  constructor(options: OAuthFlowOptions) {
    this.registry = options.registry;
    this.fetchImpl = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
    this.onSecret = options.onSecret ?? (() => {});
  }

  private requestOptions() {
    return {
      [oauth.allowInsecureRequests]: allowsInsecureRequests(this.registry),
      [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<string, unknown>) => this.fetchImpl(url, init as RequestInit),
      signal: () => AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    };
  }

  /** RFC 8414 §3: the registry's metadata, cached for a while (not after a failure). */
  discover(): Promise<oauth.AuthorizationServer> {
    if (!this.metadata || this.now() - this.metadata.fetchedAt > METADATA_TTL_MS) {
      const entry = {
        fetchedAt: this.now(),
        value: this.fetchMetadata().catch((err: unknown) => {
          if (this.metadata === entry) this.metadata = undefined;
          throw err;
        }),
      };
      this.metadata = entry;
    }
    return this.metadata.value;
  }

  private async fetchMetadata(): Promise<oauth.AuthorizationServer> {
    const issuer = new URL(this.registry);
    let as: oauth.AuthorizationServer;
    try {
      const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...this.requestOptions() });
      // RFC 8414 §3.3: the issuer in the document must be the one we asked.
      as = await oauth.processDiscoveryResponse(issuer, res);
    } catch (err) {
      throw new DiscoveryError(`could not read the authorization server metadata of ${this.registry}: ${oauthMessage(err)}`, { cause: err });
    }
    if (!as.authorization_endpoint || !as.token_endpoint) {
      throw new DiscoveryError(`${this.registry} does not advertise an authorization and a token endpoint`);
    }
    // OAuth 2.1 §7.5.2: S256 is the only method the extension uses.
    if (as.code_challenge_methods_supported && !as.code_challenge_methods_supported.includes('S256')) {
      throw new DiscoveryError(`${this.registry} does not support PKCE with S256`);
    }
    return as;
  }

  /** RFC 6749 §3.3: the wanted scopes the registry supports (all of them when it does not say). */
  static scopesFor(as: oauth.AuthorizationServer): string[] {
    const supported = as.scopes_supported;
    return WANTED_SCOPES.filter((s) => !supported || supported.includes(s));
  }

  /** RFC 6749 §4.1.1 + RFC 7636 §4.3 + RFC 8707 §2.1: the URL to send the user to. */
  async authorizationRequest(redirectUri: string): Promise<{ url: string; pending: PendingAuthorization }> {
    const as = await this.discover();
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    this.onSecret(codeVerifier);
    const scopes = OAuthFlow.scopesFor(as);
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', CLIENT_ID);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('state', state);
    url.searchParams.set('resource', this.registry);
    if (scopes.length) url.searchParams.set('scope', scopes.join(' '));
    return { url: url.href, pending: { state, codeVerifier, redirectUri, scopes } };
  }

  /**
   * RFC 6749 §4.1.2 → §4.1.3: check the redirect's parameters, then redeem the
   * code. Checks run in the order that defends best: the issuer first (RFC 9207
   * mix-up defence), then state (CSRF), then an error the registry reported.
   */
  async authorizationCodeGrant(pending: PendingAuthorization, callback: URLSearchParams): Promise<TokenSet> {
    const as = await this.discover();
    checkIssuer(as, callback);
    // RFC 6749 §10.12: the state must be the one this sign-in sent.
    if (callback.get('state') !== pending.state) throw new StateMismatchError('the redirect does not belong to this sign-in (state mismatch)');
    const error = callback.get('error');
    if (error) throw new AuthorizationDeniedError(error, callback.get('error_description') ?? undefined);
    const code = callback.get('code');
    if (code) this.onSecret(code);

    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as, this.client, callback, pending.state);
    } catch (err) {
      throw new TokenRequestError('invalid_response', `the redirect is not a valid authorization response: ${oauthMessage(err)}`, { cause: err });
    }
    return this.tokenRequest(pending.scopes, async () => {
      const res = await oauth.authorizationCodeGrantRequest(as, this.client, oauth.None(), params, pending.redirectUri, pending.codeVerifier, {
        additionalParameters: { resource: this.registry },
        ...this.requestOptions(),
      });
      return oauth.processAuthorizationCodeResponse(as, this.client, res);
    });
  }

  /** RFC 6749 §6: a new token set for a refresh token. The registry rotates refresh tokens. */
  async refreshTokenGrant(refreshToken: string, scopes: string[]): Promise<TokenSet> {
    const as = await this.discover();
    return this.tokenRequest(scopes, async () => {
      const res = await oauth.refreshTokenGrantRequest(as, this.client, oauth.None(), refreshToken, {
        additionalParameters: { resource: this.registry },
        ...this.requestOptions(),
      });
      return oauth.processRefreshTokenResponse(as, this.client, res);
    });
  }

  private async tokenRequest(requestedScopes: string[], send: () => Promise<oauth.TokenEndpointResponse>): Promise<TokenSet> {
    const startedAt = this.now();
    let response: oauth.TokenEndpointResponse;
    try {
      response = await send();
    } catch (err) {
      if (err instanceof oauth.ResponseBodyError) throw new TokenRequestError(err.error, err.error_description, { cause: err });
      throw new TokenRequestError('request_failed', oauthMessage(err), { cause: err });
    }
    this.onSecret(response.access_token);
    if (response.refresh_token) this.onSecret(response.refresh_token);
    // RFC 6750: the extension only knows how to present bearer tokens.
    if (response.token_type !== 'bearer') throw new TokenRequestError('unsupported_token_type', `token_type ${response.token_type} is not Bearer`);
    return {
      accessToken: response.access_token,
      refreshToken: response.refresh_token,
      // Counted from when the request was sent, so network time errs on the early side.
      expiresAt: typeof response.expires_in === 'number' ? startedAt + response.expires_in * 1000 : undefined,
      scopes: typeof response.scope === 'string' ? response.scope.split(' ').filter(Boolean) : requestedScopes,
    };
  }
}

/** One flow per registry, so each registry's metadata is fetched once. */
export function flowsByRegistry(options: Omit<OAuthFlowOptions, 'registry'>): (registry: string) => OAuthFlow {
  const flows = new Map<string, OAuthFlow>();
  return (registry) => {
    let flow = flows.get(registry);
    if (!flow) flows.set(registry, (flow = new OAuthFlow({ ...options, registry })));
    return flow;
  };
}

/** RFC 9207 §2.4: when the registry says it sends `iss`, it must be there and be the registry. */
function checkIssuer(as: oauth.AuthorizationServer, callback: URLSearchParams): void {
  const iss = callback.get('iss');
  if (iss === null) {
    if (as.authorization_response_iss_parameter_supported) throw new IssuerMismatchError('the redirect has no iss parameter, but the registry always sends one (RFC 9207)');
    return;
  }
  if (iss !== as.issuer) throw new IssuerMismatchError(`the redirect came from issuer ${iss}, not from ${as.issuer} (RFC 9207)`);
}

function oauthMessage(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError) return `${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
