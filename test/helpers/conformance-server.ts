import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import {
  createMcpHandler,
  hostHeaderValidationResponse,
  inputRequired,
  inputResponse,
  isInitializeRequest,
  isLegacyRequest,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  originValidationResponse,
  ResourceNotFoundError,
  Server,
  type ServerContext,
  UriTemplate,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { flushingResponse } from '../../server/http/flushing-response.ts';
import { MemoryEventStore } from './feature-upstream.ts';

// The "everything" server the official MCP conformance suite
// (@modelcontextprotocol/conformance, `conformance server`) expects: the
// tools, resources, prompts and utilities its server scenarios call by their
// fixed names, written with our v2 SDK's low-level Server (so every answer is
// the wire shape the scenario describes), served in the 2025 era (sessions,
// an event store for resumption, SSE retry hints), and on request in the
// 2026-07-28 era too, with localhost Host/Origin validation. Sampling and
// elicitation are written once as input_required: real server-to-client
// requests on a 2025 session, embedded requests in 2026-07-28. A port of what
// the suite's reference server does; the conformance test proves it passes
// the suite when called directly.

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';
const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const none = { type: 'object', properties: {} } as const;

const TOOLS = [
  { name: 'test_simple_text', description: 'Answers with one text block.', inputSchema: none },
  { name: 'test_image_content', description: 'Answers with an image (a 1x1 PNG).', inputSchema: none },
  { name: 'test_audio_content', description: 'Answers with audio (a tiny WAV).', inputSchema: none },
  { name: 'test_embedded_resource', description: 'Answers with an embedded text resource.', inputSchema: none },
  { name: 'test_multiple_content_types', description: 'Answers with text, an image and a resource.', inputSchema: none },
  { name: 'test_tool_with_logging', description: 'Sends three log messages while it runs.', inputSchema: none },
  { name: 'test_tool_with_progress', description: 'Reports progress 0, 50 and 100 of 100.', inputSchema: none },
  { name: 'test_error_handling', description: 'Answers with a tool error (isError).', inputSchema: none },
  { name: 'test_reconnection', description: 'Closes its SSE stream mid-call; the result waits for the client to resume (SEP-1699).', inputSchema: none },
  { name: 'test_sampling', description: 'Asks the client to sample.', inputSchema: { type: 'object', properties: { prompt: { type: 'string', description: 'The prompt to send' } }, required: ['prompt'] } },
  { name: 'test_elicitation', description: 'Asks the user for a username and an email.', inputSchema: { type: 'object', properties: { message: { type: 'string', description: 'What to ask' } }, required: ['message'] } },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicitation whose fields carry defaults (SEP-1034).', inputSchema: none },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicitation with the five enum forms (SEP-1330).', inputSchema: none },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
];

const RESOURCES = [
  { uri: 'test://static-text', name: 'static-text', description: 'A static text resource', mimeType: 'text/plain' },
  { uri: 'test://static-binary', name: 'static-binary', description: 'A static binary resource (PNG)', mimeType: 'image/png' },
  { uri: 'test://watched-resource', name: 'watched-resource', description: 'A resource to subscribe to', mimeType: 'text/plain' },
];
const TEMPLATE = { uriTemplate: 'test://template/{id}/data', name: 'template-data', description: 'Data for an id', mimeType: 'application/json' };

const PROMPTS = [
  { name: 'test_simple_prompt', description: 'A prompt without arguments' },
  {
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two arguments',
    arguments: [
      { name: 'arg1', description: 'First argument', required: true },
      { name: 'arg2', description: 'Second argument', required: true },
    ],
  },
  { name: 'test_prompt_with_embedded_resource', description: 'A prompt embedding a resource', arguments: [{ name: 'resourceUri', description: 'The resource to embed', required: true }] },
  { name: 'test_prompt_with_image', description: 'A prompt with an image' },
];

const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });

/** A form elicitation (input_required), then the answer as text. */
function elicit(ctx: ServerContext, message: string, requestedSchema: Record<string, unknown>, said = 'Elicitation completed'): Record<string, unknown> {
  const view = inputResponse(ctx.mcpReq.inputResponses, 'form');
  if (view.kind !== 'elicit') return inputRequired({ inputRequests: { form: inputRequired.elicit({ message, requestedSchema: requestedSchema as never }) } }) as never;
  return text(`${said}: action=${view.action}, content=${JSON.stringify(view.content ?? {})}`);
}

