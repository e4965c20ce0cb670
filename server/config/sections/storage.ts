import { z } from 'zod';
import { envName } from './common.ts';

/** The variable `storage.url_env` names unless told otherwise. */
export const DEFAULT_DATABASE_URL_ENV = 'KEYGATE_DATABASE_URL';

export const storageSection = z
  .strictObject({
    /** lowdb: one JSON file, one process (the embedded default). postgres: one database, one or more instances. */
    type: z.enum(['lowdb', 'postgres']).default('lowdb'),
    /** lowdb: the file. Defaults to {data dir}/store.json. */
    path: z.string().optional(),
    /** postgres: the environment variable holding the connection URL (with its password). Default KEYGATE_DATABASE_URL. */
    url_env: envName.optional(),
    /** postgres: connections in the pool. */
    pool_size: z.number().int().min(1).max(100).default(10),
    /** Refused: the URL carries the database password, which never lives in the file. */
    url: z.unknown().optional(),
  })
  .superRefine((storage, ctx) => {
    if (storage.url !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: `the database URL carries its password and never lives in the file: put it in an environment variable and name that in storage.url_env (default ${DEFAULT_DATABASE_URL_ENV})` });
    }
    if (storage.type !== 'postgres' && storage.url_env !== undefined) ctx.addIssue({ code: 'custom', path: ['url_env'], message: 'url_env is for storage.type: postgres' });
    if (storage.type !== 'lowdb' && storage.path !== undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'path is for storage.type: lowdb' });
  });

export const vaultSection = z.strictObject({
  /** Base64 of 32 random bytes: the key new secrets are sealed with. Without it, a key is generated into the data dir. Required with storage.type: postgres. */
  key_env: envName.optional(),
  /** With key_env: earlier keys, still able to open what they sealed (`keygate-registry vault rotate` re-seals it). */
  previous_key_envs: z.array(envName).default([]),
  key_file: z.string().optional(),
});
