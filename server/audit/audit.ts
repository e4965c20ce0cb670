// The audit record of each MCP request: who, through which gateway and
// upstream, with which identity, what, how it ended and how long it took.
// Never a secret, never a token, never a tool's arguments.

export interface AuditEntry {
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
  status: number;
  latency_ms: number;
}

/** Where audit entries go: appended, batched, off the request's critical path. */
export interface AuditSink {
  record(entry: AuditEntry): void;
  close(): Promise<void>;
}

/** Which entries a query wants. Times are epoch milliseconds, both ends inclusive. */
export interface AuditFilter {
  since?: number | undefined;
  until?: number | undefined;
  subject?: string | undefined;
  provider?: string | undefined;
  /** Entries where this agent acted for the subject. */
  actor?: string | undefined;
  gateway?: string | undefined;
  /** An exact outcome, or `error` for every outcome but ok. */
  outcome?: string | undefined;
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
  read(filter: AuditFilter, options: AuditReadOptions): AsyncIterable<AuditEntry>;
}

export function isAuditLog(sink: AuditSink): sink is AuditLog {
  return typeof (sink as Partial<AuditLog>).read === 'function' && typeof (sink as Partial<AuditLog>).flush === 'function';
}

export function matchesFilter(entry: AuditEntry, filter: AuditFilter): boolean {
  if (filter.subject !== undefined && entry.subject !== filter.subject) return false;
  if (filter.provider !== undefined && entry.provider !== filter.provider) return false;
  if (filter.actor !== undefined && entry.actor !== filter.actor) return false;
  if (filter.gateway !== undefined && entry.gateway !== filter.gateway) return false;
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
  readonly entries: AuditEntry[] = [];
  record(entry: AuditEntry): void {
    this.entries.push(entry);
  }
  async flush(): Promise<void> {}
  async *read(filter: AuditFilter, options: AuditReadOptions): AsyncIterable<AuditEntry> {
    const matching = this.entries.filter((e) => matchesFilter(e, filter));
    if (options.order === 'desc') matching.reverse();
    yield* options.limit === undefined ? matching : matching.slice(0, options.limit);
  }
  async close(): Promise<void> {}
}

/** Pass every entry to `observers` too (in the background: they must be cheap and never throw). */
export function observeAudit(sink: AuditSink, ...observers: ((entry: AuditEntry) => void)[]): AuditSink {
  return {
    record(entry) {
      sink.record(entry);
      for (const observe of observers) observe(entry);
    },
    close: () => sink.close(),
  };
}
