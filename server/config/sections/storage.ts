import { z } from 'zod';
import { envName } from './common.ts';

export const storageSection = z.strictObject({
  type: z.enum(['lowdb']).default('lowdb'),
  /** Defaults to {data dir}/store.json. */
  path: z.string().optional(),
});

export const vaultSection = z.strictObject({
  /** Base64 of 32 random bytes: the key new secrets are sealed with. Without it, a key is generated into the data dir. */
  key_env: envName.optional(),
  /** With key_env: earlier keys, still able to open what they sealed (`keygate-registry vault rotate` re-seals it). */
  previous_key_envs: z.array(envName).default([]),
  key_file: z.string().optional(),
});
