import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { writeSecretFile } from '../secret-file.ts';

// Secrets at rest: AES-256-GCM with a fresh 96-bit nonce per encryption, and
// additional authenticated data that binds a ciphertext to the record it
// belongs to (and the key id), so a ciphertext copied into another record
// fails to decrypt. The key id is stored beside the ciphertext.

export const sealedSchema = z.strictObject({
  kid: z.string(),
  iv: z.string(),
  /** Ciphertext followed by the 16-byte GCM tag, base64url. */
  ct: z.string(),
});
export type Sealed = z.infer<typeof sealedSchema>;

export class VaultError extends Error {
  readonly code = 'ERR_VAULT';
}

const keyFileSchema = z.strictObject({
  active: z.string(),
  keys: z.record(z.string(), z.string()),
});

function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 12);
}

function decodeKey(text: string, where: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) throw new VaultError(`${where}: expected base64 of 32 random bytes (openssl rand -base64 32)`);
  return key;
}

export class Vault {
  private constructor(
    private readonly keys: Map<string, Buffer>,
    private readonly activeKid: string,
  ) {}

  static fromKeys(keys: Buffer[]): Vault {
    const first = keys[0];
    if (!first) throw new VaultError('the vault needs a key');
    return new Vault(new Map(keys.map((k) => [keyId(k), k])), keyId(first));
  }

  /**
   * vault.key_env or vault.key_file when set; otherwise a key generated once
   * into the data dir, said loudly.
   */
  static load(config: Config['vault'], dataDir: string, log: Logger, env: NodeJS.ProcessEnv = process.env): Vault {
    if (config.key_env) {
      const keys = [config.key_env, ...config.previous_key_envs].map((name, i) => {
        const value = env[name];
        const where = i === 0 ? 'vault.key_env' : `vault.previous_key_envs[${i - 1}]`;
        if (!value) throw new VaultError(`${where}: environment variable ${name} is not set`);
        return decodeKey(value, `${where} (${name})`);
      });
      return Vault.fromKeys(keys);
    }
    const file = config.key_file ?? join(dataDir, 'vault-keys.json');
    if (existsSync(file)) {
      const parsed = keyFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (!parsed.success) throw new VaultError(`${file}: not a Keygate vault key file`);
      const keys = new Map(Object.entries(parsed.data.keys).map(([kid, k]) => [kid, decodeKey(k, file)]));
      if (!keys.has(parsed.data.active)) throw new VaultError(`${file}: the active key ${parsed.data.active} is missing`);
      return new Vault(keys, parsed.data.active);
    }
    if (config.key_file) throw new VaultError(`vault.key_file: ${file} does not exist`);
    const key = randomBytes(32);
    const kid = keyId(key);
    writeSecretFile(file, JSON.stringify({ active: kid, keys: { [kid]: key.toString('base64') } }));
    log.warn(
      `generated a development vault key in ${file}. It decrypts every stored credential: ` +
        'for production set vault.key_env (base64 of 32 random bytes) from your secret manager.',
    );
    return new Vault(new Map([[kid, key]]), kid);
  }

  get activeKeyId(): string {
    return this.activeKid;
  }

  /**
   * `vault rotate` for a generated key file: a new active key, the old ones
   * kept so what they sealed still opens until it is re-sealed. Returns the
   * vault with the new key. (With vault.key_env the admin supplies the new key
   * and lists the old one under previous_key_envs.)
   */
  static rotateKeyFile(config: Config['vault'], dataDir: string): Vault {
    if (config.key_env) throw new VaultError('vault.key_env is set: put the new key in key_env and the old one in previous_key_envs, then run vault rotate to re-seal');
    const file = config.key_file ?? join(dataDir, 'vault-keys.json');
    const current = existsSync(file) ? keyFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))) : { active: '', keys: {} };
    const key = randomBytes(32);
    const kid = keyId(key);
    const next = { active: kid, keys: { ...current.keys, [kid]: key.toString('base64') } };
    writeSecretFile(file, JSON.stringify(next));
    return new Vault(new Map(Object.entries(next.keys).map(([k, v]) => [k, Buffer.from(v, 'base64')])), kid);
  }

  /** Re-seal under the active key (same context); a no-op when it already is. */
  reseal(sealed: Sealed, context: string): Sealed {
    return sealed.kid === this.activeKid ? sealed : this.seal(this.open(sealed, context), context);
  }

  /** A key for another purpose (HKDF from the active vault key), so no second secret needs managing. */
  derive(purpose: string, length = 32): Buffer {
    return Buffer.from(hkdfSync('sha256', this.keys.get(this.activeKid)!, Buffer.alloc(0), `keygate ${purpose}`, length));
  }

  seal(plaintext: string, context: string): Sealed {
    const key = this.keys.get(this.activeKid)!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(`${this.activeKid}\n${context}`));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return { kid: this.activeKid, iv: iv.toString('base64url'), ct: ct.toString('base64url') };
  }

  open(sealed: Sealed, context: string): string {
    const key = this.keys.get(sealed.kid);
    if (!key) throw new VaultError(`no vault key with id ${sealed.kid}`);
    const data = Buffer.from(sealed.ct, 'base64url');
    if (data.length < 16) throw new VaultError('ciphertext too short');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'));
    decipher.setAAD(Buffer.from(`${sealed.kid}\n${context}`));
    decipher.setAuthTag(data.subarray(data.length - 16));
    try {
      return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      // Never echo the ciphertext or the context: they may be correlatable.
      throw new VaultError('a stored credential failed to decrypt (wrong key, or the record was tampered with)');
    }
  }
}
