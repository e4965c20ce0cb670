import { z } from 'zod';
import { duration } from '../duration.ts';
import { envName, httpUrl, id, scope } from './common.ts';
import { policies } from './policies.ts';

// Upstreams (MCP servers Keygate forwards to), the identities that
// authenticate to them, and the gateways that assign them. The same schemas
// validate the configuration file and the admin API's bodies.

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name');

/** One credential field a user (or an admin, for a service account) fills in. Gumstack's vocabulary. */
export const credentialField = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'expected a field name of lowercase letters, digits and _'),
  label: z.string().max(100),
  description: z.string().max(500).optional(),
  placeholder: z.string().max(200).optional(),
  /** Masked when typed, never shown again once stored. */
  secret: z.boolean().default(true),
  required: z.boolean().default(true),
});
export type CredentialField = z.infer<typeof credentialField>;

/** Where field values go upstream: `value` is a template over the fields, e.g. "Bearer {api_key}". */
const injection = z.strictObject({
  header: headerName,
  value: z.string().min(1),
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
  name: headerName,
  value_env: envName.optional(),
});
const credentialFields = z
  .strictObject({
    type: z.literal('fields'),
    fields: z.array(credentialField).min(1, 'fields needs at least one field'),
    /** One header, or several. */
    inject: z.union([injection, z.array(injection).min(1)]).transform((i) => (Array.isArray(i) ? i : [i])),
  })
  .superRefine((c, ctx) => {
    const names = new Set(c.fields.map((f) => f.name));
    if (names.size !== c.fields.length) ctx.addIssue({ code: 'custom', path: ['fields'], message: 'two fields have the same name' });
    c.inject.forEach((inj, i) => {
      for (const [, name] of inj.value.matchAll(/\{([^}]*)\}/g)) {
        if (!names.has(name!)) ctx.addIssue({ code: 'custom', path: ['inject', i, 'value'], message: `{${name}} is not one of the fields (${[...names].join(', ')})` });
      }
    });
  });
/** Per-user OAuth at the upstream's authorization server (discovered from `url` when auth_url/token_url are absent). */
const credentialOAuth = z.strictObject({
  type: z.literal('oauth'),
  auth_url: httpUrl.optional(),
  token_url: httpUrl.optional(),
  /** Without it: dynamic client registration at the upstream's authorization server (RFC 7591). */
  client_id: z.string().optional(),
  client_secret_env: envName.optional(),
  scopes: z.array(scope).default([]),
  /** RFC 8707 resource to ask for; defaults to the upstream's URL. */
  resource: httpUrl.optional(),
});
/** OAuth client credentials: a service account's tokens, fetched and renewed by Keygate. */
const credentialClientCredentials = z.strictObject({
  type: z.literal('client_credentials'),
  token_url: httpUrl,
  client_id: z.string(),
  client_secret_env: envName,
  scopes: z.array(scope).default([]),
  resource: httpUrl.optional(),
});
export const credential = z.discriminatedUnion('type', [credentialNone, credentialBearer, credentialHeader, credentialFields, credentialOAuth, credentialClientCredentials], {
  error: 'expected credential.type to be one of none, bearer, header, fields, oauth, client_credentials',
});
export type CredentialConfig = z.infer<typeof credential>;

export const upstream = z.strictObject({
  id,
  name: z.string().optional(),
  description: z.string().optional(),
  url: httpUrl,
  credential: credential.default({ type: 'none' }),
  /** How long a silent upstream is waited for before the call fails. */
  timeout: duration.default(60),
});

export const identitySeed = z
  .strictObject({
    id,
    upstream: id,
    label: z.string().optional(),
    /** Seeded identities are service accounts: global, owned by the organization. */
    availability: z.enum(['global']).default('global'),
    /** bearer upstreams. */
    token_env: envName.optional(),
    /** header upstreams. */
    value_env: envName.optional(),
    /** fields upstreams: each field's value from an environment variable. */
    fields_env: z.record(z.string(), envName).optional(),
  })
  .refine((i) => [i.token_env, i.value_env, i.fields_env].filter((v) => v !== undefined).length <= 1, {
    message: 'set one of token_env (bearer upstreams), value_env (header upstreams) or fields_env (fields upstreams)',
  });

