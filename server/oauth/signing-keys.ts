import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, type CryptoKey, type JWK } from 'jose';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { writeSecretFile } from '../secret-file.ts';

// The keys access tokens are signed with. One key signs; every key in the
// ring verifies and is published in the JWKS, so tokens signed before a
// rotation stay valid until they expire. Keys come from files an admin manages
// (signing.key_file + signing.previous_keys) or are generated into the data
// dir and rotated with `keygate-registry keys rotate`; with storage.type
// postgres, generated into the store instead (shared-signing-keys.ts), where
// every instance finds them.

export type SigningAlgorithm = Config['oauth_server']['signing']['algorithm'];

export interface VerificationKey {
  alg: SigningAlgorithm;
  kid: string;
  publicKey: CryptoKey;
  /** The public half as published in /oauth/jwks. */
  publicJwk: JWK;
}

export interface SigningKey extends VerificationKey {
  privateKey: CryptoKey;
}

export interface KeyRingSource {
  /** Read the ring again and `replace` it. */
  reload(): Promise<void>;
  /** Stop following changes. */
  close(): void;
  /** Milliseconds, for the reload rate (default Date.now). */
  now?: () => number;
}

/**
 * The ring in use. It changes in place (`replace`) when the ring in the store
 * changes, so every module that holds it signs and verifies with the new keys
 * at once. With a source, a kid it does not know makes it read the ring
 * again before refusing (at most once per RELOAD_INTERVAL_MS), so a token
 * signed by a key another instance just made is accepted here too.
 */
export class KeyRing {
  private current: { active: SigningKey; all: VerificationKey[]; byId: Map<string, VerificationKey> };
  private lastReload = -Infinity;
  private reloading: Promise<void> | undefined;

  constructor(
    active: SigningKey,
    all: VerificationKey[],
    /** Where the ring comes from when it can change while running (the store: shared-signing-keys.ts). */
    private readonly source?: KeyRingSource,
  ) {
    this.current = { active, all, byId: new Map(all.map((k) => [k.kid, k])) };
  }

  /** The key that signs. */
  get active(): SigningKey {
    return this.current.active;
  }

  /** Every key that verifies (the active one first). */
  get all(): VerificationKey[] {
    return this.current.all;
  }

  replace(active: SigningKey, all: VerificationKey[]): void {
    this.current = { active, all, byId: new Map(all.map((k) => [k.kid, k])) };
  }

  find(kid: string | undefined): VerificationKey | undefined {
    return kid === undefined ? undefined : this.current.byId.get(kid);
  }

  /** `find`, and when the kid is unknown, read the ring again once (rate-limited, one read at a time) and look again. */
  async lookup(kid: string | undefined): Promise<VerificationKey | undefined> {
    const known = this.find(kid);
    if (known || kid === undefined || !this.source) return known;
    if (!this.reloading) {
      const now = this.source.now?.() ?? Date.now();
      if (now - this.lastReload < RELOAD_INTERVAL_MS) return undefined;
      this.lastReload = now;
      this.reloading = this.source.reload().finally(() => (this.reloading = undefined));
    }
    await this.reloading.catch(() => undefined);
    return this.find(kid);
  }

  /** Stop following the source. */
  close(): void {
    this.source?.close();
  }

  get algorithms(): SigningAlgorithm[] {
    return [...new Set(this.all.map((k) => k.alg))];
  }

  get jwks(): { keys: JWK[] } {
    return { keys: this.all.map((k) => k.publicJwk) };
  }
}

/** How often an unknown kid may make the ring be read again from the store. */
export const RELOAD_INTERVAL_MS = 1000;

const GENERATE_OPTIONS: Record<SigningAlgorithm, Parameters<typeof generateKeyPair>[1]> = {
  ES256: { extractable: true },
  RS256: { extractable: true, modulusLength: 2048 },
  EdDSA: { extractable: true, crv: 'Ed25519' },
};

export function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = jwk;
  return pub;
}

