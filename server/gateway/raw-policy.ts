import type { IncomingHttpHeaders } from 'node:http';
import { MODERN_VERSION } from './mcp-headers.ts';
import { SseParser, sseMessage } from './sse.ts';

// What the raw path (/mcp/{gateway}/{server}) reads of a request to apply
// tool policy, and how it filters a tools/list answer on its way back.
//
// 2026-07-28 requests name their method and target in headers (Mcp-Method,
// Mcp-Name). Where nothing is judged, those are enough and the body streams
// through unread. Where a tool filter, a tool policy or a scope applies, the
// body is read and judged, and its headers must agree with it (mcp-headers.ts):
// an upstream may route by either. A 2025 request has no such rule (a client
// could send a harmless Mcp-Name beside a forbidden body): its body is judged,
// and those headers, unchecked, are not forwarded.

export interface RequestFacts {
  /** Each JSON-RPC request of the body (2025-03-26 allowed batches), or the one the headers name. */
  calls: { method: string; name: string | undefined; id: string | number | null }[];
  /** The body as read (undefined when it was left to stream). */
  body: Buffer | undefined;
}

export function trustsHeaders(headers: IncomingHttpHeaders): boolean {
  return headers['mcp-protocol-version'] === MODERN_VERSION && typeof headers['mcp-method'] === 'string';
}

/** Method and name of each request (or notification) in a parsed JSON-RPC message or batch. */
export function callsIn(parsed: unknown): RequestFacts['calls'] {
  const out: RequestFacts['calls'] = [];
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    if (!m || typeof m !== 'object') continue;
    const { method, params, id } = m as { method?: unknown; params?: { name?: unknown; uri?: unknown }; id?: unknown };
    if (typeof method !== 'string') continue;
    const name = method === 'resources/read' ? params?.uri : params?.name;
    out.push({ method, name: typeof name === 'string' ? name : undefined, id: typeof id === 'string' || typeof id === 'number' ? id : null });
  }
  return out;
}

/**
 * Rewrite the tools of a tools/list answer (JSON, or the result event of an
 * SSE stream). Other messages pass unchanged; ids of events are kept.
 */
export function rewriteToolsList(contentType: string, text: string, rewrite: (tools: unknown[]) => unknown[]): string {
  const fix = (message: unknown): unknown => {
    const m = message as { result?: { tools?: unknown } } | null;
    if (m && typeof m === 'object' && m.result && Array.isArray(m.result.tools)) return { ...m, result: { ...m.result, tools: rewrite(m.result.tools) } };
    return message;
  };
  if (!contentType.startsWith('text/event-stream')) {
    try {
      const parsed: unknown = JSON.parse(text);
      return JSON.stringify(Array.isArray(parsed) ? parsed.map(fix) : fix(parsed));
    } catch {
      return text;
    }
  }
  const parser = new SseParser();
  let out = '';
  for (const event of parser.push(text.endsWith('\n\n') ? text : `${text}\n\n`)) {
    if (event.event !== 'message' || event.data === '') {
      out += `${event.id !== undefined ? `id: ${event.id}\n` : ''}${event.retry !== undefined ? `retry: ${event.retry}\n` : ''}data: ${event.data}\n\n`;
      continue;
    }
    let message: unknown;
    try {
      message = JSON.parse(event.data);
    } catch {
      out += `event: message\ndata: ${event.data}\n\n`;
      continue;
    }
    out += sseMessage(fix(message), event.id);
  }
  return out;
}
