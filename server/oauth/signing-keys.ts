import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, type CryptoKey, type JWK } from 'jose';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { writeSecretFile } from '../secret-file.ts';

export type SigningAlgorithm = Config['oauth_server']['signing']['algorithm'];

export interface SigningKey {
  alg: SigningAlgorithm;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The public half as published in /oauth/jwks. */
  publicJwk: JWK;
}

const GENERATE_OPTIONS: Record<SigningAlgorithm, Parameters<typeof generateKeyPair>[1]> = {
  ES256: { extractable: true },
  RS256: { extractable: true, modulusLength: 2048 },
  EdDSA: { extractable: true, crv: 'Ed25519' },
};

function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = jwk;
  return pub;
}

async function fromJwk(alg: SigningAlgorithm, privateJwk: JWK): Promise<SigningKey> {
  const publicJwk = publicPart(privateJwk);
  const kid = privateJwk.kid ?? (await calculateJwkThumbprint(publicJwk));
  const privateKey = (await importJWK({ ...privateJwk, alg }, alg)) as CryptoKey;
  const publicKey = (await importJWK({ ...publicJwk, alg }, alg)) as CryptoKey;
  return { alg, kid, privateKey, publicKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
}

/**
 * The key the authorization server signs access tokens with: from
 * signing.key_file (PKCS#8 PEM or a private JWK), or generated once into the
 * data dir when signing.generate_key is on (a development convenience, said
 * loudly at start).
 */
export async function loadSigningKey(signing: Config['oauth_server']['signing'], dataDir: string, log: Logger): Promise<SigningKey> {
  const { algorithm: alg } = signing;
  if (signing.key_file) {
    const text = readFileSync(signing.key_file, 'utf8');
    if (text.trimStart().startsWith('{')) return fromJwk(alg, JSON.parse(text) as JWK);
    const privateKey = await importPKCS8(text, alg, { extractable: true });
    return fromJwk(alg, await exportJWK(privateKey));
  }
  if (!signing.generate_key) {
    throw new Error('oauth_server.signing: set key_file, or generate_key: true for a development key');
  }
  const file = join(dataDir, `signing-key.${alg}.jwk.json`);
  if (existsSync(file)) return fromJwk(alg, JSON.parse(readFileSync(file, 'utf8')) as JWK);
  const { privateKey } = await generateKeyPair(alg === 'EdDSA' ? 'EdDSA' : alg, GENERATE_OPTIONS[alg]);
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(publicPart(jwk));
  writeSecretFile(file, JSON.stringify(jwk));
  log.warn(
    `generated a development ${alg} signing key in ${file}. Anyone who can read that file can mint tokens: ` +
      'for production set oauth_server.signing.key_file to a key you manage.',
  );
  return fromJwk(alg, jwk);
}
