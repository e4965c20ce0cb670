import { z } from 'zod';
import { emailDomain } from './policies.ts';
import { scope } from './common.ts';

// Who may administer what (MCP Manager's capabilities): a role is a name, the
// capabilities it grants and who its members are. The name is only a label:
// nothing is granted by being called "admin", and a principal whose token
// says role "admin" holds only what a role listing that in members.roles
// grants. Without access.roles, holders of the scope mcp:admin hold every
// capability (the default, written out in DEFAULT_ROLES).

export const CAPABILITIES = [
  /** Gateways and their assignments: /api/v1/admin/gateways. */
  'gateway_management',
  /** Upstreams (MCP servers): /api/v1/admin/upstreams. */
  'server_management',
  /** Identities other than one's own (service accounts, other people's), and connections: /api/v1/admin/identities, /admin/connections. */
  'identity_management',
  /** Accounts (deactivate, reactivate): /api/v1/admin/users. */
  'user_management',
  /** OAuth clients of the authorization server: /api/v1/admin/clients. */
  'client_management',
  /** Everyone's audit entries: /api/v1/audit. */
  'audit_log',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

const capability = z.enum(CAPABILITIES, { error: `expected a capability: ${CAPABILITIES.join(', ')}` });

const list = <T extends z.ZodType<string>>(item: T) => z.array(item).default([]);

/** Who holds a role: anyone matching one of the keys (all of `scopes`). */
export const roleMembers = z
  .strictObject({
    /** Subjects (`sub`) or emails. */
    users: list(z.string().min(1)),
    groups: list(z.string().min(1)),
    email_domains: list(emailDomain),
    /** All of them. */
    scopes: list(scope),
    /** Roles the principal's token names (auth.oauth.claims.roles_claim, builtin users' roles). */
    roles: list(z.string().min(1)),
  })
  .refine((m) => m.users.length + m.groups.length + m.email_domains.length + m.scopes.length + m.roles.length > 0, {
    message: 'a role needs members: name at least one of users, groups, email_domains, scopes, roles',
  });

export const role = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/, 'expected a role name of letters, digits, space, ".", "_" or "-" (1-64 chars)'),
  description: z.string().max(500).optional(),
  capabilities: z.array(capability).min(1, 'a role grants at least one capability'),
  members: roleMembers,
});
export type RoleInput = z.infer<typeof role>;

export const accessSection = z
  .strictObject({
    /** Omitted: the default, holders of mcp:admin hold every capability. */
    roles: z.array(role).min(1, 'leave access.roles out for the default (the scope mcp:admin holds every capability)').optional(),
  })
  .superRefine((access, ctx) => {
    const seen = new Set<string>();
    access.roles?.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['roles', i, 'name'], message: `two roles are named "${r.name}"` });
      seen.add(r.name);
    });
  });
export type AccessConfig = z.infer<typeof accessSection>;

/** The scope that holds every capability when no roles are configured. */
export const ADMIN_SCOPE = 'mcp:admin';

/** What no access.roles means. */
export const DEFAULT_ROLES: RoleInput[] = [
  { name: 'admin', capabilities: [...CAPABILITIES], members: { users: [], groups: [], email_domains: [], scopes: [ADMIN_SCOPE], roles: [] } },
];