/** Which of an upstream's tools an assignment exposes: globs over the upstream's tool names. */
const toolFilter = z.strictObject({
  allow: z.array(z.string().min(1)).optional(),
  deny: z.array(z.string().min(1)).default([]),
});

export const assignment = z
  .strictObject({
    upstream: id,
    /** Path segment under the gateway: /mcp/{gateway}/{name}. Defaults to the upstream id. */
    name: id.optional(),
    /** On /mcp/{gateway}, its tools and prompts are offered as <prefix>__<name>. Defaults to the name; "" keeps its names as they are. */
    prefix: z
      .string()
      .regex(/^(?:[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?)?$/, 'expected a prefix: a lowercase id of letters, digits, ".", "_" or "-" (1-64 chars), or "" to keep the names as they are')
      .optional(),
    /** shared: one service-account identity for everyone; per_user: each person brings their own. */
    identity: z.enum(['shared', 'per_user'], { error: 'expected identity: shared or per_user' }),
    shared_identity: id.optional(),
    /** per_user credential fields: kept by the registry (encrypted), or by the client and sent with each request. */
    storage: z.enum(['registry', 'client']).default('registry'),
    tools: toolFilter.optional(),
    /** Allow/deny rules on tools by who is calling; the first matching rule decides, none matching allows. */
    policies: policies.optional(),
  })
  .superRefine((a, ctx) => {
    if (a.identity === 'per_user' && a.shared_identity !== undefined) ctx.addIssue({ code: 'custom', path: ['shared_identity'], message: 'a per_user server has no shared_identity' });
    if (a.identity === 'shared' && a.storage === 'client') ctx.addIssue({ code: 'custom', path: ['storage'], message: 'storage: client is for per_user servers' });
  });

/** Who may use a private gateway: anyone signed in when empty, else anyone matching one rule. */
export const members = z.strictObject({
  users: z.array(z.string()).default([]),
  groups: z.array(z.string()).default([]),
  email_domains: z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'expected a domain like example.com')).default([]),
  scopes: z.array(scope).default([]),
  /** Roles the caller's token names (builtin users' roles, auth.oauth.claims.roles_claim, federated role claims). */
  roles: z.array(z.string().min(1)).default([]),
});

/** Which scope each MCP method needs (server/gateway/scopes.ts has the defaults and the method lists). */
export const gatewayScopes = z.strictObject({
  /** The handshake, lists, reads, prompts/get, ping, completions, logging, subscriptions. */
  read: scope.default('mcp:read'),
  /** tools/call, and every method not named as a read. */
  write: scope.default('mcp:write'),
  /** Per-method overrides, e.g. {"resources/read": "files:read"}. */
  methods: z.record(z.string().regex(/^[a-z][a-zA-Z/_]*$/, 'expected an MCP method like tools/call'), scope).default({}),
});

export const gateway = z.strictObject({
  id,
  name: z.string().optional(),
  description: z.string().optional(),
  visibility: z.enum(['public', 'private']).default('private'),
  members: members.optional(),
  scopes: gatewayScopes.optional(),
  servers: z.array(assignment).min(1, 'a gateway needs at least one server'),
});

export type UpstreamInput = z.infer<typeof upstream>;
export type GatewayInput = z.infer<typeof gateway>;
export type IdentitySeedInput = z.infer<typeof identitySeed>;

interface Issue {
  path: (string | number)[];
  message: string;
}

/** The env key holding an upstream's own shared value, if its credential kind has one. */
export function upstreamEnvKey(c: CredentialConfig): string | undefined {
  return c.type === 'bearer' ? c.token_env : c.type === 'header' ? c.value_env : undefined;
}

/**
 * Cross-references between upstreams, identities and gateways (used for the
 * configuration file and for every admin API change).
 */
