// The MCP clients of bench/load.ts: raw HTTP, each client on its own
// keep-alive connection (a node:http agent of one socket), each client a loop
// of tools/call "add", one request at a time, until told to stop. A
// 2026-07-28 client sends stateless calls; a 2025 client initializes once,
// then calls on its session, each request to the next of `bases` (two
// instances: a session that any instance picks up). Every answer is checked
// (HTTP 200 and a JSON-RPC result with the right sum); anything else is a
// failure, counted by reason.

import { Agent, request } from 'node:http';

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
  return `network: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
}

interface Answer {
  status: number;
  sessionId: string | undefined;
  text: string;
}

/** One request on the client's own connection. */
function send(agent: Agent, url: string, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sessionId: res.headers['mcp-session-id'] as string | undefined, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function initialize(agent: Agent, spec: ClientSpec, base: string): Promise<string> {
  const headers = { authorization: spec.authorization, accept, 'content-type': 'application/json' };
  const init = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench-load', version: '1' } } });
  const res = await send(agent, `${base}${spec.path}`, 'POST', headers, init);
  const id = res.sessionId;
  if (res.status !== 200 || !id) throw new Error(`initialize at ${base}${spec.path}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  await send(agent, `${base}${spec.path}`, 'POST', { ...headers, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' }, '{"jsonrpc":"2.0","method":"notifications/initialized"}');
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
  // One connection per base, kept alive (maxSockets 1: the client sends one request at a time).
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const headers: Record<string, string> = { authorization: spec.authorization, accept, 'content-type': 'application/json' };
  if (spec.era === '2025-11-25') {
    session = await initialize(agent, spec, spec.bases[turn % spec.bases.length]!);
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
      const res = await send(agent, `${base}${spec.path}`, 'POST', headers, body(spec.era, id++, a));
      const text = res.text;
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
    await send(agent, `${spec.bases[0]}${spec.path}`, 'DELETE', headers).catch(() => undefined);
  }
  agent.destroy();
  return stats;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
