import { SseParser, sseMessage } from './sse.ts';

// The calls a request body carries (what the steps judge: steps.ts read), and
// how the raw path (/mcp/{gateway}/{server}) filters a tools/list answer on
// its way back.

export interface RequestFacts {
  /** Each JSON-RPC request of the body (2025-03-26 allowed batches). */
  calls: { method: string; name: string | undefined; id: string | number | null; completes?: 'prompt' | 'resource' }[];
  /** The body as read (undefined: a GET or DELETE). */
  body: Buffer | undefined;
}

/** Method and name of each request (or notification) in a parsed JSON-RPC message or batch. */
export function callsIn(parsed: unknown): RequestFacts['calls'] {
  const out: RequestFacts['calls'] = [];
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    if (!m || typeof m !== 'object') continue;
    const { method, params, id } = m as { method?: unknown; params?: { name?: unknown; uri?: unknown; ref?: { type?: unknown; name?: unknown; uri?: unknown } }; id?: unknown };
    if (typeof method !== 'string') continue;
    const rid = typeof id === 'string' || typeof id === 'number' ? id : null;
    if (method === 'completion/complete') {
      // A completion names the prompt (by name) or the resource template (by URI) it completes an argument of.
      const ref = params?.ref;
      const completes = ref?.type === 'ref/prompt' ? 'prompt' : ref?.type === 'ref/resource' ? 'resource' : undefined;
      const name = completes === 'prompt' ? ref?.name : ref?.uri;
      out.push({ method, name: completes && typeof name === 'string' ? name : undefined, id: rid, ...(completes && { completes }) });
      continue;
    }
    // A resource is named by its URI (read, subscribe, unsubscribe); a tool or a prompt by its name.
    const name = method.startsWith('resources/') ? params?.uri : params?.name;
    out.push({ method, name: typeof name === 'string' ? name : undefined, id: rid });
  }
  return out;
}

/** What a list answer holds its items under (tools/list, prompts/list, resources/list, resources/templates/list). */
export type ListKey = 'tools' | 'prompts' | 'resources' | 'resourceTemplates';
const LIST_KEYS: ListKey[] = ['tools', 'prompts', 'resources', 'resourceTemplates'];

/**
 * Rewrite the items of a list answer (JSON, or the result event of an SSE
 * stream). Other messages pass unchanged; ids of events are kept.
 */
export function rewriteLists(contentType: string, text: string, rewrite: (key: ListKey, items: unknown[]) => unknown[]): string {
  const fix = (message: unknown): unknown => {
    const result = (message as { result?: Record<string, unknown> } | null)?.result;
    if (!result || typeof result !== 'object') return message;
    for (const key of LIST_KEYS) if (Array.isArray(result[key])) return { ...(message as object), result: { ...result, [key]: rewrite(key, result[key]) } };
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
