import { z } from 'zod';
import { idpUrl } from './auth.ts';
import { envName, scope } from './common.ts';

// `oauth_server.federated`: the registry signs people in at an upstream
// identity provider, then issues its own tokens. The keys are the MCP bridge
// seed's (upstream_issuer, client_id, client_secret_env, scopes,
// allowed_domains, default_scopes, admin_users, admin_scopes); `provider:`
// presets are MXCP's (github, google, keycloak, atlassian, salesforce), beside
// any OpenID Connect issuer.

export const FEDERATED_PROVIDERS = ['oidc', 'github', 'google', 'keycloak', 'atlassian', 'salesforce'] as const;
export type FederatedProvider = (typeof FEDERATED_PROVIDERS)[number];

const domain = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, 'expected a domain name like example.com')
  .transform((d) => d.toLowerCase());

export const federatedSection = z
  .strictObject({
    /** oidc: any OpenID Connect issuer (upstream_issuer); the others are presets that know their endpoints. */
    provider: z.enum(FEDERATED_PROVIDERS, { error: `expected provider to be one of ${FEDERATED_PROVIDERS.join(', ')}` }).default('oidc'),
    /** The IdP's issuer identifier; discovery happens at {upstream_issuer}/.well-known/openid-configuration. Presets know theirs. */
    upstream_issuer: idpUrl.optional(),
    client_id: z.string().min(1, 'client_id may not be empty'),
    /** The environment variable holding the client secret registered at the IdP. */
    client_secret_env: envName,
    /** Scopes asked of the IdP; each preset has a default (openid email profile; GitHub: read:user user:email). */
    scopes: z.array(scope).optional(),
    /** When set, only people whose verified email is in one of these domains may sign in. */
    allowed_domains: z.array(domain).default([]),
    /** Registry scopes everyone who signs in gets: by default, reading and calling tools (mcp:read is read-only). */
    default_scopes: z.array(scope).default(['mcp:read', 'mcp:write']),
    /** Verified emails (any provider) or usernames (GitHub logins, Keycloak usernames) that get admin_scopes too. */
    admin_users: z.array(z.string().min(1)).default([]),
    admin_scopes: z.array(scope).default([]),
    /**
     * Where the IdP's ID token (or UserInfo) carries groups and roles, for gateway
     * members, policies and access.roles (dotted paths reach nested claims, as in
     * auth.oauth.claims: Keycloak's realm_access.roles). roles_claim unset: none.
     */
    claims: z
      .strictObject({
        groups_claim: z.string().min(1).max(200).default('groups'),
        roles_claim: z.string().min(1).max(200).optional(),
      })
      .default({ groups_claim: 'groups' }),
    github: z.strictObject({
      /** GitHub Enterprise Server: its URL; the API is then {server_url}/api/v3. */
      server_url: idpUrl.default('https://github.com'),
      /** Override the API base (GitHub Enterprise behind a separate API host). */
      api_url: idpUrl.optional(),
    }).optional(),
    keycloak: z.strictObject({ server_url: idpUrl, realm: z.string().regex(/^[^/?#\s]+$/, 'expected a realm name') }).optional(),
    salesforce: z.strictObject({
      /** https://login.salesforce.com (production), https://test.salesforce.com (sandbox) or a My Domain URL. */
      login_url: idpUrl.default('https://login.salesforce.com'),
    }).optional(),
    google: z.strictObject({
      /** Ask Google to offer only accounts of this Workspace domain (a hint: allowed_domains is what enforces). */
      hosted_domain: domain.optional(),
    }).optional(),
  })
  .superRefine((f, ctx) => {
    if (f.provider === 'oidc' && !f.upstream_issuer) {
      ctx.addIssue({ code: 'custom', path: ['upstream_issuer'], message: 'provider oidc needs upstream_issuer (the IdP\'s issuer URL)' });
    }
    if (f.provider !== 'oidc' && f.upstream_issuer) {
      ctx.addIssue({ code: 'custom', path: ['upstream_issuer'], message: `provider ${f.provider} knows its issuer; configure it under ${f.provider}: instead` });
    }
    if (f.provider === 'keycloak' && !f.keycloak) {
      ctx.addIssue({ code: 'custom', path: ['keycloak'], message: 'provider keycloak needs keycloak.server_url and keycloak.realm' });
    }
    for (const preset of ['github', 'keycloak', 'salesforce', 'google'] as const) {
      if (f[preset] && f.provider !== preset) {
        ctx.addIssue({ code: 'custom', path: [preset], message: `${preset}: settings only apply with provider: ${preset}` });
      }
    }
    if (f.admin_users.length && !f.admin_scopes.length) {
      ctx.addIssue({ code: 'custom', path: ['admin_scopes'], message: 'admin_users are listed but admin_scopes is empty: say which scopes admins get' });
    }
  });

export type FederatedConfig = z.infer<typeof federatedSection>;
