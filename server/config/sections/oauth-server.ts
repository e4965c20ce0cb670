import { z } from 'zod';
import { duration } from '../duration.ts';
import { envName, httpUrl, scope } from './common.ts';

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

const signingSection = z.strictObject({
  algorithm: z.enum(['ES256', 'RS256', 'EdDSA']).default('ES256'),
  /** A PEM (PKCS#8) private key or a private JWK file. */
  key_file: z.string().optional(),
  /** Without key_file: generate a key once and keep it in the data dir. */
  generate_key: z.boolean().default(true),
});

export const oauthServerSection = z.strictObject({
  enabled: z.boolean().default(true),
  /** Defaults to server.public_url. */
  issuer: httpUrl.optional(),
  mode: z.enum(['builtin']).default('builtin'),
  token_lifetime: duration.default(3600),
  refresh_token_lifetime: duration.default(30 * 86400),
  signing: signingSection.default({ algorithm: 'ES256', generate_key: true }),
  builtin: z.strictObject({ users: z.array(builtinUser).default([]) }).default({ users: [] }),
  /** When set, dynamically registered clients may only use these redirect URIs. */
  allowed_redirect_uris: z.array(z.string()).default([]),
  scopes_supported: z.array(scope).default(['mcp:read', 'mcp:write']),
  /** RFC 7591 dynamic client registration (what VS Code and Cursor use). */
  dynamic_registration: z.boolean().default(true),
  /** How long a browser stays signed in at the registry (single sign-on across clients). */
  session_lifetime: duration.default(12 * 3600),
});
