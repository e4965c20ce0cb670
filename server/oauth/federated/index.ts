import type { Router } from 'express';
import type { Config } from '../../config/schema.ts';
import type { FederatedConfig } from '../../config/sections/federated.ts';
import type { Logger } from '../../log.ts';
import { checkUrl, type FetchLike, OutboundError, type OutboundPolicy } from '../../net/outbound.ts';
import type { Store } from '../../store/index.ts';
import type { Accounts } from '../accounts.ts';
import type { AuthorizationFlow } from '../flow.ts';
import type { BuiltinUsers } from '../users.ts';
import { callbackRouter } from './callback.ts';
import { FederatedAccounts, FederatedPolicy } from './policy.ts';
import { presetFor } from './presets.ts';
import { upstreamSignIn } from './sign-in.ts';
import { UpstreamIdp } from './upstream.ts';

// oauth_server.mode federated, wired: the policy-aware accounts, the sign-in
// method that sends the browser to the upstream IdP, and /oauth/callback.

type OAuthServerConfig = Config['oauth_server'];

function federatedConfig(config: OAuthServerConfig): FederatedConfig {
  if (!config.federated) throw new Error('oauth_server.federated: oauth_server.mode is federated: configure the upstream identity provider under oauth_server.federated (provider, upstream_issuer, client_id, client_secret_env, ...)');
  // Builtin users would still be a way in (the login form's endpoint), around allowed_domains.
  if (config.builtin.users.length) throw new Error('oauth_server.builtin.users: in federated mode people sign in at the identity provider; remove the builtin users (or use mode: builtin)');
  return config.federated;
}

/** The accounts of a federated registry: the current policy applies at every lookup (a refresh included). */
export function federatedAccounts(config: OAuthServerConfig, users: BuiltinUsers, store: Store): FederatedAccounts {
  const federated = federatedConfig(config);
  return new FederatedAccounts(users, store, new FederatedPolicy(federated, presetFor(federated)));
}

export interface FederatedDeps {
  config: OAuthServerConfig;
  /** The registry's public URL: {public_url}/oauth/callback is the redirect URI registered at the IdP. */
  publicUrl: string;
  accounts: Accounts;
  fetch: FetchLike;
  policy: OutboundPolicy;
  log: Logger;
  env: NodeJS.ProcessEnv;
}

/** Replace the login form with the upstream IdP; returns the router of /oauth/callback (mount under /oauth). */
export function federatedSignIn(flow: AuthorizationFlow, deps: FederatedDeps): Router {
  const federated = federatedConfig(deps.config);
  const preset = presetFor(federated);
  const secret = deps.env[federated.client_secret_env];
  if (!secret) throw new Error(`oauth_server.federated.client_secret_env: environment variable ${federated.client_secret_env} is not set`);
  try {
    checkUrl(new URL(preset.issuer), deps.policy);
  } catch (err) {
    const key = { oidc: 'upstream_issuer', github: 'github.server_url', keycloak: 'keycloak.server_url', salesforce: 'salesforce.login_url', google: 'provider', atlassian: 'provider' }[preset.provider];
    if (err instanceof OutboundError) throw new Error(`oauth_server.federated.${key}: ${err.message}`);
    throw err;
  }
  const upstream = new UpstreamIdp({
    preset,
    clientId: federated.client_id,
    clientSecret: secret,
    redirectUri: `${deps.publicUrl}/oauth/callback`,
    scopes: federated.scopes ?? preset.scopes,
    fetch: deps.fetch,
    log: deps.log,
  });
  flow.signIn = upstreamSignIn(flow, upstream, deps.log);
  return callbackRouter({ flow, upstream, policy: new FederatedPolicy(federated, preset), accounts: deps.accounts, fetch: deps.fetch, log: deps.log, claims: federated.claims });
}
