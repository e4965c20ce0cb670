import { z } from 'zod';
import { envName } from './common.ts';

export const storageSection = z.strictObject({
  type: z.enum(['lowdb']).default('lowdb'),
  /** Defaults to {data dir}/store.json. */
  path: z.string().optional(),
});

export const vaultSection = z.strictObject({
  /** Base64 of 32 random bytes. Without it, a key is generated into the data dir. */
  key_env: envName.optional(),
  key_file: z.string().optional(),
});
