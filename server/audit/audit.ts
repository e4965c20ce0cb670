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

/** Keeps entries in memory (tests, and until a log is configured). */
export class MemoryAudit implements AuditSink {
  readonly entries: AuditEntry[] = [];
  record(entry: AuditEntry): void {
    this.entries.push(entry);
  }
  async close(): Promise<void> {}
}
