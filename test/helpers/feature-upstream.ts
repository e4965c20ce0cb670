import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import {
  acceptedContent,
  type CallToolResult,
  createMcpHandler,
  type EventStore,
  inputRequired,
  type InputRequiredResult,
  inputResponse,
  isInitializeRequest,
  isLegacyRequest,
  type JSONRPCMessage,
  McpServer,
  ResourceTemplate,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import { flushingResponse } from '../../server/http/flushing-response.ts';

// A feature-rich MCP upstream for gateway tests: a real v2 SDK server with
// tools, resources, a resource template, prompts, progress, logging,
// list_changed, elicitation / sampling / roots (written once with
// input_required: real server-to-client requests on a 2025 session, embedded
// requests on 2026-07-28), resource subscriptions, cancellation and SSE
// resumption (an event store on the 2025 leg). It serves the 2025 era
// (sessions), the 2026-07-28 era, or both, and records every request it gets,
// with the credential it carried, so a test can assert what reached it.

export type UpstreamEras = 'both' | 'legacy' | 'modern';

export interface UpstreamRequest {
  http: string;
  era: 'legacy' | 'modern' | undefined;
  authorization: string | undefined;
  headers: Record<string, string>;
  /** The JSON-RPC method (from the body) and the tool / prompt name or resource URI. */
  rpc: string | undefined;
  name: string | undefined;
  sessionId: string | undefined;
  body: unknown;
}

export interface FeatureUpstream {
  url: string;
  eras: UpstreamEras;
  requests: UpstreamRequest[];
  /** Events the tools saw: cancellations, subscriptions, log levels. */
  events: string[];
  /** How many `initialize` handshakes reached the upstream. */
  initializeCount(): number;
  /** Add a tool at run time (tools list_changed goes out to every session / listen stream, or only to the 2025 sessions opened with that Authorization). */
  addTool(name: string, onlyFor?: string): void;
  /** notifications/resources/updated for a URI, to every subscriber. */
  touch(uri: string): void;
  /** notifications/message, unsolicited, to every 2025 session (filtered by its level). */
  broadcastLog(message: string): Promise<void>;
  /** Forget every 2025 session: the next request with an old session id gets 404. */
  expireSessions(): Promise<void>;
  /** Cut every open standalone (GET) stream without ending the sessions: clients reconnect and resume. */
  dropStreams(): void;
  /** Resolve `hold` calls that are waiting. */
  release(): void;
  close(): Promise<void>;
}

const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;

/** A small in-memory event store: what the 2025 leg needs to replay a standalone stream after Last-Event-ID. */
export class MemoryEventStore implements EventStore {
  private readonly events: { id: string; stream: string; message: JSONRPCMessage }[] = [];
  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}::${this.events.length + 1}`;
    this.events.push({ id, stream: streamId, message });
    return id;
  }
  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.find((e) => e.id === eventId)?.stream;
  }
  async replayEventsAfter(lastEventId: string, { send }: { send: (id: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const at = this.events.findIndex((e) => e.id === lastEventId);
    if (at < 0) return '';
    const stream = this.events[at]!.stream;
    for (const e of this.events.slice(at + 1)) if (e.stream === stream) await send(e.id, e.message);
    return stream;
  }
}

export async function startFeatureUpstream(options: { eras?: UpstreamEras; name?: string; requireAuthorization?: (value: string | undefined) => boolean; /** Declare resources.subscribe (default true). */ subscriptions?: boolean } = {}): Promise<FeatureUpstream> {
  const eras = options.eras ?? 'both';
  const name = options.name ?? `feature-${eras}`;
  const requests: UpstreamRequest[] = [];
  const events: string[] = [];
  const extraTools = new Set<string>();
  const sessions = new Map<string, { transport: WebStandardStreamableHTTPServerTransport; server: McpServer; subscriptions: Set<string>; authorization: string | undefined }>();
  const eventStore = new MemoryEventStore();
  let releaseHold!: () => void;
  let held = new Promise<void>((resolve) => (releaseHold = resolve));

  function build(era: 'legacy' | 'modern', session?: { subscriptions: Set<string> }): McpServer {
    const server = new McpServer(
      { name, version: '1.2.3' },
      {
        capabilities: { logging: {}, resources: { subscribe: options.subscriptions ?? true, listChanged: true }, tools: { listChanged: true }, prompts: { listChanged: true }, completions: {} },
        instructions: `The ${name} test upstream.`,
      },
    );
    const whoami = (authorization: string | undefined) => authorization ?? '(none)';

    server.registerTool('echo', { description: 'Repeat a message.', inputSchema: z.object({ message: z.string() }), annotations: { readOnlyHint: true } }, async ({ message }) => ({
      content: [{ type: 'text', text: message }],
    }));
    server.registerTool(
      'add',
      { description: 'Add two numbers.', inputSchema: z.object({ a: z.number(), b: z.number() }), outputSchema: z.object({ sum: z.number() }) },
      async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }),
    );
    server.registerTool('whoami', { description: 'The credential this call carried.', inputSchema: z.object({}) }, async (_args, ctx) => ({
      content: [{ type: 'text', text: whoami(ctx.http?.req?.headers.get('authorization') ?? undefined) }],
    }));
    server.registerTool('write_note', { description: 'A write: stores nothing, says what it would write.', inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({
      content: [{ type: 'text', text: `wrote ${text}` }],
    }));
    server.registerTool(
      'count',
      { description: 'Count to n with a progress notification per step.', inputSchema: z.object({ n: z.number().int().min(1).max(20) }) },
      async ({ n }, ctx) => {
        const progressToken = ctx.mcpReq._meta?.progressToken;
        for (let i = 1; i <= n; i++) {
          await new Promise((r) => setTimeout(r, 5));
          if (progressToken !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: i, total: n, message: `step ${i}` } });
        }
        return { content: [{ type: 'text', text: `counted to ${n}` }] };
      },
    );
    server.registerTool(
      'log',
      { description: 'Log a message at a level, then answer.', inputSchema: z.object({ level: z.enum(LEVELS), message: z.string() }) },
      async ({ level, message }, ctx) => {
        await ctx.mcpReq.log(level, message, 'feature');
        return { content: [{ type: 'text', text: `logged ${level}` }] };
      },
    );
    server.registerTool('hold', { description: 'Wait until the test releases it, or the call is cancelled.', inputSchema: z.object({}) }, async (_args, ctx) => {
      events.push('hold:started');
      const cancelled = new Promise<'cancelled'>((resolve) => ctx.mcpReq.signal.addEventListener('abort', () => resolve('cancelled'), { once: true }));
      const outcome = await Promise.race([held.then(() => 'released' as const), cancelled]);
      events.push(`hold:${outcome}`);
      return { content: [{ type: 'text', text: outcome }] };
    });
    server.registerTool('confirm', { description: 'Ask the user to confirm (form elicitation).', inputSchema: z.object({ action: z.string() }) }, async ({ action }, ctx): Promise<CallToolResult | InputRequiredResult> => {
      const view = inputResponse(ctx.mcpReq.inputResponses, 'confirm');
      if (view.kind === 'elicit' && view.action !== 'accept') return { content: [{ type: 'text', text: `not confirmed (${view.action})` }], isError: true };
      const answer = acceptedContent(ctx.mcpReq.inputResponses, 'confirm', z.object({ ok: z.boolean() }));
      if (answer === undefined) {
        return inputRequired({ inputRequests: { confirm: inputRequired.elicit({ message: `Really ${action}?`, requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } }) } });
      }
      return { content: [{ type: 'text', text: answer.ok ? `confirmed ${action}` : `declined ${action}` }] };
    });
    server.registerTool('summarize', { description: 'Ask the client to sample a summary.', inputSchema: z.object({ text: z.string() }) }, async ({ text }, ctx): Promise<CallToolResult | InputRequiredResult> => {
      const view = inputResponse(ctx.mcpReq.inputResponses, 'summary');
      if (view.kind !== 'sampling') {
        return inputRequired({ inputRequests: { summary: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: `Summarize: ${text}` } }], maxTokens: 50 }) } });
      }
      const content = view.result.content;
      const said = Array.isArray(content) ? content.map((c) => ('text' in c ? c.text : '')).join('') : 'text' in content ? content.text : '';
      return { content: [{ type: 'text', text: `summary by ${view.result.model}: ${said}` }] };
    });
    server.registerTool('roots', { description: 'Ask the client for its roots.', inputSchema: z.object({}) }, async (_args, ctx): Promise<CallToolResult | InputRequiredResult> => {
      const view = inputResponse(ctx.mcpReq.inputResponses, 'roots');
      if (view.kind !== 'roots') return inputRequired({ inputRequests: { roots: inputRequired.listRoots() } });
      return { content: [{ type: 'text', text: view.roots.map((r) => r.uri).join(',') }] };
    });
    for (const extra of extraTools) {
      server.registerTool(extra, { description: `Added at run time: ${extra}.`, inputSchema: z.object({}) }, async () => ({ content: [{ type: 'text', text: extra }] }));
    }

    server.registerResource('readme', `note://${name}/readme`, { title: 'Readme', mimeType: 'text/plain' }, async (uri) => ({
      contents: [{ uri: uri.href, text: `readme of ${name} (${era})` }],
    }));
    server.registerResource('item', new ResourceTemplate(`note://${name}/items/{id}`, { list: undefined, complete: { id: () => ['1', '2', '3'] } }), { title: 'An item', mimeType: 'text/plain' }, async (uri, variables) => ({
      contents: [{ uri: uri.href, text: `item ${String(variables.id)} of ${name}` }],
    }));
    server.registerPrompt('greet', { description: 'A greeting.', argsSchema: z.object({ who: z.string() }) }, ({ who }) => ({
      messages: [{ role: 'user' as const, content: { type: 'text' as const, text: `Say hello to ${who} from ${name}.` } }],
    }));

    // 2025 sessions subscribe with resources/subscribe (2026-07-28 clients use subscriptions/listen instead).
    if (options.subscriptions === false) return server;
    server.server.setRequestHandler('resources/subscribe', async (request) => {
      session?.subscriptions.add(request.params.uri);
      events.push(`subscribe:${request.params.uri}`);
      return {};
    });
    server.server.setRequestHandler('resources/unsubscribe', async (request) => {
      session?.subscriptions.delete(request.params.uri);
      events.push(`unsubscribe:${request.params.uri}`);
      return {};
    });
    return server;
  }

  const modern = createMcpHandler((ctx) => build(ctx.era), { legacy: 'reject' });

  const jsonRpcError = (status: number, code: number, message: string) => Response.json({ jsonrpc: '2.0', error: { code, message }, id: null }, { status });

  async function legacy(req: Request, body: unknown): Promise<Response> {
    const sid = req.headers.get('mcp-session-id');
    if (sid) {
      const session = sessions.get(sid);
      if (!session) return jsonRpcError(404, -32001, 'Session not found');
      return session.transport.handleRequest(req, body === undefined ? undefined : { parsedBody: body });
    }
    if (req.method === 'POST' && isInitializeRequest(body)) {
      const state = { subscriptions: new Set<string>() };
      const server = build('legacy', state);
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore,
        onsessioninitialized: (id) => void sessions.set(id, { transport, server, ...state, authorization: req.headers.get('authorization') ?? undefined }),
        onsessionclosed: (id) => void sessions.delete(id),
      });
      server.server.oninitialized = () => undefined;
      await server.connect(transport);
      return transport.handleRequest(req, { parsedBody: body });
    }
    return jsonRpcError(400, -32000, 'Bad Request: Mcp-Session-Id required');
  }

  async function handle(req: Request): Promise<Response> {
    let body: unknown;
    if (req.method === 'POST') body = await req.clone().json().catch(() => undefined);
    const rpc = body as { method?: unknown; params?: { name?: unknown; uri?: unknown; level?: unknown } } | undefined;
    const isLegacy = req.method !== 'POST' || (await isLegacyRequest(req, body));
    requests.push({
      http: req.method,
      era: req.method === 'POST' ? (isLegacy ? 'legacy' : 'modern') : undefined,
      authorization: req.headers.get('authorization') ?? undefined,
      headers: Object.fromEntries(req.headers),
      rpc: typeof rpc?.method === 'string' ? rpc.method : undefined,
      name: typeof rpc?.params?.name === 'string' ? rpc.params.name : typeof rpc?.params?.uri === 'string' ? rpc.params.uri : undefined,
      sessionId: req.headers.get('mcp-session-id') ?? undefined,
      body,
    });
    if (rpc?.method === 'logging/setLevel') events.push(`setLevel:${String(rpc.params?.level)}`);
    if (new URL(req.url).pathname !== '/mcp') return new Response('not found', { status: 404 });
    if (options.requireAuthorization && !options.requireAuthorization(req.headers.get('authorization') ?? undefined)) {
      return Response.json({ jsonrpc: '2.0', error: { code: -32001, message: 'unauthorized' }, id: null }, { status: 401, headers: { 'www-authenticate': 'Bearer' } });
    }
    if (isLegacy) {
      if (eras === 'modern') {
        if (req.method !== 'POST') return new Response(null, { status: 405, headers: { allow: 'POST' } });
        return modern.fetch(req);
      }
      return legacy(req, body);
    }
    if (eras === 'legacy') return legacy(req, body);
    return modern.fetch(req);
  }

  const node = toNodeHandler({ fetch: handle });
  const server: Server = createServer((req, res) => {
    void node(req, flushingResponse(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/mcp`,
    eras,
    requests,
    events,
    initializeCount: () => requests.filter((r) => r.rpc === 'initialize').length,
    addTool(tool, onlyFor) {
      if (onlyFor === undefined) extraTools.add(tool);
      for (const s of sessions.values()) {
        if (onlyFor !== undefined && s.authorization !== onlyFor) continue;
        s.server.registerTool(tool, { description: `Added at run time: ${tool}.`, inputSchema: z.object({}) }, async () => ({ content: [{ type: 'text', text: tool }] }));
      }
      if (onlyFor === undefined) modern.notify.toolsChanged();
    },
    touch(uri) {
      for (const s of sessions.values()) if (s.subscriptions.has(uri)) void s.server.server.sendResourceUpdated({ uri });
      modern.notify.resourceUpdated(uri);
    },
    async broadcastLog(message) {
      for (const s of sessions.values()) await s.server.server.sendLoggingMessage({ level: 'info', data: message, logger: 'broadcast' }).catch(() => undefined);
    },
    async expireSessions() {
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(all.map((s) => s.transport.close().catch(() => undefined)));
    },
    dropStreams() {
      server.closeIdleConnections();
      for (const s of sessions.values()) {
        // The standalone stream only: the session stays.
        (s.transport as unknown as { closeStandaloneSSEStream?: () => void }).closeStandaloneSSEStream?.();
      }
    },
    release() {
      releaseHold();
      held = new Promise<void>((resolve) => (releaseHold = resolve));
    },
    async close() {
      releaseHold();
      await Promise.all([...sessions.values()].map((s) => s.transport.close().catch(() => undefined)));
      await modern.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
