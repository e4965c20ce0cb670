import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import type { CredentialConfig } from '../config/sections/upstreams.ts';
import { Collection, type Store } from '../store/index.ts';
import type { Selections } from './selections.ts';
import { sealedSchema, type Vault } from './vault.ts';

// An identity: a set of credentials scoped to one upstream, owned by a user or
// (for service accounts) by the organization. The secret is only ever stored
// sealed; the AAD binds it to the record's id, owner and upstream. What may be
// shown (which fields are set, when an OAuth token expires, who it signed in
// as upstream) is kept beside it in clear.

export const ORGANIZATION = 'organization';

export const KINDS = ['bearer', 'header', 'fields', 'oauth'] as const;
export type IdentityKind = (typeof KINDS)[number];

/** The secret, by kind (sealed as JSON). */
export const secretSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('bearer'), token: z.string().min(1) }),
  z.object({ kind: z.literal('header'), value: z.string().min(1) }),
  z.object({ kind: z.literal('fields'), values: z.record(z.string(), z.string()) }),
  z.object({
    kind: z.literal('oauth'),
    access_token: z.string().min(1),
    refresh_token: z.string().optional(),
    token_type: z.string().default('Bearer'),
    /** Epoch seconds. */
    expires_at: z.number().optional(),
    scope: z.string().optional(),
  }),
]);
export type Secret = z.infer<typeof secretSchema>;

export const identitySchema = z.object({
  id: z.string(),
  upstream: z.string(),
  owner: z.string(),
  availability: z.enum(['private', 'global']),
  label: z.string().optional(),
  kind: z.enum(KINDS),
  secret: sealedSchema,
  /** Shown, never secret: the names of the fields that are set, and the values of non-secret fields. */
  fields_set: z.array(z.string()).optional(),
  public_values: z.record(z.string(), z.string()).optional(),
  /** OAuth identities: when the access token expires, and the account at the upstream, for display. */
  expires_at: z.number().optional(),
  upstream_account: z.string().optional(),
  disabled: z.boolean(),
  created_by: z.string().optional(),
  created_at: z.number(),
  updated_at: z.number(),
});
export type Identity = z.infer<typeof identitySchema>;

export function identityContext(identity: Pick<Identity, 'id' | 'owner' | 'upstream'>): string {
  return `identities/${identity.id}\nowner=${identity.owner}\nupstream=${identity.upstream}`;
}

/** The identity kind an upstream's credential takes (none and client_credentials take none). */
export function kindFor(credential: CredentialConfig): IdentityKind | undefined {
  switch (credential.type) {
    case 'bearer':
    case 'header':
    case 'fields':
    case 'oauth':
      return credential.type;
    default:
      return undefined;
  }
}

/** What may be shown about a secret: no value of a secret field, ever. */
function shownPart(secret: Secret, credential: CredentialConfig | undefined): Pick<Identity, 'fields_set' | 'public_values' | 'expires_at'> {
  if (secret.kind === 'fields') {
    const publicNames = new Set(credential?.type === 'fields' ? credential.fields.filter((f) => !f.secret).map((f) => f.name) : []);
    const set = Object.keys(secret.values).filter((k) => secret.values[k] !== '');
    return { fields_set: set, public_values: Object.fromEntries(set.filter((k) => publicNames.has(k)).map((k) => [k, secret.values[k]!])) };
  }
  if (secret.kind === 'oauth') return { expires_at: secret.expires_at };
  return {};
}

export interface NewIdentity {
  id?: string;
  upstream: string;
  owner: string;
  availability: 'private' | 'global';
  label?: string | undefined;
  secret: Secret;
  upstream_account?: string | undefined;
  created_by?: string | undefined;
  disabled?: boolean;
}

export class Identities {
  readonly records: Collection<typeof identitySchema, 'identities'>;

  constructor(
    store: Store,
    private readonly vault: Vault,
    private readonly selections: Selections,
  ) {
    this.records = new Collection(store, 'identities', identitySchema);
  }

  /** Create or replace an identity (its secret sealed afresh). */
  async put(input: NewIdentity, credential?: CredentialConfig): Promise<Identity> {
    const now = Math.floor(Date.now() / 1000);
    const id = input.id ?? randomUUID();
    const meta = { id, upstream: input.upstream, owner: input.owner };
    const sealed = this.vault.seal(JSON.stringify(input.secret), identityContext(meta));
    const next = await this.records.update(id, (current) => ({
      ...meta,
      availability: input.availability,
      label: input.label,
      kind: input.secret.kind,
      secret: sealed,
      ...shownPart(input.secret, credential),
      upstream_account: input.upstream_account ?? current?.upstream_account,
      disabled: input.disabled ?? current?.disabled ?? false,
      created_by: current?.created_by ?? input.created_by,
      created_at: current?.created_at ?? now,
      updated_at: now,
    }));
    await this.ended(next!);
    return next!;
  }

