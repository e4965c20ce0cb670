import { resolve } from 'node:path';
import { type AuditSink, observeAudit } from '../audit/audit.ts';
import { ConnectionLog } from '../audit/connections.ts';
import { FileAudit } from '../audit/file-audit.ts';
import type { Config } from '../config/schema.ts';
import { BreakGlass } from '../catalog/access.ts';
import type { CatalogHolder } from '../catalog/catalog.ts';
import type { Logger } from '../log.ts';
import type { Accounts } from '../oauth/accounts.ts';
import type { BrowserSessions } from '../oauth/browser-session.ts';
import type { ClientRegistry } from '../oauth/clients.ts';
import type { Grants } from '../oauth/grants.ts';
import type { ResourceSpace } from '../oauth/resource.ts';
import type { Store } from '../store/index.ts';
import type { Identities } from '../vault/identities.ts';
import type { AdminDeps } from './admin/index.ts';

// Control and record, wired once: the audit log (JSONL day files by default,
// the database's keygate_audit table with storage.type: postgres),
// the connections learnt from it, the break-glass checks the request path
// calls, and what the admin and audit APIs need.

export interface ControlDeps {
  config: Config;
  store: Store;
  dataDir: string;
  log: Logger;
  /** A sink of the caller's (tests pass a MemoryAudit); default: {data dir}/audit/*.jsonl. */
  audit?: AuditSink | undefined;
  accounts: Accounts;
  identities: Identities;
  catalog: CatalogHolder;
  resources: ResourceSpace;
  sessions: BrowserSessions;
  clients: ClientRegistry;
  grants: Grants;
}

export interface Control {
  /** The audit log (Registry.audit). */
  audit: AuditSink;
  /** What the MCP endpoints record into: the log, with connections learnt on the way. */
  mcpAudit: AuditSink;
  access: BreakGlass;
  /** For apiV1Router's `control`. */
  api: { admin: AdminDeps; audit: AuditSink; access: BreakGlass };
  close(): Promise<void>;
}

export async function createControl(deps: ControlDeps): Promise<Control> {
  const { config, store, log, catalog } = deps;
  // A store shared by several instances (PostgreSQL) keeps their one log; otherwise JSONL day files.
  let audit = deps.audit ?? store.auditLog?.({ log, retentionDays: config.audit.retention_days });
  if (!audit) {
    const file = new FileAudit({ dir: resolve(deps.dataDir, config.audit.dir ?? 'audit'), retentionDays: config.audit.retention_days, log });
    await file.prune();
    audit = file;
  }
  const connections = new ConnectionLog(store, { knownGateway: (id) => catalog.current.gateways.has(id), log });
  await connections.load();
  const access = new BreakGlass({ accounts: deps.accounts, builtinUsernames: config.oauth_server.builtin.users.map((u) => u.username), switches: catalog.switches });
  await access.load();
  const admin: AdminDeps = {
    config,
    catalog,
    identities: deps.identities,
    accounts: deps.accounts,
    breakGlass: access,
    connections,
    endBrowserSessions: (sub) => deps.sessions.endAllFor(sub),
    resources: deps.resources,
    clients: deps.clients,
    grants: deps.grants,
    audit,
    log,
  };
  return {
    audit,
    mcpAudit: observeAudit(audit, (entry) => connections.observe(entry)),
    access,
    api: { admin, audit, access },
    async close() {
      access.close();
      await connections.close();
      await audit.close();
    },
  };
}
