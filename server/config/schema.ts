import { z } from 'zod';
import { authSection } from './sections/auth.ts';
import { oauthServerSection } from './sections/oauth-server.ts';
import { outboundSection, serverSection } from './sections/server.ts';
import { storageSection, vaultSection } from './sections/storage.ts';
import { gateway, identitySeed, upstream } from './sections/upstreams.ts';

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

    const upstreams = new Map(config.upstreams.map((u) => [u.id, u]));
    const identities = new Map(config.identities.map((i) => [i.id, i]));

    config.identities.forEach((identity, i) => {
      const up = upstreams.get(identity.upstream);
      if (!up) {
        ctx.addIssue({ code: 'custom', path: ['identities', i, 'upstream'], message: `no upstream with id "${identity.upstream}"` });
        return;
      }
      const wants = up.credential.type === 'bearer' ? 'token_env' : up.credential.type === 'header' ? 'value_env' : undefined;
      if (!wants) {
        ctx.addIssue({ code: 'custom', path: ['identities', i], message: `upstream "${up.id}" takes no credential (credential.type none)` });
      } else if (identity[wants] === undefined) {
        ctx.addIssue({ code: 'custom', path: ['identities', i, wants], message: `upstream "${up.id}" has credential.type ${up.credential.type}: set ${wants}` });
      }
    });

    config.gateways.forEach((gw, g) => {
      const names = new Set<string>();
      gw.servers.forEach((server, s) => {
        const path = ['gateways', g, 'servers', s];
        const name = server.name ?? server.upstream;
        if (names.has(name)) ctx.addIssue({ code: 'custom', path: [...path, 'name'], message: `two servers of gateway "${gw.id}" are named "${name}"; give one a name:` });
        names.add(name);
        const up = upstreams.get(server.upstream);
        if (!up) {
          ctx.addIssue({ code: 'custom', path: [...path, 'upstream'], message: `no upstream with id "${server.upstream}"` });
          return;
        }
        if (server.shared_identity !== undefined) {
          // An identity not seeded here may exist in the store (created through the admin API);
          // one seeded here must be for this upstream.
          const identity = identities.get(server.shared_identity);
          if (identity && identity.upstream !== up.id) {
            ctx.addIssue({ code: 'custom', path: [...path, 'shared_identity'], message: `identity "${identity.id}" is for upstream "${identity.upstream}", not "${up.id}"` });
          }
        } else if (up.credential.type !== 'none') {
          const envKey = up.credential.type === 'bearer' ? up.credential.token_env : up.credential.value_env;
          if (envKey === undefined) {
            ctx.addIssue({
              code: 'custom',
              path: [...path, 'shared_identity'],
              message: `upstream "${up.id}" needs a credential: name a shared_identity, or set the upstream's credential.${up.credential.type === 'bearer' ? 'token_env' : 'value_env'}`,
            });
          }
        }
      });
    });
  });

export type Config = z.infer<typeof configSchema>;
export type UpstreamConfig = Config['upstreams'][number];
export type GatewayConfig = Config['gateways'][number];
export type AssignmentConfig = GatewayConfig['servers'][number];
export type IdentitySeed = Config['identities'][number];
export type BuiltinUserConfig = Config['oauth_server']['builtin']['users'][number];
