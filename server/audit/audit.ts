// The audit log holds two kinds of record: each MCP request (who, through
// which gateway and upstream, with which identity, what, how it ended and how
// long it took) and each change made through the admin API (who, via what,
// which action on which target, how it ended, the target before and after).
// Never a secret, never a token, never a tool's arguments.

/** An MCP request. Records written before kinds existed have no `kind`: they are all MCP requests. */
export interface AuditEntry {
  kind?: 'mcp' | undefined;
  /** ISO 8601. */
  time: string;
  request_id: string;
  subject: string | undefined;
  provider: string | undefined;
  client_id: string | undefined;
  /** RFC 8693 `act`: the agent that acted for the subject (absent when the subject called itself). */
  actor?: string | undefined;
  /** `client`: the subject is an OAuth client acting as itself (client credentials); absent for people. */
  subject_type?: 'client' | undefined;
  gateway: string;
  server: string | undefined;
  upstream: string | undefined;
  identity: string | undefined;
  /** HTTP method of the request (POST, GET, DELETE). */
  http_method: string;
  /** JSON-RPC method where known (Mcp-Method header, or parsed by the merged endpoint). */
  method: string | undefined;
  /** tools/call: the tool; prompts/get: the prompt; resources/read: the URI. */
  name: string | undefined;
  /** ok, or the failing step's reason (unknown_gateway, identity_missing, upstream_unreachable...). */
  outcome: string;
  /** policy_denied: the rule of the server's `policies` that decided (`policies[2]`). */
  rule?: string | undefined;
  status: number;
  latency_ms: number;
}

/** What an admin change was made to: `{type: "gateway", id: "eng"}` (the id is absent when unknown, e.g. a refused create). */
export const ADMIN_TARGETS = ['upstream', 'gateway', 'identity', 'user', 'client', 'connection'] as const;

export interface AdminTarget {
  type: (typeof ADMIN_TARGETS)[number];
  id?: string | undefined;
}

/** A change made (or attempted) through /api/v1/admin, and so through the CLI. */
export interface AdminChange {
  kind: 'admin';
  /** ISO 8601: when the answer was sent. */
  time: string;
  request_id: string;
  /** The admin (`sub`), the validator that vouched for them, and the OAuth client their token was issued to. */
  subject: string;
  provider: string;
  client_id: string | undefined;
  email?: string | undefined;
  /** RFC 8693 `act`: the agent that acted for the admin. */
  actor?: string | undefined;
  subject_type?: 'client' | undefined;
  /** `cli`: keygate-registry admin (its User-Agent); `console`: the web console at /admin; `api`: anything else. Informational: a caller chooses its User-Agent. */
  via: 'api' | 'cli' | 'console';
  /** `gateway.update`, `user.deactivate`, `client.rotate_secret`... */
  action: string;
  target: AdminTarget;
  /** ok; denied (401/403: the caller may not do this); failed (any other refusal). */
  outcome: 'ok' | 'denied' | 'failed';
  status: number;
  /** The API's error code when the outcome is not ok (insufficient_scope, conflict...). */
  error?: string | undefined;
  /** Break-glass: the reason given. */
  reason?: string | undefined;
  /** The target as GET answers it, before and after (null: it did not exist / no longer does). Only when the change succeeded. */
  before?: unknown;
  after?: unknown;
}

export type AuditRecord = AuditEntry | AdminChange;

/** Where audit records go: appended, batched, off the request's critical path. */
export interface AuditSink {
  record(entry: AuditRecord): void;
  close(): Promise<void>;
}

