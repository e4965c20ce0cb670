import { z } from 'zod';
import { duration } from '../duration.ts';
import { envName, httpUrl, scope } from './common.ts';
import { federatedSection } from './federated.ts';

export const builtinUser = z
  .strictObject({
    username: z.string().regex(/^[A-Za-z0-9._@+-]{1,128}$/, 'expected a username of letters, digits and . _ @ + -'),
    /** A bcrypt hash ($2a$/$2b$/$2y$). */
    password_hash: z.string().regex(/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/, 'expected a bcrypt hash like $2b$10$...').optional(),
    /** The name of an environment variable holding the password; hashed at start. */
    password_env: envName.optional(),
    scopes: z.array(scope).default([]),
    name: z.string().optional(),
    email: z.email().optional(),
    /** Carried in the user's access tokens (RFC 9068 §2.2.3.1): for gateway members, tool policies and access roles. */
    groups: z.array(z.string().min(1)).default([]),
    roles: z.array(z.string().min(1)).default([]),
  })
  .refine((u) => (u.password_hash === undefined) !== (u.password_env === undefined), {
    message: 'set exactly one of password_hash or password_env',
  });

const algorithm = z.enum(['ES256', 'RS256', 'EdDSA']);

const signingSection = z.strictObject({
  algorithm: algorithm.default('ES256'),
  /** A PEM (PKCS#8) private key or a private JWK file: the key tokens are signed with. */
  key_file: z.string().optional(),
  /**
   * Keys that signed tokens before a rotation: still published in the JWKS and
   * accepted until removed from this list (keep them for one token_lifetime).
   */
  previous_keys: z.array(z.strictObject({ key_file: z.string(), algorithm: algorithm.default('ES256') })).default([]),
  /** Without key_file: generate a key once and keep it in the data dir (`keygate-registry keys rotate` makes a new one). */
  generate_key: z.boolean().default(true),
});

/** RFC 8693 §2.1: the grant type of a token exchange. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/**
 * An admin's permission for a client (an agent) to exchange an end user's
 * access token for one that acts as that user (RFC 8693). Without this block
 * the client may not exchange tokens at all.
 */
