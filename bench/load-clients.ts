// The MCP clients of bench/load.ts: raw fetch over keep-alive connections
// (undici's pool, one connection per request in flight), each client a loop
// of tools/call "add", one request at a time, until told to stop. A
// 2026-07-28 client sends stateless calls; a 2025 client initializes once,
// then calls on its session, each request to the next of `bases` (two
// instances: a session that any instance picks up). Every answer is checked
// (HTTP 200 and a JSON-RPC result with the right sum); anything else is a
// failure, counted by reason.

export const accept = 'application/json, text/event-stream';
const MODERN_META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'bench-load', version: '1' } };

export type Era = '2026-07-28' | '2025-11-25';

export interface ClientSpec {
  era: Era;
  /** shared or per-user (what the report groups by). */
  server: 'shared' | 'per-user';
  /** The path (/mcp/... or the upstream's /mcp) on each base; a 2025 client alternates between the bases. */
  bases: string[];
  path: string;
  authorization: string;
}

export interface Sample {
  /** When the request was sent, ms since the run's start. */
  at: number;
  ms: number;
}

export interface ClientStats {
  spec: ClientSpec;
  samples: Sample[];
  failures: Map<string, number>;
}

/** A pause the soak asks for before each sample: every client finishes its request in flight, then waits. */
export class Gate {
  private waiting: Promise<void> | undefined;
  private open: (() => void) | undefined;
  private idle = 0;
  private total = 0;
  private allIdle: (() => void) | undefined;

  register(): void {
    this.total++;
  }

  /** Called by a client between requests. */
  async pass(): Promise<void> {
    if (!this.waiting) return;
    this.idle++;
    if (this.idle === this.total) this.allIdle?.();
    await this.waiting;
  }

  /** Resolves once every client is between requests. */
  close(): Promise<void> {
    this.idle = 0;
    this.waiting = new Promise((resolve) => (this.open = resolve));
    return new Promise((resolve) => (this.allIdle = resolve));
  }

  reopen(): void {
    this.waiting = undefined;
    this.open?.();
  }

  leave(): void {
    this.total--;
    if (this.waiting && this.idle === this.total) this.allIdle?.();
  }
}

function body(era: Era, id: number, a: number): string {
  const params = { name: 'add', arguments: { a, b: 1 }, ...(era === '2026-07-28' && { _meta: MODERN_META }) };
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params });
}

/** The JSON-RPC message of an answer, as JSON or as the first SSE data line. */
function message(text: string): { result?: { structuredContent?: { sum?: number } }; error?: { code: number; message: string } } | undefined {
  const data = text.startsWith('{') ? text : /^data: (.*)$/m.exec(text)?.[1];
  try {
    return data ? JSON.parse(data) : undefined;
  } catch {
    return undefined;
  }
}

function reasonOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return `network: ${cause?.code ?? cause?.message ?? (err as Error).message}`;
}

async function initialize(spec: ClientSpec, base: string): Promise<string> {
  const headers = { authorization: spec.authorization, accept, 'content-type': 'application/json' };
  const res = await fetch(`${base}${spec.path}`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench-load', version: '1' } } }),
  });
  const text = await res.text();
  const id = res.headers.get('mcp-session-id');
  if (res.status !== 200 || !id) throw new Error(`initialize at ${base}${spec.path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  const initialized = await fetch(`${base}${spec.path}`, { method: 'POST', headers: { ...headers, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' }, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
  await initialized.text();
  return id;
}

/**
 * Run one client until `until()` says stop. Its 2025 session (if any) is
 * opened first; the returned promise resolves when the loop has ended and the
 * session is deleted (so the upstream's sessions can be counted). Calls sent
 * before `measureFrom` (ms since `start`: the warm-up, while connections
 * open) are checked but not timed.
 */
export async function runClient(spec: ClientSpec, start: number, until: () => boolean, options: { gate?: Gate; index?: number; measureFrom?: number } = {}): Promise<ClientStats> {
  const { gate, index = 0, measureFrom = 0 } = options;
  const stats: ClientStats = { spec, samples: [], failures: new Map() };
  const fail = (reason: string) => stats.failures.set(reason, (stats.failures.get(reason) ?? 0) + 1);
  let session: string | undefined;
  let turn = index;
  const headers: Record<string, string> = { authorization: spec.authorization, accept, 'content-type': 'application/json' };
  if (spec.era === '2025-11-25') {
    session = await initialize(spec, spec.bases[turn % spec.bases.length]!);
    Object.assign(headers, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' });
  } else {
    Object.assign(headers, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'add' });
  }
  gate?.register();
  let id = 1;
  while (!until()) {
    await gate?.pass();
    if (until()) break;
    const a = id;
    const base = spec.bases[turn++ % spec.bases.length]!;
    const sent = performance.now();
    try {
      const res = await fetch(`${base}${spec.path}`, { method: 'POST', headers, body: body(spec.era, id++, a) });
      const text = await res.text();
      const ms = performance.now() - sent;
      const answer = message(text);
      if (res.status !== 200) fail(`HTTP ${res.status}${answer?.error ? ` (JSON-RPC ${answer.error.code} ${answer.error.message})` : ''}`);
      else if (answer?.error) fail(`JSON-RPC ${answer.error.code} ${answer.error.message}`);
      else if (answer?.result?.structuredContent?.sum !== a + 1) fail('a wrong or missing result');
      else if (sent - start >= measureFrom) stats.samples.push({ at: sent - start, ms });
    } catch (err) {
      fail(reasonOf(err));
    }
  }
  gate?.leave();
  if (session) {
    const res = await fetch(`${spec.bases[0]}${spec.path}`, { method: 'DELETE', headers }).catch(() => undefined);
    await res?.text();
  }
  return stats;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