export function checkReferences(upstreams: UpstreamInput[], identities: IdentitySeedInput[], gateways: GatewayInput[]): Issue[] {
  const issues: Issue[] = [];
  const byId = new Map(upstreams.map((u) => [u.id, u]));
  const seeds = new Map(identities.map((i) => [i.id, i]));

  identities.forEach((identity, i) => {
    const up = byId.get(identity.upstream);
    if (!up) return void issues.push({ path: ['identities', i, 'upstream'], message: `no upstream with id "${identity.upstream}"` });
    const wants = { bearer: 'token_env', header: 'value_env', fields: 'fields_env' } as const;
    const kind = up.credential.type;
    if (!(kind in wants)) {
      issues.push({ path: ['identities', i], message: `upstream "${up.id}" has credential.type ${kind}: it takes no seeded identity` });
      return;
    }
    const key = wants[kind as keyof typeof wants];
    if (identity[key] === undefined) issues.push({ path: ['identities', i, key], message: `upstream "${up.id}" has credential.type ${kind}: set ${key}` });
    if (kind === 'fields' && identity.fields_env && up.credential.type === 'fields') {
      for (const field of up.credential.fields) {
        if (field.required && !(field.name in identity.fields_env)) issues.push({ path: ['identities', i, 'fields_env', field.name], message: `the required field ${field.name} needs a value` });
      }
      for (const name of Object.keys(identity.fields_env)) {
        if (!up.credential.fields.some((f) => f.name === name)) issues.push({ path: ['identities', i, 'fields_env', name], message: `upstream "${up.id}" has no field ${name}` });
      }
    }
  });

  gateways.forEach((gw, g) => {
    const names = new Set<string>();
    const prefixes = new Map<string, string>();
    gw.servers.forEach((server, s) => {
      const path = ['gateways', g, 'servers', s];
      const name = server.name ?? server.upstream;
      if (names.has(name)) issues.push({ path: [...path, 'name'], message: `two servers of gateway "${gw.id}" are named "${name}"; give one a name:` });
      names.add(name);
      // One prefix, one server: otherwise /mcp/{gateway} could not tell whose a tool or prompt name is.
      const prefix = server.prefix ?? name;
      const other = prefixes.get(prefix);
      if (other !== undefined && other !== name) {
        issues.push({
          path: [...path, 'prefix'],
          message: prefix === '' ? `servers "${other}" and "${name}" of gateway "${gw.id}" both keep their names unprefixed (prefix: ""); only one server of a gateway may` : `servers "${other}" and "${name}" of gateway "${gw.id}" both offer their names under the prefix "${prefix}"`,
        });
      }
      if (other === undefined) prefixes.set(prefix, name);
      const up = byId.get(server.upstream);
      if (!up) return void issues.push({ path: [...path, 'upstream'], message: `no upstream with id "${server.upstream}"` });
      const kind = up.credential.type;
      if (server.storage === 'client' && kind !== 'fields') issues.push({ path: [...path, 'storage'], message: `storage: client needs an upstream with credential.type fields, not ${kind}` });
      if (server.identity === 'per_user' && kind === 'none') issues.push({ path: [...path, 'identity'], message: `upstream "${up.id}" takes no credential: per_user has nothing to bring` });
      if (server.identity === 'per_user' && kind === 'client_credentials') issues.push({ path: [...path, 'identity'], message: `upstream "${up.id}" uses client_credentials, a service account: use identity: shared` });
      if (server.identity !== 'shared') return;
      if (server.shared_identity !== undefined) {
        // An identity not seeded here may exist in the store (created through the admin API);
        // one seeded here must be for this upstream.
        const identity = seeds.get(server.shared_identity);
        if (identity && identity.upstream !== up.id) issues.push({ path: [...path, 'shared_identity'], message: `identity "${identity.id}" is for upstream "${identity.upstream}", not "${up.id}"` });
      } else if (kind === 'bearer' || kind === 'header') {
        if (upstreamEnvKey(up.credential) === undefined) {
          issues.push({ path: [...path, 'shared_identity'], message: `upstream "${up.id}" needs a credential: name a shared_identity, or set the upstream's credential.${kind === 'bearer' ? 'token_env' : 'value_env'}` });
        }
      } else if (kind === 'fields' || kind === 'oauth') {
        issues.push({ path: [...path, 'shared_identity'], message: `upstream "${up.id}" has credential.type ${kind}: a shared server names its shared_identity` });
      }
    });
  });
  return issues;
}