/** RFC 8693 permission of a client (the file's oauth_server.clients[].token_exchange, and the admin API's). */
export const tokenExchangePolicy = z.strictObject({
  /** The MCP endpoints (RFC 8707 resources) it may obtain tokens for: a gateway covers its servers; a path is relative to the public URL. */
  resources: z.array(z.union([httpUrl, z.string().regex(/^\/mcp(?:\/[^/?#\s]+){0,2}$/, 'expected an http(s) URL or a path like /mcp/{gateway}[/{server}]')])).min(1, 'list at least one resource (an MCP endpoint URL) the client may obtain tokens for'),
  /** Whom it may act for: subjects (usernames), emails, or "@domain". Omitted: any active user. */
  users: z.array(z.string().min(1)).optional(),
  /** Lifetime of an exchanged token (never past the subject token's own expiry). */
  token_lifetime: duration.default(300),
});

/** A client configured by an admin (MXCP's `clients:`). */
const staticClient = z
  .strictObject({
    client_id: z.string().regex(/^[\x21-\x7e]{1,200}$/, 'expected a client id of visible ASCII characters'),
    /** Confidential clients: the secret, from the environment. Without it the client is public (PKCE only). */
    client_secret_env: envName.optional(),
    name: z.string(),
    redirect_uris: z.array(z.string()).default([]),
    /** client_credentials: the client acts as itself (a headless agent); confidential clients only. */
    grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials', TOKEN_EXCHANGE_GRANT])).default(['authorization_code', 'refresh_token']),
    scopes: z.array(scope).optional(),
    token_endpoint_auth_method: z.enum(['none', 'client_secret_basic', 'client_secret_post']).optional(),
    /** Allows RFC 8693 token exchange (adds its grant type); confidential clients only. */
    token_exchange: tokenExchangePolicy.optional(),
    /** RFC 7662 §4: a protected resource that may introspect tokens at /oauth/introspect; confidential clients only. */
    resource_server: z.boolean().default(false),
  })
  .refine((c) => !(c.token_endpoint_auth_method && c.token_endpoint_auth_method !== 'none' && !c.client_secret_env), {
    message: 'a client that authenticates with a secret needs client_secret_env',
  })
  // RFC 6749 §4.4 / RFC 8693 §2.1: both grants authenticate the client; a public client cannot.
  .refine((c) => !c.grant_types.includes('client_credentials') || (c.client_secret_env !== undefined && c.token_endpoint_auth_method !== 'none'), {
    message: 'the client_credentials grant is for confidential clients: set client_secret_env',
    path: ['grant_types'],
  })
  .refine((c) => c.token_exchange === undefined || (c.client_secret_env !== undefined && c.token_endpoint_auth_method !== 'none'), {
    message: 'token exchange is for confidential clients: set client_secret_env',
    path: ['token_exchange'],
  })
  .refine((c) => !c.resource_server || (c.client_secret_env !== undefined && c.token_endpoint_auth_method !== 'none'), {
    message: 'a resource server authenticates to the introspection endpoint (RFC 7662 §2.1): set client_secret_env',
    path: ['resource_server'],
  })
  .refine((c) => !c.grant_types.includes(TOKEN_EXCHANGE_GRANT) || c.token_exchange !== undefined, {
    message: `${TOKEN_EXCHANGE_GRANT} needs an admin's permission: set token_exchange.resources (and optionally users)`,
    path: ['token_exchange'],
  });

/**
 * RFC 7591 registration is open to anyone, so it is bounded: per address, in
 * number, and in time for clients nobody signs in with. Defaults: one address
 * can hold at most 24 h × 20 = 480 unused clients, under half the cap, so it
 * takes several addresses to fill it; a person's client registers once.
 * Loopback callers are not counted per address unless `loopback: true`: on a
 * registry bound to 127.0.0.1 (npm start) they are everyone (editors, test
 * suites), and behind a reverse proxy on the same host the proxy's address
 * would make the limit one for all callers together, which a single flood
 * could use up; max_clients and unused_client_ttl bound them all.
 */
const registrationSection = z.strictObject({
  /** Registrations from one address (an IPv6 /64) per sliding window; more are 429 with Retry-After. */
  rate_limit: z
    .strictObject({
      per_address: z.number().int().positive().default(20),
      window: duration.default(3600),
      /** Count loopback addresses (127.0.0.0/8, ::1) too. */
      loopback: z.boolean().default(false),
    })
    .default({ per_address: 20, window: 3600, loopback: false }),
  /** Dynamically registered clients the store may hold; a registration past it is 503 until some expire or an admin deletes some. */
  max_clients: z.number().int().positive().default(1000),
  /** A registered client that no code or token was issued to within this time is deleted. */
  unused_client_ttl: duration.default(24 * 3600),
});

export const oauthServerSection = z.strictObject({
  enabled: z.boolean().default(true),
  /** Defaults to server.public_url. */
  issuer: httpUrl.optional(),
  /** builtin: users from this file; federated: people sign in at an upstream identity provider (see federated). */
  mode: z.enum(['builtin', 'federated']).default('builtin'),
  federated: federatedSection.optional(),
  token_lifetime: duration.default(3600),
  refresh_token_lifetime: duration.default(30 * 86400),
  signing: signingSection.default(() => signingSection.parse({})),
  builtin: z.strictObject({ users: z.array(builtinUser).default([]) }).default({ users: [] }),
  /** When set, dynamically registered clients may only use these redirect URIs. */
  allowed_redirect_uris: z.array(z.string()).default([]),
  /** mcp:admin is what the admin API asks for. */
  scopes_supported: z.array(scope).default(['mcp:read', 'mcp:write', 'mcp:admin']),
  /** RFC 7591 dynamic client registration (what VS Code and Cursor use). */
  dynamic_registration: z.boolean().default(true),
  /** Bounds on dynamic registration (see registrationSection). */
  registration: registrationSection.default(() => registrationSection.parse({})),
  /** How long a browser stays signed in at the registry (single sign-on across clients). */
  session_lifetime: duration.default(12 * 3600),
  /** Client ID Metadata Documents: an https URL as client_id (the 2026-07-28 MCP revision's preferred registration). */
  client_id_metadata_documents: z.boolean().default(true),
  /** Clients an admin configured, beside dynamically registered ones. */
  clients: z.array(staticClient).default([]),
}).superRefine((section, ctx) => {
  // RFC 9068 §2.2: a client-credentials token's sub is the client id; it must not name a person too.
  const usernames = new Set(section.builtin.users.map((u) => u.username));
  section.clients.forEach((c, i) => {
    if (c.grant_types.includes('client_credentials') && usernames.has(c.client_id)) {
      ctx.addIssue({ code: 'custom', path: ['clients', i, 'client_id'], message: `"${c.client_id}" is also a builtin user: a client acting as itself needs an id no person has` });
    }
  });
});
