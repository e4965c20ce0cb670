import * as z from 'zod/mini';
import { requestJson, type Fetch } from './http.ts';

// The registry's self-service API (/api/v1/me, docs/identities.md) as the
// sidebar uses it: every server the person may reach with its state, and the
// identities that serve them. Secrets only ever go in (POST/PATCH bodies);
// answers say which fields are set, never what they hold. Wire names stay
// snake_case in the schemas and are mapped to camelCase here, once.

const fieldSchema = z.object({
  name: z.string(),
  label: z.string(),
  description: z.optional(z.string()),
  placeholder: z.optional(z.string()),
  secret: z._default(z.boolean(), true),
  required: z._default(z.boolean(), true),
});

const identitySchema = z.object({
  id: z.string(),
  label: z.optional(z.nullable(z.string())),
  upstream: z.string(),
  availability: z.enum(['private', 'global']),
  kind: z.string(),
  owner: z.enum(['you', 'organization', 'someone else']),
  fields_set: z.optional(z.nullable(z.array(z.string()))),
  public_values: z.optional(z.nullable(z.record(z.string(), z.string()))),
  disabled: z._default(z.boolean(), false),
});

const serverSchema = z.object({
  gateway: z.object({ id: z.string(), name: z.string() }),
  server: z.string(),
  upstream: z.object({ id: z.string(), name: z.string(), description: z.optional(z.nullable(z.string())) }),
  scheme: z.enum(['shared', 'per_user']),
  storage: z._default(z.enum(['registry', 'client']), 'registry'),
  credential: z.object({ type: z.string(), fields: z.optional(z.array(fieldSchema)) }),
  // Lenient: a newer registry may add states; they are shown as "unavailable".
  state: z.string(),
  reason: z.optional(z.nullable(z.string())),
  identity: z.optional(z.nullable(identitySchema)),
  choices: z._default(z.array(identitySchema), []),
  mcp_url: z.string(),
  connect_url: z.string(),
});

const serversSchema = z.object({ servers: z.array(serverSchema) });

const auditEntrySchema = z.object({
  time: z.string(),
  gateway: z.string(),
  server: z.optional(z.nullable(z.string())),
  upstream: z.optional(z.nullable(z.string())),
  identity: z.optional(z.nullable(z.string())),
  http_method: z.optional(z.string()),
  method: z.optional(z.nullable(z.string())),
  name: z.optional(z.nullable(z.string())),
  outcome: z.string(),
  status: z.number(),
  latency_ms: z.optional(z.number()),
});
const auditSchema = z.object({ entries: z.array(auditEntrySchema), has_more: z._default(z.boolean(), false) });

export interface CredentialField {
  name: string;
  label: string;
  description: string | undefined;
  placeholder: string | undefined;
  secret: boolean;
  required: boolean;
}

export interface Identity {
  id: string;
  label: string | undefined;
  upstream: string;
  availability: 'private' | 'global';
  kind: string;
  owner: 'you' | 'organization' | 'someone else';
  fieldsSet: string[];
  publicValues: Record<string, string>;
  disabled: boolean;
}

export interface MyServer {
  gateway: { id: string; name: string };
  server: string;
  upstream: { id: string; name: string; description: string | undefined };
  scheme: 'shared' | 'per_user';
  storage: 'registry' | 'client';
  credential: { type: string; fields: CredentialField[] };
  /** ready, needs_credentials, needs_authorization, disabled, unavailable, client_credentials, or a newer one. */
  state: string;
  reason: string | undefined;
  identity: Identity | undefined;
  choices: Identity[];
  mcpUrl: string;
  connectUrl: string;
}

export type AuditEntry = z.infer<typeof auditEntrySchema>;

/** POST /identities: one of values (fields), token (bearer) or value (header). */
export interface NewIdentity {
  upstream: string;
  label?: string;
  availability: 'private' | 'global';
  values?: Record<string, string>;
  token?: string;
  value?: string;
  select?: { gateway: string; server: string };
}

