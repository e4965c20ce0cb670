import * as oauth from 'oauth4webapi';
import type { Logger } from '../../log.ts';
import { Cached, discover, requestOptions } from '../../net/authorization-server.ts';
import type { FetchLike } from '../../net/outbound.ts';
import type { Preset } from './presets.ts';

// The registry as an OAuth client of the upstream identity provider, with
// oauth4webapi: discovery (or a preset's endpoints), PKCE S256, state, nonce,
// RFC 9207 iss, the code exchange and the ID token's validation, every
// request through the outbound guard.

export interface UpstreamOptions {
  preset: Preset;
  clientId: string;
  clientSecret: string;
  /** {public_url}/oauth/callback: registered at the IdP. */
  redirectUri: string;
  scopes: string[];
  fetch: FetchLike;
  log: Logger;
}

/** The secrets of one upstream authorization request, kept in the interaction until the callback. */
export interface UpstreamRequest {
  state: string;
  /** Empty for plain OAuth 2 providers (no ID token, no nonce). */
  nonce: string;
  code_verifier: string;
}

export interface Redeemed {
  accessToken: string;
  /** The validated ID token's claims (OpenID Connect presets). */
  idToken: oauth.IDToken | undefined;
  as: oauth.AuthorizationServer;
}

const DISCOVERY_TTL = 3600;

export class UpstreamIdp {
  readonly client: oauth.Client;
  private readonly metadata: Cached<oauth.AuthorizationServer>;

  constructor(readonly options: UpstreamOptions) {
    this.client = { client_id: options.clientId };
    const { preset, fetch } = options;
    this.metadata = new Cached(async () => preset.metadata ?? (await discover(preset.issuer, fetch)), preset.metadata ? Infinity : DISCOVERY_TTL);
  }

  get preset(): Preset {
    return this.options.preset;
  }

  server(): Promise<oauth.AuthorizationServer> {
    return this.metadata.get();
  }

  /** New secrets for one authorization request; `id` (the interaction's) leads the state so the callback can find it. */
  static newRequest(id: string, oidc: boolean): UpstreamRequest {
    return { state: `${id}.${oauth.generateRandomState()}`, nonce: oidc ? oauth.generateRandomNonce() : '', code_verifier: oauth.generateRandomCodeVerifier() };
  }

  /** RFC 6749 §4.1.1 with RFC 7636 §4.3 (S256) and, for OpenID Connect, a nonce (Core §3.1.2.1). */
  async authorizationUrl(request: UpstreamRequest, options: { forceLogin: boolean }): Promise<URL> {
    const as = await this.server();
    if (!as.authorization_endpoint) throw new Error('the identity provider publishes no authorization_endpoint');
    const url = new URL(as.authorization_endpoint);
    const { preset } = this;
    const params: Record<string, string> = {
      client_id: this.options.clientId,
      redirect_uri: this.options.redirectUri,
      response_type: 'code',
      scope: this.options.scopes.join(' '),
      state: request.state,
      code_challenge: await oauth.calculatePKCECodeChallenge(request.code_verifier),
      code_challenge_method: 'S256',
      ...(preset.protocol === 'oidc' && { nonce: request.nonce }),
      ...preset.authorizeParams,
      // The client asked for a fresh sign-in (prompt=login): ask the IdP for one too.
      ...(options.forceLogin && preset.protocol === 'oidc' && { prompt: 'login' }),
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url;
  }

  /**
   * The authorization response (RFC 6749 §4.1.2, RFC 9207 iss) → the code
   * exchanged with PKCE → for OpenID Connect, an ID token whose iss, aud,
   * exp, iat, azp and nonce are checked, and whose signature is verified with
   * the IdP's JWKS (beyond the TLS trust OIDC Core §3.1.3.7 allows).
   * Throws oauth4webapi's errors: the callback turns each into what the
   * person sees.
   */
  async redeem(callback: URLSearchParams, request: UpstreamRequest): Promise<Redeemed> {
    const as = await this.server();
    const { preset, clientSecret, redirectUri, fetch } = this.options;
    const params = oauth.validateAuthResponse(as, this.client, callback, request.state);
    const auth = preset.clientAuth === 'client_secret_post' ? oauth.ClientSecretPost(clientSecret) : oauth.ClientSecretBasic(clientSecret);
    const response = await oauth.authorizationCodeGrantRequest(as, this.client, auth, params, redirectUri, request.code_verifier, requestOptions(fetch, as.token_endpoint!));
    if (preset.protocol === 'oauth2') {
      const result = await oauth.processAuthorizationCodeResponse(as, this.client, response);
      return { accessToken: result.access_token, idToken: undefined, as };
    }
    const result = await oauth.processAuthorizationCodeResponse(as, this.client, response, { expectedNonce: request.nonce, requireIdToken: true });
    if (!as.jwks_uri) throw new Error('the identity provider publishes no jwks_uri to verify its ID tokens with');
    await oauth.validateApplicationLevelSignature(as, response, requestOptions(fetch, as.jwks_uri));
    return { accessToken: result.access_token, idToken: oauth.getValidatedIdTokenClaims(result), as };
  }
}
