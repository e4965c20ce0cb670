import type * as oauth from 'oauth4webapi';
import { type AuthConfig, introspectionSection, type OAuthAuthConfig, userinfoSection } from '../config/sections/auth.ts';
import type { Logger } from '../log.ts';
import { acceptableEndpoint, Cached, discover } from '../net/authorization-server.ts';
import { checkUrl, type FetchLike, OutboundError, type OutboundPolicy } from '../net/outbound.ts';
import { IntrospectionValidator } from './introspection.ts';
import { IssuerJwtValidator } from './issuer-jwt.ts';
import { unavailable } from './remote-errors.ts';
import { UserInfoValidator } from './userinfo.ts';
import { ValidationEndpointValidator } from './validation-endpoint.ts';
import type { TokenValidator } from './validator.ts';

// The validators `auth` asks for beyond the registry's own tokens and static
// bearer tokens, in the order they are asked: a remote validation endpoint
// (auth.type bearer), or another issuer's JWTs, then introspection, then
// UserInfo (auth.type oauth). Each fetch goes through the outbound guard.

export interface ExternalDeps {
  fetch: FetchLike;
  policy: OutboundPolicy;
  log: Logger;
  env: NodeJS.ProcessEnv;
}

/** Refuse at start a configured URL the outbound policy would refuse anyway (a literal metadata or loopback address). */
function checkConfiguredUrl(key: string, url: string | undefined, policy: OutboundPolicy): void {
  if (url === undefined) return;
  try {
    checkUrl(new URL(url), policy);
  } catch (err) {
    if (err instanceof OutboundError) throw new Error(`${key}: ${err.message}`);
    throw err;
  }
}

function secret(key: string, value: string | undefined, envKey: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (value !== undefined) return value;
  if (envKey === undefined) return undefined;
  const resolved = env[envKey];
  if (!resolved) throw new Error(`${key}: environment variable ${envKey} is not set`);
  return resolved;
}

export function externalValidators(auth: AuthConfig, deps: ExternalDeps): TokenValidator[] {
  if (auth.type === 'bearer' && auth.bearer?.validation_endpoint) {
    checkConfiguredUrl('auth.bearer.validation_endpoint', auth.bearer.validation_endpoint, deps.policy);
    return [new ValidationEndpointValidator({ url: auth.bearer.validation_endpoint, cacheTtl: auth.bearer.cache_ttl, fetch: deps.fetch, log: deps.log })];
  }
  if (auth.type === 'oauth' && auth.oauth) return oauthValidators(auth.oauth, deps);
  return [];
}

function oauthValidators(o: OAuthAuthConfig, deps: ExternalDeps): TokenValidator[] {
  const { fetch, policy, log, env } = deps;
  // The seed's short forms, read as the long ones (with their defaults).
  const introspection = o.introspection ?? (o.introspection_url ? introspectionSection.parse({ endpoint: o.introspection_url }) : undefined);
  const userinfo = o.userinfo ?? (o.userinfo_url ? userinfoSection.parse({ url: o.userinfo_url }) : undefined);
  checkConfiguredUrl('auth.oauth.discovery_url', o.discovery_url, policy);
  checkConfiguredUrl('auth.oauth.jwks_url', o.jwks_url, policy);
  checkConfiguredUrl(o.introspection_url ? 'auth.oauth.introspection_url' : 'auth.oauth.introspection.endpoint', introspection?.endpoint, policy);
  checkConfiguredUrl(o.userinfo_url ? 'auth.oauth.userinfo_url' : 'auth.oauth.userinfo.url', userinfo?.url, policy);

  const discoveryUrl = o.discovery_url;
  const metadata = discoveryUrl
    ? new Cached<oauth.AuthorizationServer>(async () => {
        try {
          return await discover(discoveryUrl, fetch);
        } catch (err) {
          throw unavailable(log, `discovery at ${discoveryUrl}`, err);
        }
      }, o.jwks.refresh_interval)
    : undefined;
  const issuer = async () => o.issuer ?? (metadata ? (await metadata.get()).issuer : undefined);
  /** A discovered endpoint, which must be https (or http on this machine) like a configured one. */
  const discovered = async (name: 'jwks_uri' | 'introspection_endpoint' | 'userinfo_endpoint'): Promise<string> => {
    const value = (await metadata!.get())[name];
    if (!acceptableEndpoint(value)) throw unavailable(log, `discovery at ${discoveryUrl}`, new Error(`its ${name} is missing or not an https URL`));
    return value;
  };
  const audience = o.audience === undefined ? undefined : Array.isArray(o.audience) ? o.audience : [o.audience];
  const common = { mapping: o.claims, requiredScopes: o.required_scopes, fetch, log };
  const validators: TokenValidator[] = [];
  const introspects = introspection?.enabled === true;
  const usesUserinfo = userinfo?.enabled === true;

  if (o.discovery_url || o.jwks_url) {
    if (o.jwks_url && !o.issuer) log.warn('auth.oauth.jwks_url is set without auth.oauth.issuer: the iss claim of tokens is not checked');
    const jwksUrl = o.jwks_url;
    validators.push(
      new IssuerJwtValidator({
        ...common,
        jwksUri: async () => jwksUrl ?? discovered('jwks_uri'),
        issuer,
        audience,
        algorithms: o.validation.allowed_algorithms,
        clockSkew: o.validation.clock_skew,
        requireExpiration: o.validation.require_expiration,
        maxTokenAge: o.validation.max_token_age,
        jwks: { refreshInterval: o.jwks.refresh_interval, fetchTimeout: o.jwks.fetch_timeout, cooldown: o.jwks.cooldown },
        othersMayJudge: introspects || usesUserinfo,
      }),
    );
  }
  if (introspects) {
    const key = o.introspection ? 'auth.oauth.introspection' : 'auth.oauth';
    const clientId = introspection.client_id ?? o.client_id;
    const clientSecret =
      secret(`${key}.client_secret_env`, introspection.client_secret, introspection.client_secret_env, env) ?? secret('auth.oauth.client_secret_env', o.client_secret, o.client_secret_env, env);
    const endpoint = introspection.endpoint;
    validators.push(
      new IntrospectionValidator({
        ...common,
        server: async () => ({ endpoint: endpoint ?? (await discovered('introspection_endpoint')), issuer: await issuer() }),
        clientId: clientId!,
        clientSecret: clientSecret!,
        audience,
        clockSkew: o.validation.clock_skew,
        cacheTtl: introspection.cache_ttl,
      }),
    );
  }
  if (usesUserinfo) {
    if (o.required_scopes.length) log.warn('auth.oauth.required_scopes is set: tokens validated through UserInfo carry no scopes and will be refused with insufficient_scope');
    const url = userinfo.url;
    validators.push(new UserInfoValidator({ ...common, server: async () => ({ endpoint: url ?? (await discovered('userinfo_endpoint')), issuer: await issuer() }), cacheTtl: userinfo.cache_ttl }));
  }
  return validators;
}
