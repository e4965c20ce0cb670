import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditEntry } from '../audit/audit.ts';
import type { Principal } from '../inbound/principal.ts';
import { decodeMcpName } from './mcp-headers.ts';

// The audit record of one MCP request, filled in as the request goes through
// the steps and written when the response ends: who, which gateway, which
// assignment and identity, what (method and tool / prompt / resource name),
// how it ended, how long it took. Never a secret, never a tool's arguments.

export interface RequestRecord {
  started: number;
  outcome: string;
  principal: Principal | undefined;
  gateway: string | undefined;
  server: string | undefined;
  upstream: string | undefined;
  identity: string | undefined;
  /** The policy rule that refused the request (`policies[2]`). */
  rule?: string | undefined;
  /** Set from the body once it is read (both endpoints), else taken from the Mcp-* headers. */
  method?: string | undefined;
  name?: string | undefined;
}

export function newRecord(): RequestRecord {
  return { started: performance.now(), outcome: 'ok', principal: undefined, gateway: undefined, server: undefined, upstream: undefined, identity: undefined };
}

/** The JSON-RPC method and name of a request: set from its body, else from the Mcp-* headers (a request refused before its body was read). */
function methodAndName(req: IncomingMessage, record: RequestRecord): { method: string | undefined; name: string | undefined } {
  if (record.method !== undefined) return { method: record.method, name: record.name };
  const method = req.headers['mcp-method'];
  if (typeof method === 'string' && method !== '') {
    // A name sent Base64-encoded (non-ASCII, 2026-07-28) is recorded as the name it stands for.
    const name = req.headers['mcp-name'];
    return { method, name: typeof name === 'string' ? (decodeMcpName(name) ?? name) : undefined };
  }
  return { method: undefined, name: undefined };
}

export function auditEntry(req: IncomingMessage, res: ServerResponse, record: RequestRecord): AuditEntry {
  const { method, name } = methodAndName(req, record);
  const status = res.statusCode;
  const outcome = record.outcome !== 'ok' ? record.outcome : !res.writableFinished ? 'client_closed' : status >= 400 ? `upstream_http_${status}` : 'ok';
  return {
    time: new Date().toISOString(),
    request_id: randomUUID(),
    subject: record.principal?.subject,
    provider: record.principal?.provider,
    client_id: record.principal?.clientId,
    ...(record.principal?.actor && { actor: record.principal.actor.subject }),
    ...(record.principal?.isClient && { subject_type: 'client' as const }),
    gateway: record.gateway ?? '',
    server: record.server,
    upstream: record.upstream,
    identity: record.identity,
    http_method: req.method ?? '',
    method,
    name,
    outcome,
    ...(record.rule !== undefined && { rule: record.rule }),
    status,
    latency_ms: Math.round((performance.now() - record.started) * 10) / 10,
  };
}
