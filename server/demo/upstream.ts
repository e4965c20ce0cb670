import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import {
  createMcpHandler,
  isInitializeRequest,
  isLegacyRequest,
  McpServer,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import { flushingResponse } from '../http/flushing-response.ts';

// The demo upstream: a real MCP server (v2 SDK) that requires an API key as
// `Authorization: Bearer <key>`, and serves both protocol eras on one path:
// 2026-07-28 stateless POSTs, and 2025 sessions (initialize, Mcp-Session-Id,
// GET for the SSE stream, DELETE). `npm start` runs it behind the registry's
// demo gateway; tests and the benchmark start it on port 0.

export interface SeenRequest {
  method: string;
  authorization: string | undefined;
  mcpMethod: string | undefined;
  /** From the body (2025-era requests have no Mcp-Method header): the JSON-RPC method and, for calls, the tool. */
  rpcMethod: string | undefined;
  toolName: string | undefined;
  sessionId: string | undefined;
  /** Names of every header received. */
  headerNames: string[];
}

export interface DemoUpstream {
  url: string;
  /** Every HTTP request that reached the server, as the API-key gate saw it (tests assert on this). */
  seen: SeenRequest[];
  /** 2025 sessions open now (bench/load.ts's soak: they must not grow). */
  openSessions(): number;
  close(): Promise<void>;
}

function buildServer(era: 'legacy' | 'modern'): McpServer {
  const server = new McpServer({ name: 'keygate-demo', version: '1.0.0' });

  server.registerTool(
    'echo',
    { title: 'Echo', description: 'Repeat a message back.', inputSchema: z.object({ message: z.string().describe('What to repeat') }), annotations: { readOnlyHint: true } },
    async ({ message }) => ({ content: [{ type: 'text', text: message }] }),
  );

  server.registerTool(
    'add',
    {
      title: 'Add',
      description: 'Add two numbers.',
      inputSchema: z.object({ a: z.number(), b: z.number() }),
      outputSchema: z.object({ sum: z.number() }),
      annotations: { readOnlyHint: true },
    },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }),
  );

  server.registerTool(
    'countdown',
    {
      title: 'Countdown',
      description: 'Count down from n, one progress notification per step (streams over SSE).',
      inputSchema: z.object({ n: z.number().int().min(1).max(50), delay_ms: z.number().int().min(0).max(2000).default(50) }),
    },
    async ({ n, delay_ms }, ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken;
      for (let i = 1; i <= n; i++) {
        await new Promise((r) => setTimeout(r, delay_ms));
        if (progressToken !== undefined) {
          await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: i, total: n, message: `${n - i} to go` } });
        }
      }
      return { content: [{ type: 'text', text: `liftoff after ${n}` }] };
    },
  );

  server.registerTool(
    'whoami',
    { title: 'Who am I', description: 'Which API key reached the demo server (its last four characters).', inputSchema: z.object({}), annotations: { readOnlyHint: true } },
    async (_args, ctx) => {
      const key = /^Bearer (.+)$/.exec(ctx.http?.req?.headers.get('authorization') ?? '')?.[1] ?? '';
      return { content: [{ type: 'text', text: `called with the API key ending in …${key.slice(-4)}` }] };
    },
  );

  server.registerResource('about', 'demo://about', { title: 'About the demo', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, text: `Keygate demo upstream (${era} era). It only answers callers that present its API key.` }],
  }));

  server.registerPrompt(
    'greet',
    { title: 'Greet', description: 'A greeting for someone.', argsSchema: z.object({ name: z.string() }) },
    ({ name }) => ({ messages: [{ role: 'user' as const, content: { type: 'text' as const, text: `Say hello to ${name}.` } }] }),
  );
  return server;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

export async function startDemoUpstream(options: {
  apiKey: string;
  /** Also accept any key with this prefix (the demo's "personal" keys, one per person). */
  personalKeyPrefix?: string;
  host?: string;
  port?: number;
  record?: boolean;
}): Promise<DemoUpstream> {
  const expected = digest(`Bearer ${options.apiKey}`);
  const personal = options.personalKeyPrefix;
  const seen: SeenRequest[] = [];

  const modern = createMcpHandler((ctx) => buildServer(ctx.era), { legacy: 'reject' });
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();

  const jsonRpcError = (status: number, code: number, message: string, headers: Record<string, string> = {}) =>
    Response.json({ jsonrpc: '2.0', error: { code, message }, id: null }, { status, headers });

  async function legacy(req: Request): Promise<Response> {
    const sid = req.headers.get('mcp-session-id');
    if (sid) {
      const transport = sessions.get(sid);
      return transport ? transport.handleRequest(req) : jsonRpcError(404, -32001, 'Session not found');
    }
    if (req.method === 'POST') {
      const body: unknown = await req.json().catch(() => undefined);
      if (isInitializeRequest(body)) {
        const transport = new WebStandardStreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => void sessions.set(id, transport),
          onsessionclosed: (id) => void sessions.delete(id),
        });
        transport.onclose = () => {
          if (transport.sessionId) sessions.delete(transport.sessionId);
        };
        await buildServer('legacy').connect(transport);
        return transport.handleRequest(req, { parsedBody: body });
      }
    }
    return jsonRpcError(400, -32000, 'Bad Request: Mcp-Session-Id required');
  }

  async function handle(req: Request): Promise<Response> {
    const authorization = req.headers.get('authorization') ?? undefined;
    if (options.record !== false) {
      let rpc: { method?: unknown; params?: { name?: unknown } } | undefined;
      if (req.method === 'POST') rpc = await req.clone().json().catch(() => undefined);
      seen.push({
        method: req.method,
        authorization,
        mcpMethod: req.headers.get('mcp-method') ?? undefined,
        rpcMethod: typeof rpc?.method === 'string' ? rpc.method : undefined,
        toolName: typeof rpc?.params?.name === 'string' ? rpc.params.name : undefined,
        sessionId: req.headers.get('mcp-session-id') ?? undefined,
        headerNames: [...req.headers.keys()],
      });
    }
    if (new URL(req.url).pathname !== '/mcp') return new Response('not found', { status: 404 });
    const presented = digest(authorization ?? '');
    const personalOk = personal !== undefined && /^Bearer (.+)$/.exec(authorization ?? '')?.[1]?.startsWith(personal) === true && (authorization?.length ?? 0) > `Bearer ${personal}`.length + 3;
    if (!timingSafeEqual(presented, expected) && !personalOk) {
      return jsonRpcError(401, -32001, 'this demo server needs its API key as "Authorization: Bearer <key>"', { 'www-authenticate': 'Bearer realm="keygate-demo"' });
    }
    if (req.method === 'GET' || req.method === 'DELETE') return legacy(req);
    if (req.method === 'POST' && (await isLegacyRequest(req))) return legacy(req);
    return modern.fetch(req);
  }

  const node = toNodeHandler({ fetch: handle });
  const server: Server = createServer((req, res) => {
    void node(req, flushingResponse(res));
  });
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`,
    seen,
    openSessions: () => sessions.size,
    async close() {
      await Promise.all([...sessions.values()].map((t) => t.close().catch(() => undefined)));
      await modern.close?.();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
