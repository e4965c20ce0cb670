import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK } from 'jose';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { Collection, type Store } from '../store/index.ts';
import { sealedSchema, type Vault } from '../vault/vault.ts';
import { fromJwk, generate, KeyRing, publicPart, type RingFile, type SigningAlgorithm, type SigningKey, type VerificationKey } from './signing-keys.ts';

// Generated signing keys shared by every instance on one database
// (storage.type: postgres). The ring is one record (kind signing_keys, id
// "ring"): each key's public half, for the JWKS, and its private JWK sealed
// with the vault (bound to its kid), so the database holds no private key in
// clear. Making the first key and rotating are each one atomic update of that
// record, so instances starting together on an empty database agree on one
// key. Every instance follows the record (onChange): a rotation by
// `keygate-registry keys rotate` signs everywhere within the bound of
// docs/deployment.md, and a kid an instance does not know yet makes it read
// the ring again (KeyRing.lookup).

const storedKeySchema = z.object({
  kid: z.string(),
  alg: z.enum(['ES256', 'RS256', 'EdDSA']),
  public_jwk: z.record(z.string(), z.unknown()),
  /** The private JWK, sealed (vault.ts) with the context `signing key {kid}`. */
  private_jwk: sealedSchema,
  created_at: z.number(),
  /** When another key took over signing; kept while tokens it signed may be live. */
  retired_at: z.number().optional(),
});
const ringSchema = z.object({ keys: z.array(storedKeySchema) });
type StoredKey = z.infer<typeof storedKeySchema>;
type StoredRing = z.infer<typeof ringSchema>;

const RING_ID = 'ring';
const sealContext = (kid: string) => `signing key ${kid}`;
const epoch = () => Math.floor(Date.now() / 1000);
const activeOf = (ring: StoredRing | undefined) => ring?.keys.findLast((k) => k.retired_at === undefined);

export class SharedSigningKeys {
  private readonly ring: Collection<typeof ringSchema, 'signing_keys'>;

  constructor(
    store: Store,
    private readonly vault: Vault,
    private readonly config: Config['oauth_server'],
  ) {
    this.ring = new Collection(store, 'signing_keys', ringSchema);
  }

  private get algorithm(): SigningAlgorithm {
    return this.config.signing.algorithm;
  }

  private async sealNew(now: number): Promise<StoredKey> {
    const jwk = await generate(this.algorithm);
    const kid = jwk.kid!;
    return { kid, alg: this.algorithm, public_jwk: publicPart(jwk) as Record<string, unknown>, private_jwk: this.vault.seal(JSON.stringify(jwk), sealContext(kid)), created_at: now };
  }

  /** `current` with `key` active: the others retired, and those retired over a token lifetime ago dropped. */
  private rotated(current: StoredRing | undefined, key: StoredKey, now: number): StoredRing {
    const live = (current?.keys ?? []).filter((k) => k.retired_at === undefined || k.retired_at + this.config.token_lifetime > now);
    return { keys: [...live.map((k) => ({ ...k, retired_at: k.retired_at ?? now })), key] };
  }

  read(): Promise<StoredRing | undefined> {
    return this.ring.find(RING_ID);
  }

  /** A new key signs from now on, on every instance (`keygate-registry keys rotate`); returns its kid. */
  async rotate(now = epoch()): Promise<string> {
    const key = await this.sealNew(now);
    await this.ring.update(RING_ID, (current) => this.rotated(current, key, now), null);
    return key.kid;
  }

  /** The ring, made first when there is none (or its active key is not of the configured algorithm); `generated` names a key made here. */
  async ensure(now = epoch()): Promise<{ ring: StoredRing; generated?: string }> {
    const found = await this.read();
    if (found && activeOf(found)?.alg === this.algorithm) return { ring: found };
    const key = await this.sealNew(now);
    let generated: string | undefined;
    // Decided inside the atomic update: of instances starting together, the first writes the key and the others take it.
    const ring = await this.ring.update(
      RING_ID,
      (current) => {
        if (current && activeOf(current)?.alg === this.algorithm) return current;
        generated = key.kid;
        return this.rotated(current, key, now);
      },
      null,
    );
    return { ring: ring!, generated };
  }

