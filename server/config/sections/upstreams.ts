import { z } from 'zod';
import { duration } from '../duration.ts';
import { envName, httpUrl, id } from './common.ts';

// How Keygate authenticates to an upstream. The *_env values are the
// upstream's own shared credential, used by a shared assignment that names no
// shared_identity.
const credentialNone = z.strictObject({ type: z.literal('none') });
const credentialBearer = z.strictObject({
  type: z.literal('bearer'),
  token_env: envName.optional(),
});
const credentialHeader = z.strictObject({
  type: z.literal('header'),
  name: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name'),
  value_env: envName.optional(),
});
const credential = z.discriminatedUnion('type', [credentialNone, credentialBearer, credentialHeader], {
  error: 'expected credential.type to be one of none, bearer, header',
});

export const upstream = z.strictObject({
  id,
  name: z.string().optional(),
  url: httpUrl,
  credential: credential.default({ type: 'none' }),
  /** How long a silent upstream is waited for before the call fails. */
  timeout: duration.default(60),
});

export const identitySeed = z
  .strictObject({
    id,
    upstream: id,
    label: z.string().optional(),
    /** Seeded identities are service accounts: global, owned by the organization. */
    availability: z.enum(['global']).default('global'),
    token_env: envName.optional(),
    value_env: envName.optional(),
  })
  .refine((i) => (i.token_env === undefined) !== (i.value_env === undefined), {
    message: 'set exactly one of token_env (bearer upstreams) or value_env (header upstreams)',
  });

const assignment = z.strictObject({
  upstream: id,
  /** Path segment under the gateway: /mcp/{gateway}/{name}. Defaults to the upstream id. */
  name: id.optional(),
  identity: z.enum(['shared'], { error: 'expected identity: shared (per_user arrives with per-user identities)' }),
  shared_identity: id.optional(),
});

export const gateway = z.strictObject({
  id,
  name: z.string().optional(),
  description: z.string().optional(),
  visibility: z.enum(['public', 'private']).default('private'),
  servers: z.array(assignment).min(1, 'a gateway needs at least one server'),
});
