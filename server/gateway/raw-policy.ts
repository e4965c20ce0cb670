import { SseParser, sseMessage } from './sse.ts';

// The calls a request body carries (what the steps judge: steps.ts read), and
// how the raw path (/mcp/{gateway}/{server}) filters a tools/list answer on
// its way back.

export interface RequestFacts {
  /** Each JSON-RPC request of the body (2025-03-26 allowed batches). */
  calls: { method: string; name: string | undefined; id: string | number | null }[];
  /** The body as read (undefined: a GET or DELETE). */
  body: Buffer | undefined;
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