async function callTool(name: string, args: Record<string, unknown>, ctx: ServerContext): Promise<Record<string, unknown>> {
  switch (name) {
    case 'test_simple_text':
      return text('This is a simple text response for testing.');
    case 'test_image_content':
      return { content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] };
    case 'test_audio_content':
      return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] };
    case 'test_embedded_resource':
      return { content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }] };
    case 'test_multiple_content_types':
      return {
        content: [
          { type: 'text', text: 'Multiple content types test:' },
          { type: 'image', data: PNG, mimeType: 'image/png' },
          { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) } },
        ],
      };
    case 'test_tool_with_logging':
      for (const [i, message] of ['Tool execution started', 'Tool processing data', 'Tool execution completed'].entries()) {
        if (i > 0) await sleep(50);
        await ctx.mcpReq.log('info', message, 'conformance');
      }
      return text('Tool with logging executed successfully');
    case 'test_tool_with_progress': {
      const progressToken = ctx.mcpReq._meta?.progressToken;
      for (const [i, progress] of [0, 50, 100].entries()) {
        if (i > 0) await sleep(50);
        if (progressToken !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` } });
      }
      return text(String(progressToken ?? 'no progress token'));
    }
    case 'test_error_handling':
      return { isError: true, content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }] };
    case 'test_reconnection':
      // SEP-1699: end this request's stream now; the result is stored and replayed when the client resumes.
      ctx.http?.closeSSE?.();
      await sleep(100);
      return text('Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.');
    case 'test_sampling': {
      const view = inputResponse(ctx.mcpReq.inputResponses, 'sample');
      if (view.kind !== 'sampling') return inputRequired({ inputRequests: { sample: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: String(args.prompt ?? '') } }], maxTokens: 100 }) } }) as never;
      const content = view.result.content as { text?: string } | { text?: string }[];
      return text(`LLM response: ${(Array.isArray(content) ? content[0]?.text : content.text) ?? 'No response'}`);
    }
    case 'test_elicitation':
      return elicit(ctx, String(args.message ?? ''), {
        type: 'object',
        properties: { username: { type: 'string', description: "User's response" }, email: { type: 'string', description: "User's email address" } },
        required: ['username', 'email'],
      }, 'User response');
    case 'test_elicitation_sep1034_defaults':
      return elicit(ctx, 'Please review and update the form fields with defaults', {
        type: 'object',
        properties: {
          name: { type: 'string', description: 'User name', default: 'John Doe' },
          age: { type: 'integer', description: 'User age', default: 30 },
          score: { type: 'number', description: 'User score', default: 95.5 },
          status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
          verified: { type: 'boolean', description: 'Verification status', default: true },
        },
        required: [],
      });
    case 'test_elicitation_sep1330_enums':
      return elicit(ctx, 'Please pick from the enums', {
        type: 'object',
        properties: {
          untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
          titledSingle: {
            type: 'string',
            oneOf: [
              { const: 'value1', title: 'First Option' },
              { const: 'value2', title: 'Second Option' },
              { const: 'value3', title: 'Third Option' },
            ],
          },
          legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
          untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
          titledMulti: {
            type: 'array',
            items: {
              anyOf: [
                { const: 'value1', title: 'First Choice' },
                { const: 'value2', title: 'Second Choice' },
                { const: 'value3', title: 'Third Choice' },
              ],
            },
          },
        },
        required: [],
      });
    case 'json_schema_2020_12_tool':
      return text(`received ${JSON.stringify(args)}`);
    default:
      return { isError: true, content: [{ type: 'text', text: `Unknown tool: ${name}` }] };
  }
}

function build(subscriptions: Set<string>): Server {
  const server = new Server(
    { name: 'keygate-conformance-server', version: '1.0.0' },
    { capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true }, logging: {}, completions: {} } },
  );
  const template = new UriTemplate(TEMPLATE.uriTemplate);
  server.setRequestHandler('tools/list', async () => ({ tools: TOOLS }) as never);
  server.setRequestHandler('tools/call', async (req, ctx) => (await callTool(req.params.name, (req.params.arguments ?? {}) as Record<string, unknown>, ctx)) as never);
  server.setRequestHandler('resources/list', async () => ({ resources: RESOURCES }));
  server.setRequestHandler('resources/templates/list', async () => ({ resourceTemplates: [TEMPLATE] }));
  server.setRequestHandler('resources/read', async (req) => {
    const { uri } = req.params;
    if (uri === 'test://static-text') return { contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] };
    if (uri === 'test://static-binary') return { contents: [{ uri, mimeType: 'image/png', blob: PNG }] };
    if (uri === 'test://watched-resource') return { contents: [{ uri, mimeType: 'text/plain', text: 'Watched resource content' }] };
    const vars = template.match(uri);
    if (vars) return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ id: vars.id, templateTest: true, data: `Data for ID: ${String(vars.id)}` }) }] };
    throw new ResourceNotFoundError(uri);
  });
  server.setRequestHandler('resources/subscribe', async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler('resources/unsubscribe', async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });
  server.setRequestHandler('prompts/list', async () => ({ prompts: PROMPTS }));
  server.setRequestHandler('prompts/get', async (req) => {
    const args = (req.params.arguments ?? {}) as Record<string, string>;
    switch (req.params.name) {
      case 'test_simple_prompt':
        return { messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] };
      case 'test_prompt_with_arguments':
        return { messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'` } }] };
      case 'test_prompt_with_embedded_resource':
        return {
          messages: [
            { role: 'user', content: { type: 'resource', resource: { uri: args.resourceUri ?? 'test://example-resource', mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
            { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
          ],
        };
      case 'test_prompt_with_image':
        return {
          messages: [
            { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
            { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
          ],
        };
      default:
        throw new Error(`Unknown prompt: ${req.params.name}`);
    }
  });
  server.setRequestHandler('completion/complete', async (req) => {
    const value = req.params.argument.value;
    const values = ['paris', 'park', 'party'].filter((v) => v.startsWith(value));
    return { completion: { values, total: values.length, hasMore: false } };
  });
  server.setRequestHandler('logging/setLevel', async (req) => {
    if (!LEVELS.includes(req.params.level)) throw new Error(`unknown level ${req.params.level}`);
    return {};
  });
  return server;
}


export interface ConformanceServer {
  url: string;
  /** Every JSON-RPC request it was sent: the era it came in, the method and the tool or prompt name. */
  requests: { era: 'legacy' | 'modern'; method: string; name: string | undefined }[];
  close(): Promise<void>;
}

/**
 * The conformance "everything" server on 127.0.0.1, port 0, at /mcp: in the
 * 2025 era only (`legacy`), or in both (`both`: a 2026-07-28 request is
 * served statelessly, as a gateway that speaks that era first will ask).
 */
export async function startConformanceServer(options: { eras?: 'legacy' | 'both' } = {}): Promise<ConformanceServer> {
  const modern = options.eras === 'both' ? createMcpHandler(() => build(new Set()), { legacy: 'reject' }) : undefined;
  const sessions = new Map<string, { transport: WebStandardStreamableHTTPServerTransport; server: Server }>();
  const eventStore = new MemoryEventStore();
  const requests: ConformanceServer['requests'] = [];
  const rpcError = (status: number, code: number, message: string) => Response.json({ jsonrpc: '2.0', error: { code, message }, id: null }, { status });

  async function handle(req: Request): Promise<Response> {
    if (new URL(req.url).pathname !== '/mcp') return new Response('not found', { status: 404 });
    // MCP security best practices: a local server checks Host and Origin (DNS rebinding).
    const refused = hostHeaderValidationResponse(req, localhostAllowedHostnames()) ?? originValidationResponse(req, localhostAllowedOrigins());
    if (refused) return refused;
    const body = req.method === 'POST' ? await req.clone().json().catch(() => undefined) : undefined;
    const rpc = body as { method?: unknown; params?: { name?: unknown } } | undefined;
    const legacy = req.method !== 'POST' || !modern || (await isLegacyRequest(req, body));
    if (typeof rpc?.method === 'string') requests.push({ era: legacy ? 'legacy' : 'modern', method: rpc.method, name: typeof rpc.params?.name === 'string' ? rpc.params.name : undefined });
    if (modern && !legacy) return modern.fetch(req);
    const sid = req.headers.get('mcp-session-id');
    if (sid) {
      const session = sessions.get(sid);
      if (!session) return rpcError(404, -32001, 'Session not found');
      return session.transport.handleRequest(req, body === undefined ? undefined : { parsedBody: body });
    }
    if (req.method === 'POST' && isInitializeRequest(body)) {
      const server = build(new Set());
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore,
        retryInterval: 500,
        onsessioninitialized: (id) => void sessions.set(id, { transport, server }),
        onsessionclosed: (id) => void sessions.delete(id),
      });
      await server.connect(transport);
      return transport.handleRequest(req, { parsedBody: body });
    }
    return rpcError(400, -32000, 'Bad Request: Mcp-Session-Id required');
  }

  const node = toNodeHandler({ fetch: handle });
  const http: HttpServer = createServer((req, res) => void node(req, flushingResponse(res)));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    async close() {
      await Promise.all([...sessions.values()].map((s) => s.transport.close().catch(() => undefined)));
      await modern?.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