  /** Change an identity's record (its label, availability or break-glass flag), never its secret. */
  async update(id: string, fn: (current: Identity | undefined) => Identity | undefined): Promise<Identity | undefined> {
    const next = await this.records.update(id, fn);
    if (next) await this.ended(next);
    return next;
  }

  /** Delete an identity; every selection of it ends. */
  async destroy(id: string): Promise<void> {
    await this.records.destroy(id);
    await this.selections.endOf(id);
  }

  /** A private identity serves its owner alone: the others' selections of it end (Selections.endOf). */
  private async ended(identity: Identity): Promise<void> {
    if (identity.availability !== 'global') await this.selections.endOf(identity.id, identity.owner);
  }

  /** Replace only the secret (an OAuth refresh), keeping everything else. */
  async replaceSecret(identity: Identity, secret: Secret): Promise<Identity | undefined> {
    const sealed = this.vault.seal(JSON.stringify(secret), identityContext(identity));
    return this.records.update(identity.id, (current) => current && { ...current, secret: sealed, ...shownPart(secret, undefined), fields_set: current.fields_set, public_values: current.public_values, updated_at: Math.floor(Date.now() / 1000) });
  }

  /** The plaintext secret of an identity: only the forwarding path and refresh call this. */
  reveal(identity: Identity): Secret {
    const text = this.vault.open(identity.secret, identityContext(identity));
    return secretSchema.parse(JSON.parse(text));
  }

  /** Can the vault open this identity's secret (the right key, an untampered record)? Reveals nothing. */
  readable(identity: Identity): boolean {
    try {
      this.reveal(identity);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The identities a person may see or choose: their own (the `owner`
   * index) and the organization's global ones (the `availability` index).
   */
  async visibleTo(sub: string): Promise<Identity[]> {
    const own = await this.records.findBy('owner', sub);
    const global = (await this.records.findBy('availability', 'global')).filter(([, i]) => i.owner !== sub);
    return [...own, ...global].map(([, i]) => i);
  }

  /** A person's own identities for one upstream, newest first. */
  async ownFor(sub: string, upstream: string): Promise<Identity[]> {
    return (await this.records.findBy('owner', sub))
      .map(([, i]) => i)
      .filter((i) => i.upstream === upstream)
      .sort((a, b) => b.updated_at - a.updated_at);
  }

  /** Re-seal every identity under the vault's active key. Returns how many changed. */
  async resealAll(): Promise<number> {
    let changed = 0;
    for (const [, identity] of await this.records.all()) {
      if (identity.secret.kid === this.vault.activeKeyId) continue;
      await this.records.update(identity.id, (current) => current && { ...current, secret: this.vault.reseal(current.secret, identityContext(current)) });
      changed++;
    }
    return changed;
  }

  /** Seed `identities:` from the configuration: global service accounts owned by the organization. */
  async seed(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<void> {
    const upstreams = new Map(config.upstreams.map((u) => [u.id, u]));
    for (const [i, seed] of config.identities.entries()) {
      const credential = upstreams.get(seed.upstream)!.credential;
      const read = (name: string, key: string) => {
        const value = env[name];
        if (!value) throw new Error(`identities[${i}].${key}: environment variable ${name} is not set`);
        return value;
      };
      let secret: Secret;
      if (seed.token_env) secret = { kind: 'bearer', token: read(seed.token_env, 'token_env') };
      else if (seed.value_env) secret = { kind: 'header', value: read(seed.value_env, 'value_env') };
      else if (seed.fields_env) secret = { kind: 'fields', values: Object.fromEntries(Object.entries(seed.fields_env).map(([f, name]) => [f, read(name, `fields_env.${f}`)])) };
      else continue;
      const current = await this.records.find(seed.id);
      if (current && current.owner === ORGANIZATION && current.kind === secret.kind && current.upstream === seed.upstream && current.label === seed.label) {
        // Unchanged secret: leave the record (and the store file) alone.
        try {
          if (JSON.stringify(this.reveal(current)) === JSON.stringify(secret)) continue;
        } catch {
          // sealed under a key we no longer have: write it anew below
        }
      }
      await this.put({ id: seed.id, upstream: seed.upstream, owner: ORGANIZATION, availability: seed.availability, label: seed.label, secret, created_by: 'config' }, credential);
    }
  }
}
