import type * as oauth from 'oauth4webapi';
import type { FederatedConfig, FederatedProvider } from '../../config/sections/federated.ts';

// What each `provider:` knows about its identity provider, declared as data
// (after VS Code's github-authentication flows): how the registry talks to it
// (OpenID Connect, or plain OAuth 2 plus a user API), where its endpoints
// are, what to ask for, and how the person is read back. The endpoints are
// the ones MXCP documents; `oidc` discovers them from upstream_issuer.

export type ProfileSource = 'id_token' | 'github' | 'atlassian';

export interface Preset {
  provider: FederatedProvider;
  /** oidc: an ID token proves who signed in (nonce, signature, iss, aud); oauth2: a user API says it. */
  protocol: 'oidc' | 'oauth2';
  /** The issuer identifier (OIDC: the `iss` of its ID tokens). */
  issuer: string;
  /** Endpoints known without discovery; undefined: discover from `issuer`. */
  metadata: oauth.AuthorizationServer | undefined;
  /** The user API the person is read from (oauth2 presets). */
  userApi: string | undefined;
  profile: ProfileSource;
  /** Scopes asked of the IdP unless `scopes` is configured. */
  scopes: string[];
  /** Extra authorization request parameters the IdP needs. */
  authorizeParams: Record<string, string>;
  /** Usernames are stable handles the IdP controls (GitHub logins, Keycloak usernames): admin_users may name them. */
  usernameIsAuthoritative: boolean;
  /** How the token endpoint authenticates the registry. */
  clientAuth: 'client_secret_basic' | 'client_secret_post';
}

const OIDC_SCOPES = ['openid', 'email', 'profile'];
const trimSlash = (url: string) => url.replace(/\/+$/, '');

export function presetFor(config: FederatedConfig): Preset {
  const oidc = (issuer: string, metadata: oauth.AuthorizationServer | undefined, extra: Partial<Preset> = {}): Preset => ({
    provider: config.provider,
    protocol: 'oidc',
    issuer,
    metadata,
    userApi: undefined,
    profile: 'id_token',
    scopes: OIDC_SCOPES,
    authorizeParams: {},
    usernameIsAuthoritative: false,
    clientAuth: 'client_secret_basic',
    ...extra,
  });

  switch (config.provider) {
    case 'oidc':
      return oidc(trimSlash(config.upstream_issuer!), undefined);

    case 'google':
      return oidc(
        'https://accounts.google.com',
        {
          issuer: 'https://accounts.google.com',
          authorization_endpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
          token_endpoint: 'https://oauth2.googleapis.com/token',
          userinfo_endpoint: 'https://openidconnect.googleapis.com/v1/userinfo',
          jwks_uri: 'https://www.googleapis.com/oauth2/v3/certs',
          id_token_signing_alg_values_supported: ['RS256'],
        },
        // `hd` only narrows the account chooser; allowed_domains is what enforces.
        { authorizeParams: config.google?.hosted_domain ? { hd: config.google.hosted_domain } : {} },
      );

    case 'keycloak': {
      // MXCP: {server_url}/realms/{realm}/protocol/openid-connect/{auth,token}.
      const realm = `${trimSlash(config.keycloak!.server_url)}/realms/${encodeURIComponent(config.keycloak!.realm)}`;
      const oidcBase = `${realm}/protocol/openid-connect`;
      return oidc(
        realm,
        {
          issuer: realm,
          authorization_endpoint: `${oidcBase}/auth`,
          token_endpoint: `${oidcBase}/token`,
          userinfo_endpoint: `${oidcBase}/userinfo`,
          jwks_uri: `${oidcBase}/certs`,
        },
        { usernameIsAuthoritative: true },
      );
    }

    case 'salesforce': {
      // login.salesforce.com, test.salesforce.com (sandbox) or a My Domain URL.
      const login = trimSlash(config.salesforce?.login_url ?? 'https://login.salesforce.com');
      return oidc(login, {
        issuer: login,
        authorization_endpoint: `${login}/services/oauth2/authorize`,
        token_endpoint: `${login}/services/oauth2/token`,
        userinfo_endpoint: `${login}/services/oauth2/userinfo`,
        jwks_uri: `${login}/id/keys`,
      });
    }

    case 'github': {
      const server = trimSlash(config.github?.server_url ?? 'https://github.com');
      // github.com's API lives on its own host; GitHub Enterprise Server's under /api/v3.
      const api = trimSlash(config.github?.api_url ?? (server === 'https://github.com' ? 'https://api.github.com' : `${server}/api/v3`));
      return {
        provider: 'github',
        protocol: 'oauth2',
        issuer: server,
        metadata: { issuer: server, authorization_endpoint: `${server}/login/oauth/authorize`, token_endpoint: `${server}/login/oauth/access_token` },
        userApi: api,
        profile: 'github',
        scopes: ['read:user', 'user:email'],
        authorizeParams: {},
        usernameIsAuthoritative: true,
        clientAuth: 'client_secret_post',
      };
    }

    case 'atlassian':
      return {
        provider: 'atlassian',
        protocol: 'oauth2',
        issuer: 'https://auth.atlassian.com',
        metadata: { issuer: 'https://auth.atlassian.com', authorization_endpoint: 'https://auth.atlassian.com/authorize', token_endpoint: 'https://auth.atlassian.com/oauth/token' },
        userApi: 'https://api.atlassian.com/me',
        profile: 'atlassian',
        scopes: ['read:me'],
        // Atlassian's 3LO needs the API audience, and shows its consent screen every time.
        authorizeParams: { audience: 'api.atlassian.com', prompt: 'consent' },
        usernameIsAuthoritative: false,
        clientAuth: 'client_secret_post',
      };
  }
}
