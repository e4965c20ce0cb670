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

/** A client configured by an admin (MXCP's `clients:`). */
const staticClient = z
  .strictObject({
    client_id: z.string().regex(/^[\x21-\x7e]{1,200}$/, 'expected a client id of visible ASCII characters'),
    /** Confidential clients: the secret, from the environment. Without it the client is public (PKCE only). */
    client_secret_env: envName.optional(),
    name: z.string(),
    redirect_uris: z.array(z.string()).default([]),
    grant_types: z.array(z.enum(['authorization_code', 'refresh_token'])).default(['authorization_code', 'refresh_token']),
    scopes: z.array(scope).optional(),
    token_endpoint_auth_method: z.enum(['none', 'client_secret_basic', 'client_secret_post']).optional(),
  })
  .refine((c) => !(c.token_endpoint_auth_method && c.token_endpoint_auth_method !== 'none' && !c.client_secret_env), {
    message: 'a client that authenticates with a secret needs client_secret_env',
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
  /** How long a browser stays signed in at the registry (single sign-on across clients). */
  session_lifetime: duration.default(12 * 3600),
  /** Client ID Metadata Documents: an https URL as client_id (the 2026-07-28 MCP revision's preferred registration). */
  client_id_metadata_documents: z.boolean().default(true),
  /** Clients an admin configured, beside dynamically registered ones. */
  clients: z.array(staticClient).default([]),
});
