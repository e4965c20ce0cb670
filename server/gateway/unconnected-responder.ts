import type { IncomingMessage, ServerResponse } from 'node:http';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, inputRequired, ProtocolError, type RequestStateCodec, Server, type ServerContext, UrlElicitationRequiredError } from '@modelcontextprotocol/server';
import type { Principal } from '../inbound/principal.ts';
import { type Assignment, toolAllowed } from './catalog.ts';
import { toolOffered } from './tool-policy.ts';
import type { GatewayState } from './round-trips.ts';
import { CONNECT_TOOL, connectedResult, connectElicitation, connectToolError, placeholderTool, supportsUrlElicitation, type ToolCache, type Unconnected } from './unconnected.ts';

// /mcp/{gateway}/{server} for a caller who has not connected their account to
// this per-user server yet: there is nothing to forward to, so a small local
// MCP server answers in the upstream's place, in both eras — initialize /
// server/discover, tools/list (the upstream's tools as last seen, or a
// placeholder tool), and tools/call with the connect URL (unconnected.ts).
// A 2025 client gets a session id that is Keygate's own: once the account is
// connected, that id is unknown upstream, the client gets 404 and starts a
// real session.

const ENVELOPE_CAPS = 'io.modelcontextprotocol/clientCapabilities';

/** What the stand-in knows about the request it answers. */
export interface StandIn {
  assignment: Assignment;
  unconnected: Unconnected;
  caller: string;
  /** Who is calling: tools/list hides the tools a policy denies them. */
  principal: Principal | undefined;
  /** 2025 session ids issued by the stand-in carry whether the client declared URL elicitation (stateless: nothing else remembers it). */
  urlElicitation: boolean;
  /** Connected since the client listed the placeholder tool: a call to it says so (unconnected.ts isStalePlaceholder). */
  connected?: boolean;
}

export const STAND_IN_SESSION = 'keygate-unconnected';

export function standInSessionId(urlElicitation: boolean): string {
  return `${STAND_IN_SESSION};url=${urlElicitation ? 1 : 0}`;
}

export function parseStandInSession(upstreamId: string): { urlElicitation: boolean } | undefined {
  if (!upstreamId.startsWith(`${STAND_IN_SESSION};`)) return undefined;
  return { urlElicitation: upstreamId.endsWith('url=1') };
}

export function unconnectedResponder(deps: { tools: ToolCache; codec: RequestStateCodec<GatewayState>; version: string }) {
  const standInOf = (ctx: ServerContext): StandIn => (ctx.http?.authInfo?.extra as { standIn: StandIn }).standIn;

  const handler = createMcpHandler(
    (mctx) => {
      const standIn = (mctx.authInfo?.extra as { standIn: StandIn } | undefined)?.standIn;
      const a = standIn?.assignment;
      const server = new Server(
        { name: a?.upstream.name ?? 'keygate', version: deps.version },
        { capabilities: { tools: { listChanged: false } }, instructions: standIn?.unconnected.message, requestState: { verify: deps.codec.verify } },
      );
      server.setRequestHandler('tools/list', async (_req, ctx) => {
        const s = standInOf(ctx);
        const cached = deps.tools.get(s.assignment.upstream.id)?.filter((t) => toolOffered(s.assignment, s.principal, t.name));
        return { tools: (cached?.length ? cached : [placeholderTool(CONNECT_TOOL, s.assignment.upstream.name, s.unconnected)]) as never };
      });
      server.setRequestHandler('tools/call', async (req, ctx) => {
        const s = standInOf(ctx);
        if (s.connected) return connectedResult(s.assignment.upstream.name) as never;
        const u = s.unconnected;
        if (req.params.name !== CONNECT_TOOL && !toolAllowed(s.assignment.tools, req.params.name)) {
          throw new ProtocolError(-32003, `tool "${req.params.name}" is not available on /mcp/${s.assignment.gateway}/${s.assignment.name}`, { step: 'assignment', reason: 'tool_not_allowed' });
        }
        const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
        const modern = envelope !== undefined && ENVELOPE_CAPS in envelope;
        const url = u.connectUrl;
        if (url !== undefined) {
          if (modern && supportsUrlElicitation(envelope[ENVELOPE_CAPS] as Record<string, unknown>)) {
            const state = ctx.mcpReq.requestState<GatewayState>();
            if (state === undefined) {
              return inputRequired({ inputRequests: { connect: inputRequired.elicitUrl({ message: u.message, url }) }, requestState: await deps.codec.mint({ k: 'connect', c: s.caller, a: s.assignment.name }) }) as never;
            }
          } else if (!modern && s.urlElicitation) {
            throw new UrlElicitationRequiredError([connectElicitation({ ...u, connectUrl: url })], u.message);
          }
        }
        return connectToolError(u) as never;
      });
      return server;
    },
    { legacy: 'stateless' },
  );

  return (req: IncomingMessage, res: ServerResponse, standIn: StandIn, body: Buffer | undefined, sessionId: string | undefined): Promise<void> => {
    if (req.method === 'GET') {
      res.writeHead(405, { allow: 'POST, DELETE' }).end();
      return Promise.resolve();
    }
    if (req.method === 'DELETE') {
      res.writeHead(200).end();
      return Promise.resolve();
    }
    const parsed = body === undefined ? undefined : safeJson(body);
    const node = toNodeHandler({
      fetch: async (web: Request) => {
        const response = await handler.fetch(web, { authInfo: { token: 'keygate', clientId: standIn.caller, scopes: [], extra: { standIn } }, ...(parsed !== undefined && { parsedBody: parsed }) });
        // 2025 initialize: the stand-in's own session id, so later requests come back here (or to 404 once connected).
        if (sessionId !== undefined && (parsed as { method?: unknown } | undefined)?.method === 'initialize' && response.ok) {
          const headers = new Headers(response.headers);
          headers.set('mcp-session-id', sessionId);
          return new Response(response.body, { status: response.status, headers });
        }
        return response;
      },
    });
    return node(req, res, parsed);
  };
}

function safeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}
