import { z } from 'zod';
import type { Config } from '../../config/schema.ts';
import type { GatewayInput, UpstreamInput } from '../../config/sections/upstreams.ts';
import type { AuditSink } from '../../audit/audit.ts';
import type { ConnectionLog } from '../../audit/connections.ts';
import type { BreakGlass, Switch } from '../../catalog/access.ts';
import type { CatalogHolder } from '../../catalog/catalog.ts';
import type { Logger } from '../../log.ts';
import type { Accounts } from '../../oauth/accounts.ts';
import type { ClientRegistry } from '../../oauth/clients.ts';
import type { Grants } from '../../oauth/grants.ts';
import type { ResourceSpace } from '../../oauth/resource.ts';
import type { Identities } from '../../vault/identities.ts';
import { epoch } from '../http.ts';

// What the admin routes work on, and the pieces they share: where each
// upstream and gateway comes from (the configuration file, read-only here, or
// the store), and the break-glass switches with who flipped them, when and why.

export interface AdminDeps {
  config: Config;
  catalog: CatalogHolder;
  identities: Identities;
  accounts: Accounts;
  breakGlass: BreakGlass;
  connections: ConnectionLog;
  /** Sign a person out of every browser (offboarding). */
  endBrowserSessions: (sub: string) => Promise<number>;
  resources: ResourceSpace;
  /** /admin/clients: the OAuth clients, and their refresh tokens (ended when a client is deleted). */
  clients: ClientRegistry;
  grants: Grants;
  /** Where each change made here is recorded (changes.ts). */
  audit: AuditSink;
  log: Logger;
}

export type Source = 'config' | 'api';
export type StoredUpstream = UpstreamInput & { created_at?: number | undefined; updated_at?: number | undefined };
export type StoredGateway = GatewayInput & { created_at?: number | undefined; updated_at?: number | undefined };

/** Every upstream as written (config first; a stored one with a config id is shadowed, as in the catalog). */
export async function upstreamInputs(deps: AdminDeps): Promise<{ input: StoredUpstream; source: Source }[]> {
  const config = deps.config.upstreams.map((input) => ({ input: input as StoredUpstream, source: 'config' as const }));
  const stored = (await deps.catalog.upstreamRecords.all()).map(([, u]) => u).filter((u) => !deps.config.upstreams.some((c) => c.id === u.id)).map((input) => ({ input, source: 'api' as const }));
  return [...config, ...stored];
}

export async function gatewayInputs(deps: AdminDeps): Promise<{ input: StoredGateway; source: Source }[]> {
  const config = deps.config.gateways.map((input) => ({ input: input as StoredGateway, source: 'config' as const }));
  const stored = (await deps.catalog.gatewayRecords.all()).map(([, g]) => g).filter((g) => !deps.config.gateways.some((c) => c.id === g.id)).map((input) => ({ input, source: 'api' as const }));
  return [...config, ...stored];
}

/** The optional body of `POST .../disable` and `.../enable`. */
export const switchBody = z.strictObject({
  reason: z.string().trim().min(1).max(500).optional(),
});

/** Flip a switch (`gateway:team`, `upstream:linear`, `identity:…`, `user:…`, `connection:…`): recorded, never deleted. */
export async function flip(deps: AdminDeps, id: string, disabled: boolean, by: string, reason: string | undefined): Promise<Switch> {
  const next: Switch = { disabled, by, at: epoch(), ...(reason !== undefined && { reason }) };
  await deps.catalog.switches.upsert(id, next);
  return next;
}

export function switchView(s: Switch | undefined): { disabled: boolean; by?: string; at?: number; reason?: string } | undefined {
  return s && { disabled: s.disabled, ...(s.by !== undefined && { by: s.by }), at: s.at, ...(s.reason !== undefined && { reason: s.reason }) };
}

export const noStore = { 'Cache-Control': 'no-store' };