  /**
   * Take the generated keys of a data dir (`migrate --from lowdb`), sealed, as
   * the ring, unless the store holds one already; returns how many were taken.
   * Tokens the lowdb registry signed stay valid on PostgreSQL.
   */
  async adopt(file: RingFile): Promise<number> {
    const keys: StoredKey[] = [];
    for (const k of file.keys) {
      const jwk = k.jwk as JWK;
      const kid = jwk.kid ?? (await calculateJwkThumbprint(publicPart(jwk)));
      keys.push({ kid, alg: k.alg, public_jwk: publicPart(jwk) as Record<string, unknown>, private_jwk: this.vault.seal(JSON.stringify({ ...jwk, kid }), sealContext(kid)), created_at: k.created_at, ...(k.retired_at !== undefined && { retired_at: k.retired_at }) });
    }
    let taken = 0;
    await this.ring.update(
      RING_ID,
      (current) => {
        if (current) return current;
        taken = keys.length;
        return { keys };
      },
      null,
    );
    return taken;
  }

  /** Seal every private key under the vault's active key (`keygate-registry vault rotate`). */
  async reseal(): Promise<number> {
    let count = 0;
    await this.ring.update(RING_ID, (current) => {
      if (!current) return undefined;
      count = current.keys.length;
      return { keys: current.keys.map((k) => ({ ...k, private_jwk: this.vault.reseal(k.private_jwk, sealContext(k.kid)) })) };
    });
    return count;
  }

  /** The keys of a stored ring; keys already imported (by kid) are reused. */
  async open(ring: StoredRing, known: ReadonlyMap<string, VerificationKey>, now = epoch()): Promise<{ active: SigningKey; all: VerificationKey[] }> {
    const entry = activeOf(ring);
    if (!entry) throw new Error('the signing key ring in the store has no active key: run keygate-registry keys rotate');
    const cached = known.get(entry.kid);
    let active: SigningKey;
    if (cached && 'privateKey' in cached) {
      active = cached as SigningKey;
    } else {
      let privateJwk: JWK;
      try {
        privateJwk = JSON.parse(this.vault.open(entry.private_jwk, sealContext(entry.kid))) as JWK;
      } catch {
        throw new Error('the signing keys in the store do not open with this vault key: every instance needs the same vault.key_env (and previous_key_envs)');
      }
      active = await fromJwk(entry.alg, privateJwk);
    }
    const others = ring.keys.filter((k) => k !== entry && k.retired_at !== undefined && k.retired_at + this.config.token_lifetime > now).reverse();
    const all: VerificationKey[] = [active];
    for (const k of others) {
      all.push(
        known.get(k.kid) ?? {
          alg: k.alg,
          kid: k.kid,
          publicKey: (await importJWK({ ...k.public_jwk, alg: k.alg }, k.alg)) as CryptoKey,
          publicJwk: { ...(k.public_jwk as JWK), kid: k.kid, alg: k.alg, use: 'sig' },
        },
      );
    }
    return { active, all };
  }
}

/**
 * The ring of generated keys in the store, made by the first instance that
 * starts, followed as it changes: another instance's rotation is seen through
 * onChange, and an unknown kid makes the ring be read again (KeyRing.lookup).
 */
export async function loadSharedKeyRing(config: Config['oauth_server'], store: Store, vault: Vault, log: Logger): Promise<KeyRing> {
  if (!config.signing.generate_key) throw new Error('oauth_server.signing: set key_file, or generate_key: true for a generated key');
  const shared = new SharedSigningKeys(store, vault, config);
  const { ring, generated } = await shared.ensure();
  if (generated) log.warn(`generated a ${config.signing.algorithm} signing key (${generated}) in the store, sealed with the vault key; every instance on this database signs with it`);
  const first = await shared.open(ring, new Map());

  // One read at a time, in order, so an older ring never replaces a newer one.
  let queue = Promise.resolve();
  const reload = () =>
    (queue = queue.then(async () => {
      const stored = await shared.read();
      if (!stored) return;
      const { active, all } = await shared.open(stored, new Map(keys.all.map((k) => [k.kid, k])));
      if (active.kid !== keys.active.kid) log.info('signing with key %s (the ring in the store changed)', active.kid);
      keys.replace(active, all);
    }).catch((err: unknown) => log.warn('could not read the signing keys from the store: %s', (err as Error).message)));
  const stop = store.onChange('signing_keys', () => void reload());
  const keys: KeyRing = new KeyRing(first.active, first.all, { reload, close: stop });
  return keys;
}