/** Which entries a query wants. Times are epoch milliseconds, both ends inclusive. */
export interface AuditFilter {
  /** mcp or admin; absent: both. */
  kind?: 'mcp' | 'admin' | undefined;
  since?: number | undefined;
  until?: number | undefined;
  subject?: string | undefined;
  provider?: string | undefined;
  /** Entries where this agent acted for the subject. */
  actor?: string | undefined;
  gateway?: string | undefined;
  /** MCP requests: the server (assignment name) under the gateway. */
  server?: string | undefined;
  /** MCP requests: the tool, prompt or resource URI named (`name`). */
  tool?: string | undefined;
  /** An exact outcome, or `error` for every outcome but ok. */
  outcome?: string | undefined;
  /** Admin changes: an exact action (`client.create`). */
  action?: string | undefined;
  /** Admin changes: a target type (`gateway`), or type and id (`gateway:eng`). */
  target?: string | undefined;
}

export interface AuditReadOptions {
  /** asc: oldest first (exports); desc: newest first (the JSON API). */
  order: 'asc' | 'desc';
  limit?: number | undefined;
}

/** A sink whose entries can be read back (the admin API's queries and exports). */
export interface AuditLog extends AuditSink {
  /** Everything recorded so far is readable once this resolves. */
  flush(): Promise<void>;
  read(filter: AuditFilter, options: AuditReadOptions): AsyncIterable<AuditRecord>;
}

export function isAuditLog(sink: AuditSink): sink is AuditLog {
  return typeof (sink as Partial<AuditLog>).read === 'function' && typeof (sink as Partial<AuditLog>).flush === 'function';
}

/** `gateway` names every gateway; `gateway:eng` one of them. */
function isTarget(target: AdminTarget, wanted: string): boolean {
  return wanted === target.type || (target.id !== undefined && wanted === `${target.type}:${target.id}`);
}

export function matchesFilter(entry: AuditRecord, filter: AuditFilter): boolean {
  if (filter.kind !== undefined && (entry.kind ?? 'mcp') !== filter.kind) return false;
  if (filter.gateway !== undefined && (entry.kind === 'admin' || entry.gateway !== filter.gateway)) return false;
  if (filter.server !== undefined && (entry.kind === 'admin' || entry.server !== filter.server)) return false;
  if (filter.tool !== undefined && (entry.kind === 'admin' || entry.name !== filter.tool)) return false;
  if (filter.action !== undefined && (entry.kind !== 'admin' || entry.action !== filter.action)) return false;
  if (filter.target !== undefined && (entry.kind !== 'admin' || !isTarget(entry.target, filter.target))) return false;
  if (filter.subject !== undefined && entry.subject !== filter.subject) return false;
  if (filter.provider !== undefined && entry.provider !== filter.provider) return false;
  if (filter.actor !== undefined && entry.actor !== filter.actor) return false;
  if (filter.outcome !== undefined && (filter.outcome === 'error' ? entry.outcome === 'ok' : entry.outcome !== filter.outcome)) return false;
  if (filter.since !== undefined || filter.until !== undefined) {
    const at = Date.parse(entry.time);
    if (filter.since !== undefined && !(at >= filter.since)) return false;
    if (filter.until !== undefined && !(at <= filter.until)) return false;
  }
  return true;
}

/** Keeps entries in memory (tests, and until a log is configured). */
export class MemoryAudit implements AuditLog {
  readonly entries: AuditRecord[] = [];
  record(entry: AuditRecord): void {
    this.entries.push(entry);
  }
  async flush(): Promise<void> {}
  async *read(filter: AuditFilter, options: AuditReadOptions): AsyncIterable<AuditRecord> {
    const matching = this.entries.filter((e) => matchesFilter(e, filter));
    if (options.order === 'desc') matching.reverse();
    yield* options.limit === undefined ? matching : matching.slice(0, options.limit);
  }
  async close(): Promise<void> {}
}

/** Pass every MCP entry to `observers` too (in the background: they must be cheap and never throw). */
export function observeAudit(sink: AuditSink, ...observers: ((entry: AuditEntry) => void)[]): AuditSink {
  return {
    record(entry) {
      sink.record(entry);
      if (entry.kind !== 'admin') for (const observe of observers) observe(entry);
    },
    close: () => sink.close(),
  };
}