export async function fromJwk(alg: SigningAlgorithm, privateJwk: JWK): Promise<SigningKey> {
  const publicJwk = publicPart(privateJwk);
  const kid = privateJwk.kid ?? (await calculateJwkThumbprint(publicJwk));
  const privateKey = (await importJWK({ ...privateJwk, alg }, alg)) as CryptoKey;
  const publicKey = (await importJWK({ ...publicJwk, alg }, alg)) as CryptoKey;
  return { alg, kid, privateKey, publicKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
}

async function fromFile(file: string, alg: SigningAlgorithm): Promise<SigningKey> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`oauth_server.signing: cannot read key file ${file} (${(err as NodeJS.ErrnoException).code})`);
  }
  try {
    if (text.trimStart().startsWith('{')) return await fromJwk(alg, JSON.parse(text) as JWK);
    return await fromJwk(alg, await exportJWK(await importPKCS8(text, alg, { extractable: true })));
  } catch (err) {
    throw new Error(`oauth_server.signing: ${file} is not a private ${alg} key (PKCS#8 PEM or JWK): ${(err as Error).message}`);
  }
}

export async function generate(alg: SigningAlgorithm): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, GENERATE_OPTIONS[alg]);
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(publicPart(jwk));
  jwk.alg = alg;
  return jwk;
}

const ringFileSchema = z.object({
  keys: z.array(z.object({ jwk: z.record(z.string(), z.unknown()), alg: z.enum(['ES256', 'RS256', 'EdDSA']), created_at: z.number(), retired_at: z.number().optional() })),
});
export type RingFile = z.infer<typeof ringFileSchema>;

const ringFile = (dataDir: string) => join(dataDir, 'signing-keys.json');

/** The generated keys in a data dir (signing-keys.json), if any. */
export function readRingFile(dataDir: string): RingFile | undefined {
  const file = ringFile(dataDir);
  if (!existsSync(file)) return undefined;
  const parsed = ringFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a Keygate signing key file`);
  return parsed.data;
}

/**
 * Add a newly generated key to the ring in the data dir; it signs from the
 * next start, and the previous key keeps verifying for one token lifetime.
 */
export async function rotateGeneratedKey(dataDir: string, alg: SigningAlgorithm, now = Math.floor(Date.now() / 1000)): Promise<string> {
  const ring = readRingFile(dataDir) ?? { keys: [] };
  for (const key of ring.keys) key.retired_at ??= now;
  const jwk = await generate(alg);
  ring.keys.push({ jwk: jwk as Record<string, unknown>, alg, created_at: now });
  writeSecretFile(ringFile(dataDir), JSON.stringify(ring));
  return jwk.kid!;
}

export async function loadKeyRing(
  config: Config['oauth_server'],
  dataDir: string,
  log: Logger,
  now = Math.floor(Date.now() / 1000),
): Promise<KeyRing> {
  const { signing } = config;
  if (signing.key_file) {
    const active = await fromFile(signing.key_file, signing.algorithm);
    const previous = await Promise.all(signing.previous_keys.map((k) => fromFile(k.key_file, k.algorithm)));
    return new KeyRing(active, [active, ...previous.filter((k) => k.kid !== active.kid)]);
  }
  if (!signing.generate_key) throw new Error('oauth_server.signing: set key_file, or generate_key: true for a generated key');

  let ring = readRingFile(dataDir);
  const legacy = join(dataDir, `signing-key.${signing.algorithm}.jwk.json`);
  if (!ring && existsSync(legacy)) {
    // The single-key file of earlier versions becomes the ring's first key.
    ring = { keys: [{ jwk: JSON.parse(readFileSync(legacy, 'utf8')) as Record<string, unknown>, alg: signing.algorithm, created_at: now }] };
    writeSecretFile(ringFile(dataDir), JSON.stringify(ring));
    rmSync(legacy);
  }
  const activeEntry = ring?.keys.filter((k) => k.retired_at === undefined).at(-1);
  if (!ring || !activeEntry || activeEntry.alg !== signing.algorithm) {
    const kid = await rotateGeneratedKey(dataDir, signing.algorithm, now);
    log.warn(
      `generated a ${signing.algorithm} signing key (${kid}) in ${ringFile(dataDir)}. Anyone who can read that file can mint tokens: ` +
        'for production set oauth_server.signing.key_file to a key you manage.',
    );
    ring = readRingFile(dataDir)!;
  }
  // A retired key is kept while tokens it signed may still be live.
  const live = ring.keys.filter((k) => k.retired_at === undefined || k.retired_at + config.token_lifetime > now);
  if (live.length !== ring.keys.length) writeSecretFile(ringFile(dataDir), JSON.stringify({ keys: live }));
  const keys = await Promise.all(live.map((k) => fromJwk(k.alg, k.jwk as JWK)));
  const active = keys[live.findIndex((k) => k.retired_at === undefined)]!;
  return new KeyRing(active, [active, ...keys.filter((k) => k !== active).reverse()]);
}
