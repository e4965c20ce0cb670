import { z } from 'zod';
import type { Config, UpstreamConfig } from '../config/schema.ts';
import { Collection, type Store } from '../store/index.ts';
import { sealedSchema, type Vault } from './vault.ts';

// An identity: a set of credentials scoped to one upstream, owned by a user or
// (for service accounts) by the organization. The secret is only ever stored
// sealed; the AAD binds it to this record's id, owner and upstream.

export const ORGANIZATION = 'organization';

export const identitySchema = z.object({
  id: z.string(),
  upstream: z.string(),
  owner: z.string(),
  availability: z.enum(['private', 'global']),
  label: z.string().optional(),
  kind: z.enum(['bearer', 'header']),
  secret: sealedSchema,
  disabled: z.boolean(),
  created_at: z.number(),
  updated_at: z.number(),
});
export type Identity = z.infer<typeof identitySchema>;

export function identityContext(identity: Pick<Identity, 'id' | 'owner' | 'upstream'>): string {
  return `identities/${identity.id}\nowner=${identity.owner}\nupstream=${identity.upstream}`;
}

export class Identities {
  readonly records: Collection<typeof identitySchema>;

  constructor(
    store: Store,
    private readonly vault: Vault,
  ) {
    this.records = new Collection(store, 'identities', identitySchema);
  }

  /** Create or replace an identity's secret (and metadata). */
  async put(input: Omit<Identity, 'secret' | 'created_at' | 'updated_at' | 'disabled'> & { secret: string; disabled?: boolean }): Promise<Identity> {
    const now = Math.floor(Date.now() / 1000);
    const { secret, ...meta } = input;
    const sealed = this.vault.seal(secret, identityContext(meta));
    const next = await this.records.update(input.id, (current) => ({
      ...meta,
      secret: sealed,
      disabled: input.disabled ?? current?.disabled ?? false,
      created_at: current?.created_at ?? now,
      updated_at: now,
    }));
    return next!;
  }

  /** The plaintext secret of an identity: only the forwarding path calls this. */
  reveal(identity: Identity): string {
    return this.vault.open(identity.secret, identityContext(identity));
  }

  /** Re-seal every identity under the vault's active key. Returns how many changed. */
  async resealAll(): Promise<number> {
    let changed = 0;
    for (const identity of await this.records.list()) {
      if (identity.secret.kid === this.vault.activeKeyId) continue;
      await this.records.update(identity.id, (current) => current && { ...current, secret: this.vault.reseal(current.secret, identityContext(current)) });
      changed++;
    }
    return changed;
  }

  /** Seed `identities:` from the configuration: global service accounts owned by the organization. */
  async seed(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<void> {
    const upstreams = new Map<string, UpstreamConfig>(config.upstreams.map((u) => [u.id, u]));
    for (const [i, seed] of config.identities.entries()) {
      const envName = (seed.token_env ?? seed.value_env)!;
      const secret = env[envName];
      if (!secret) throw new Error(`identities[${i}].${seed.token_env ? 'token_env' : 'value_env'}: environment variable ${envName} is not set`);
      const kind = upstreams.get(seed.upstream)!.credential.type === 'header' ? 'header' : 'bearer';
      const current = await this.records.find(seed.id);
      if (current && current.owner === ORGANIZATION && current.kind === kind && current.upstream === seed.upstream && current.label === seed.label) {
        // Unchanged secret: leave the record (and the store file) alone.
        try {
          if (this.reveal(current) === secret) continue;
        } catch {
          // sealed under a key we no longer have: write it anew below
        }
      }
      await this.put({ id: seed.id, upstream: seed.upstream, owner: ORGANIZATION, availability: seed.availability, label: seed.label, kind, secret });
    }
  }
}
