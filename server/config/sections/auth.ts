import { z } from 'zod';
import { duration, parseDuration } from '../duration.ts';
import { envName, scope } from './common.ts';

// `auth`: who may call the MCP and API endpoints besides holders of the
// registry's own tokens. The keys follow the MCP bridge seed (auth.type none |
// bearer | oauth, bearer.valid_tokens / validation_endpoint, oauth.*).

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const isLoopbackHost = (host: string) => LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * The URL of an identity provider endpoint: https, or http only for an IdP on
 * this machine (a token or a key fetched over plain http from elsewhere could
 * be swapped on the way).
 */
export const idpUrl = z.url({ protocol: /^https?$/, error: 'expected an https URL', abort: true }).refine((value) => {
  const url = new URL(value);
  return url.protocol === 'https:' || isLoopbackHost(url.hostname);
}, 'expected an https URL (plain http only for an identity provider on this machine: localhost, 127.0.0.1, [::1])');

/** A duration that may also be zero (clock skew, cooldown). */
export const durationOrZero = z.union([z.number(), z.string()]).transform((value, ctx) => {
  if (value === 0 || value === '0' || value === '0s') return 0;
  const seconds = parseDuration(value);
  if (seconds === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration like 0, 30s, 5m or 1h, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return seconds;
});

// Keys of another issuer are public keys: only asymmetric algorithms can be
// verified with them. An HMAC algorithm here would let anyone who has the
// public key (everyone) forge tokens (RFC 8725 §2.1, §3.1).
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
const asymmetricAlgorithm = z.string().refine((alg): alg is (typeof ASYMMETRIC)[number] => (ASYMMETRIC as readonly string[]).includes(alg), {
  error: (issue) =>
    `"${String(issue.input)}" is not allowed: tokens of another issuer are verified with its public keys, so only ${ASYMMETRIC.join(', ')} make sense (never HS* or none)`,
});

const claimName = z.string().min(1).max(200);

const bearerAuth = z.strictObject({
  /** Static tokens, compared as HMAC-SHA-256 digests in constant time. */
  valid_tokens: z.array(z.string().min(1, 'a bearer token may not be empty')).default([]),
  /** A remote validator: POST {"token"} → {valid, subject, scopes, claims, metadata}. */
  validation_endpoint: idpUrl.optional(),
  /** How long the validation endpoint's verdict on a token is reused (never past the token's exp when it says one). */
  cache_ttl: duration.default(60),
});

const claimsSection = z.strictObject({
  subject_claim: claimName.default('sub'),
  email_claim: claimName.default('email'),
  name_claim: claimName.default('name'),
  /** Roles (e.g. Keycloak's realm_access.roles: dotted paths reach nested claims). */
  roles_claim: claimName.optional(),
  groups_claim: claimName.default('groups'),
  /** A space-separated string (`scope`) or an array (`scp`). */
  scope_claim: claimName.default('scope'),
});

const validationSection = z.strictObject({
  allowed_algorithms: z.array(asymmetricAlgorithm).min(1, 'list at least one algorithm').default(['RS256', 'ES256']),
  /** Leeway for exp, nbf and iat. */
  clock_skew: durationOrZero.default(30),
  /** Refuse tokens without exp. */
  require_expiration: z.boolean().default(true),
  /** Refuse tokens whose iat is older than this (then iat is required). */
  max_token_age: duration.optional(),
});

const jwksSection = z.strictObject({
  /** Keys are fetched again after this long. */
  refresh_interval: duration.default(3600),
  fetch_timeout: duration.default(10),
  /** A token with an unknown kid refetches the keys at most this often (key rotation is picked up; a flood of bad kids is not a flood of fetches). */
  cooldown: durationOrZero.default(30),
});

const clientCredentials = {
  client_id: z.string().min(1).optional(),
  /** The secret itself: write it as "${ENV}", never literally. */
  client_secret: z.string().min(1).optional(),
  client_secret_env: envName.optional(),
};

export const introspectionSection = z.strictObject({
  enabled: z.boolean().default(true),
  /** Defaults to the discovered introspection_endpoint. */
  endpoint: idpUrl.optional(),
  ...clientCredentials,
  /** An active answer is reused this long at most, and never past the token's exp. */
  cache_ttl: duration.default(60),
});

export const userinfoSection = z.strictObject({
  enabled: z.boolean().default(true),
  /** Defaults to the discovered userinfo_endpoint. */
  url: idpUrl.optional(),
  cache_ttl: duration.default(60),
});

const oauthAuth = z
  .strictObject({
    /** The issuer (or its /.well-known/openid-configuration URL): keys, introspection and userinfo endpoints are discovered. */
    discovery_url: idpUrl.optional(),
    /** Keys for JWT access tokens, without discovery. */
    jwks_url: idpUrl.optional(),
    /** The expected `iss`; discovered with discovery_url. Without either, `iss` is not checked (a warning says so). */
    issuer: z.url().optional(),
    /** The expected `aud`. Without it, a token must be audience-bound to this registry (its URL or an MCP endpoint under it, RFC 8707). */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** Every one of these must be granted, else 403 insufficient_scope. */
    required_scopes: z.array(scope).default([]),
    claims: claimsSection.default(() => claimsSection.parse({})),
    validation: validationSection.default(() => validationSection.parse({})),
    jwks: jwksSection.default(() => jwksSection.parse({})),
    /** RFC 7662 introspection for opaque tokens (and every token when no keys are configured). */
    introspection: introspectionSection.optional(),
    /** The seed's short form of introspection.{endpoint, client_id, client_secret}. */
    introspection_url: idpUrl.optional(),
    ...clientCredentials,
    /** Opaque tokens validated by calling the IdP's UserInfo endpoint (identity only: no scopes, no audience). */
    userinfo: userinfoSection.optional(),
    userinfo_url: idpUrl.optional(),
  })
  .superRefine((oauth, ctx) => {
    if (oauth.discovery_url && oauth.jwks_url) {
      ctx.addIssue({ code: 'custom', path: ['jwks_url'], message: 'set discovery_url or jwks_url, not both (discovery finds the keys)' });
    }
    if (oauth.introspection && oauth.introspection_url) {
      ctx.addIssue({ code: 'custom', path: ['introspection_url'], message: 'set introspection.endpoint or introspection_url, not both' });
    }
    if (oauth.userinfo && oauth.userinfo_url) {
      ctx.addIssue({ code: 'custom', path: ['userinfo_url'], message: 'set userinfo.url or userinfo_url, not both' });
    }
    const credentialHomes: [object, (string | number)[]][] = [[oauth, []]];
    if (oauth.introspection) credentialHomes.push([oauth.introspection, ['introspection']]);
    for (const [home, path] of credentialHomes) {
      const c = home as { client_secret?: string; client_secret_env?: string };
      if (c.client_secret !== undefined && c.client_secret_env !== undefined) {
        ctx.addIssue({ code: 'custom', path: [...path, 'client_secret'], message: 'set client_secret or client_secret_env, not both' });
      }
    }
    const introspects = !!(oauth.introspection_url || (oauth.introspection?.enabled && (oauth.introspection.endpoint || oauth.discovery_url)));
    const usesUserinfo = !!(oauth.userinfo_url || (oauth.userinfo?.enabled && (oauth.userinfo.url || oauth.discovery_url)));
    if (!oauth.discovery_url && !oauth.jwks_url && !introspects && !usesUserinfo) {
      ctx.addIssue({ code: 'custom', path: [], message: 'auth.type oauth needs a way to validate tokens: discovery_url, jwks_url, introspection_url (or introspection.endpoint) or userinfo_url' });
    }
    if (oauth.introspection?.enabled && !oauth.introspection.endpoint && !oauth.discovery_url) {
      ctx.addIssue({ code: 'custom', path: ['introspection', 'endpoint'], message: 'set introspection.endpoint (or discovery_url, to discover it)' });
    }
    if (oauth.userinfo?.enabled && !oauth.userinfo.url && !oauth.discovery_url) {
      ctx.addIssue({ code: 'custom', path: ['userinfo', 'url'], message: 'set userinfo.url (or discovery_url, to discover it)' });
    }
    if (introspects) {
      const i = oauth.introspection;
      const clientId = i?.client_id ?? oauth.client_id;
      const hasSecret = [i?.client_secret, i?.client_secret_env, oauth.client_secret, oauth.client_secret_env].some((v) => v !== undefined);
      // RFC 7662 §2.1: the introspection endpoint requires authorization.
      if (!clientId || !hasSecret) {
        ctx.addIssue({ code: 'custom', path: i ? ['introspection', 'client_id'] : ['client_id'], message: 'introspection needs client_id and client_secret (or client_secret_env): RFC 7662 endpoints authenticate their callers' });
      }
    }
  });

export const authSection = z
  .strictObject({
    /** none: only the registry's own tokens; bearer: static tokens or a validation endpoint; oauth: tokens of another issuer. */
    type: z.enum(['none', 'bearer', 'oauth']).default('none'),
    bearer: bearerAuth.optional(),
    oauth: oauthAuth.optional(),
  })
  .superRefine((auth, ctx) => {
    if (auth.type === 'bearer' && !auth.bearer?.valid_tokens.length && !auth.bearer?.validation_endpoint) {
      ctx.addIssue({ code: 'custom', path: ['bearer', 'valid_tokens'], message: 'auth.type bearer needs at least one token in bearer.valid_tokens, or bearer.validation_endpoint' });
    }
    if (auth.type === 'oauth' && !auth.oauth) {
      ctx.addIssue({ code: 'custom', path: ['oauth'], message: 'auth.type oauth needs an oauth block (discovery_url or jwks_url, audience, ...)' });
    }
  });

export type AuthConfig = z.infer<typeof authSection>;
export type OAuthAuthConfig = z.infer<typeof oauthAuth>;
export type BearerAuthConfig = z.infer<typeof bearerAuth>;