export type IdentityChange = Partial<Pick<NewIdentity, 'label' | 'availability' | 'values' | 'token' | 'value'>>;

const identity = (i: z.infer<typeof identitySchema>): Identity => ({
  id: i.id,
  label: i.label ?? undefined,
  upstream: i.upstream,
  availability: i.availability,
  kind: i.kind,
  owner: i.owner,
  fieldsSet: i.fields_set ?? [],
  publicValues: i.public_values ?? {},
  disabled: i.disabled,
});

export class MeClient {
  constructor(
    readonly registry: string,
    private readonly fetchImpl: Fetch = fetch,
  ) {}

  /** GET /api/v1/me/servers: every server of every gateway the caller may use. */
  async servers(accessToken: string): Promise<MyServer[]> {
    const body = await requestJson(this.fetchImpl, this.registry, { path: '/api/v1/me/servers', accessToken }, serversSchema);
    return body.servers.map((s) => ({
      gateway: s.gateway,
      server: s.server,
      upstream: { id: s.upstream.id, name: s.upstream.name, description: s.upstream.description ?? undefined },
      scheme: s.scheme,
      storage: s.storage,
      credential: {
        type: s.credential.type,
        fields: (s.credential.fields ?? []).map((f) => ({ name: f.name, label: f.label, description: f.description, placeholder: f.placeholder, secret: f.secret, required: f.required })),
      },
      state: s.state,
      reason: s.reason ?? undefined,
      identity: s.identity ? identity(s.identity) : undefined,
      choices: s.choices.map(identity),
      mcpUrl: s.mcp_url,
      connectUrl: s.connect_url,
    }));
  }

  /** POST /api/v1/me/identities (with `select`: use it at once for that server). */
  async createIdentity(accessToken: string, body: NewIdentity): Promise<Identity> {
    return identity(await requestJson(this.fetchImpl, this.registry, { method: 'POST', path: '/api/v1/me/identities', accessToken, body }, identitySchema));
  }

  /** PATCH /api/v1/me/identities/{id} (own identities only). */
  async updateIdentity(accessToken: string, id: string, change: IdentityChange): Promise<Identity> {
    return identity(await requestJson(this.fetchImpl, this.registry, { method: 'PATCH', path: `/api/v1/me/identities/${encodeURIComponent(id)}`, accessToken, body: change }, identitySchema));
  }

  /** DELETE /api/v1/me/identities/{id} (own identities only). */
  async deleteIdentity(accessToken: string, id: string): Promise<void> {
    await requestJson(this.fetchImpl, this.registry, { method: 'DELETE', path: `/api/v1/me/identities/${encodeURIComponent(id)}`, accessToken }, undefined);
  }

  /** PUT /api/v1/me/selections: which identity serves a per-user server. */
  async select(accessToken: string, choice: { gateway: string; server: string; identity: string }): Promise<void> {
    await requestJson(this.fetchImpl, this.registry, { method: 'PUT', path: '/api/v1/me/selections', accessToken, body: choice }, undefined);
  }

  /** DELETE /api/v1/me/selections/{gateway}/{server}: back to the default. */
  async clearSelection(accessToken: string, gateway: string, server: string): Promise<void> {
    await requestJson(this.fetchImpl, this.registry, { method: 'DELETE', path: `/api/v1/me/selections/${encodeURIComponent(gateway)}/${encodeURIComponent(server)}`, accessToken }, undefined);
  }

  /** GET /api/v1/me/audit: the caller's own calls, newest first. */
  async audit(accessToken: string, limit = 200): Promise<{ entries: AuditEntry[]; hasMore: boolean }> {
    const body = await requestJson(this.fetchImpl, this.registry, { path: `/api/v1/me/audit?limit=${limit}`, accessToken }, auditSchema);
    return { entries: body.entries, hasMore: body.has_more };
  }
}
