import { z } from 'zod';
import { accessSection } from './sections/access.ts';
import { auditSection } from './sections/audit.ts';
import { authSection } from './sections/auth.ts';
import { oauthServerSection } from './sections/oauth-server.ts';
import { outboundSection, serverSection } from './sections/server.ts';
import { storageSection, vaultSection } from './sections/storage.ts';
import { checkReferences, gateway, identitySeed, upstream } from './sections/upstreams.ts';

// The registry's configuration. Every object is strict: an unknown key is an
// error that names it, never silently ignored. Defaults are written next to
// the key they belong to (in sections/), so the schema documents itself.

export const configSchema = z
  .strictObject({
    server: serverSection.default(() => serverSection.parse({})),
    auth: authSection.default({ type: 'none' }),
    oauth_server: oauthServerSection.default(() => oauthServerSection.parse({})),
    storage: storageSection.default(() => storageSection.parse({})),
    outbound: outboundSection.default(() => outboundSection.parse({})),
    vault: vaultSection.default(() => vaultSection.parse({})),
    upstreams: z.array(upstream).default([]),
    identities: z.array(identitySeed).default([]),
    gateways: z.array(gateway).default([]),
    audit: auditSection.default(() => auditSection.parse({})),
    /** Roles and the admin capabilities they grant; without it, mcp:admin holds every capability. */
    access: accessSection.default({}),
  })
  .superRefine((config, ctx) => {
    const unique = (items: { id: string }[], key: string) => {
      const seen = new Set<string>();
      items.forEach((item, i) => {
        if (seen.has(item.id)) ctx.addIssue({ code: 'custom', path: [key, i, 'id'], message: `duplicate id "${item.id}"` });
        seen.add(item.id);
      });
    };
    unique(config.upstreams, 'upstreams');
    unique(config.identities, 'identities');
    unique(config.gateways, 'gateways');

    for (const issue of checkReferences(config.upstreams, config.identities, config.gateways)) ctx.addIssue({ code: 'custom', ...issue });

    // Every instance on one database must open what the others sealed: a key generated into one data dir would be that instance's alone.
    if (config.storage.type === 'postgres' && !config.vault.key_env) {
      ctx.addIssue({ code: 'custom', path: ['vault', 'key_env'], message: 'required with storage.type: postgres: every instance must open the credentials the others sealed, so the vault key comes from the environment (base64 of 32 random bytes), never a key file generated into one data dir' });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type UpstreamConfig = Config['upstreams'][number];
export type GatewayConfig = Config['gateways'][number];
export type AssignmentConfig = GatewayConfig['servers'][number];
export type IdentitySeed = Config['identities'][number];
export type BuiltinUserConfig = Config['oauth_server']['builtin']['users'][number];
