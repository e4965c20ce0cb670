import { z } from 'zod';
import { duration } from './duration.ts';

// The registry's configuration. Every object is strict: an unknown key is an
// error that names it, never silently ignored. Defaults are written here, next
// to the key they belong to, so the schema documents itself.

/** Ids appear in URLs (`/mcp/{gateway}/{server}`): keep them to a safe alphabet. */
const id = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/, 'expected a lowercase id of letters, digits, ".", "_" or "-" (1-64 chars)');

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of an environment variable');

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

const scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected an OAuth scope token (RFC 6749 §3.3)');

const listen = z
  .string()
  .regex(/^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8787');

const serverSection = z.strictObject({
  listen: listen.default('127.0.0.1:8787'),
  /** The URL clients use to reach the registry; defaults to http://{listen}. */
  public_url: httpUrl.optional(),
  /** Browser origins (besides public_url's) allowed to call the MCP endpoints. */
  allowed_origins: z.array(z.url({ error: 'expected an origin like https://app.example.com' }).transform((u) => new URL(u).origin)).default([]),
});

const bearerAuth = z.strictObject({
  /** Static tokens, compared as HMAC-SHA-256 digests in constant time. */
  valid_tokens: z.array(z.string().min(1, 'a bearer token may not be empty')).default([]),
});

const authSection = z
  .strictObject({
    /** none: only the registry's own tokens; bearer: static tokens too. */
    type: z.enum(['none', 'bearer']).default('none'),
    bearer: bearerAuth.optional(),
  })
  .superRefine((auth, ctx) => {
    if (auth.type === 'bearer' && !auth.bearer?.valid_tokens.length) {
      ctx.addIssue({ code: 'custom', path: ['bearer', 'valid_tokens'], message: 'auth.type bearer needs at least one token in bearer.valid_tokens' });
    }
  });

const builtinUser = z
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

const oauthServerSection = z.strictObject({
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
});

const storageSection = z.strictObject({
  type: z.enum(['lowdb']).default('lowdb'),
  /** Defaults to {data dir}/store.json. */
  path: z.string().optional(),
});

const vaultSection = z.strictObject({
  /** Base64 of 32 random bytes. Without it, a key is generated into the data dir. */
  key_env: envName.optional(),
  key_file: z.string().optional(),
});

// How Keygate authenticates to an upstream. The *_env values are the
// upstream's own shared credential, used by a shared assignment that names no
// shared_identity.
const credentialNone = z.strictObject({ type: z.literal('none') });
const credentialBearer = z.strictObject({
  type: z.literal('bearer'),
  token_env: envName.optional(),
});
const credentialHeader = z.strictObject({
  type: z.literal('header'),
  name: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name'),
  value_env: envName.optional(),
});
const credential = z.discriminatedUnion('type', [credentialNone, credentialBearer, credentialHeader], {
  error: 'expected credential.type to be one of none, bearer, header',
});

const upstream = z.strictObject({
  id,
  name: z.string().optional(),
  url: httpUrl,
  credential: credential.default({ type: 'none' }),
  /** How long a silent upstream is waited for before the call fails. */
  timeout: duration.default(60),
});

const identitySeed = z
  .strictObject({
    id,
    upstream: id,
    label: z.string().optional(),
    /** Seeded identities are service accounts: global, owned by the organization. */
    availability: z.enum(['global']).default('global'),
    token_env: envName.optional(),
    value_env: envName.optional(),
  })
  .refine((i) => (i.token_env === undefined) !== (i.value_env === undefined), {
    message: 'set exactly one of token_env (bearer upstreams) or value_env (header upstreams)',
  });

const assignment = z.strictObject({
  upstream: id,
  /** Path segment under the gateway: /mcp/{gateway}/{name}. Defaults to the upstream id. */
  name: id.optional(),
  identity: z.enum(['shared'], { error: 'expected identity: shared (per_user arrives with per-user identities)' }),
  shared_identity: id.optional(),
});

const gateway = z.strictObject({
  id,
  name: z.string().optional(),
  description: z.string().optional(),
  visibility: z.enum(['public', 'private']).default('private'),
  servers: z.array(assignment).min(1, 'a gateway needs at least one server'),
});

export const configSchema = z
  .strictObject({
    server: serverSection.default({ listen: '127.0.0.1:8787', allowed_origins: [] }),
    auth: authSection.default({ type: 'none' }),
    oauth_server: oauthServerSection.default(() => oauthServerSection.parse({})),
    storage: storageSection.default({ type: 'lowdb' }),
    vault: vaultSection.default({}),
    upstreams: z.array(upstream).default([]),
    identities: z.array(identitySeed).default([]),
    gateways: z.array(gateway).default([]),
  })
  .superRefine((config, ctx) => {
    const unique = (items: { id: string }[], key: string) => {
      const seen = new Set<string>();
      items.forEach((item, i) => {
        if (seen.has(item.id)) ctx.addIssue({ code: 'custom', path: [key, i, 'id'], message: `duplicate id "${item.id}"` });
        seen.add(item.id);
      });
    };
    unique(config.upstreams, 'upstreams');
    unique(config.identities, 'identities');
    unique(config.gateways, 'gateways');

    const upstreams = new Map(config.upstreams.map((u) => [u.id, u]));
    const identities = new Map(config.identities.map((i) => [i.id, i]));

    config.identities.forEach((identity, i) => {
      const up = upstreams.get(identity.upstream);
      if (!up) {
        ctx.addIssue({ code: 'custom', path: ['identities', i, 'upstream'], message: `no upstream with id "${identity.upstream}"` });
        return;
      }
      const wants = up.credential.type === 'bearer' ? 'token_env' : up.credential.type === 'header' ? 'value_env' : undefined;
      if (!wants) {
        ctx.addIssue({ code: 'custom', path: ['identities', i], message: `upstream "${up.id}" takes no credential (credential.type none)` });
      } else if (identity[wants] === undefined) {
        ctx.addIssue({ code: 'custom', path: ['identities', i, wants], message: `upstream "${up.id}" has credential.type ${up.credential.type}: set ${wants}` });
      }
    });

    config.gateways.forEach((gw, g) => {
      const names = new Set<string>();
      gw.servers.forEach((server, s) => {
        const path = ['gateways', g, 'servers', s];
        const name = server.name ?? server.upstream;
        if (names.has(name)) ctx.addIssue({ code: 'custom', path: [...path, 'name'], message: `two servers of gateway "${gw.id}" are named "${name}"; give one a name:` });
        names.add(name);
        const up = upstreams.get(server.upstream);
        if (!up) {
          ctx.addIssue({ code: 'custom', path: [...path, 'upstream'], message: `no upstream with id "${server.upstream}"` });
          return;
        }
        if (server.shared_identity !== undefined) {
          const identity = identities.get(server.shared_identity);
          if (!identity) {
            ctx.addIssue({ code: 'custom', path: [...path, 'shared_identity'], message: `no identity with id "${server.shared_identity}"` });
          } else if (identity.upstream !== up.id) {
            ctx.addIssue({ code: 'custom', path: [...path, 'shared_identity'], message: `identity "${identity.id}" is for upstream "${identity.upstream}", not "${up.id}"` });
          }
        } else if (up.credential.type !== 'none') {
          const envKey = up.credential.type === 'bearer' ? up.credential.token_env : up.credential.value_env;
          if (envKey === undefined) {
            ctx.addIssue({
              code: 'custom',
              path: [...path, 'shared_identity'],
              message: `upstream "${up.id}" needs a credential: name a shared_identity, or set the upstream's credential.${up.credential.type === 'bearer' ? 'token_env' : 'value_env'}`,
            });
          }
        }
      });
    });
  });

export type Config = z.infer<typeof configSchema>;
export type UpstreamConfig = Config['upstreams'][number];
export type GatewayConfig = Config['gateways'][number];
export type AssignmentConfig = GatewayConfig['servers'][number];
export type IdentitySeed = Config['identities'][number];
export type BuiltinUserConfig = Config['oauth_server']['builtin']['users'][number];
