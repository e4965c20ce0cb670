import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, inputRequired, type RequestStateCodec, Server, type ServerContext, UrlElicitationRequiredError } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { Principal } from '../inbound/principal.ts';
import type { Assignment } from '../catalog/catalog.ts';
import { toolOffered } from '../catalog/tool-policy.ts';
import type { GatewayState } from './round-trips.ts';
import { CONNECT_TOOL, connectedResult, connectElicitation, connectToolError, placeholderTool, supportsUrlElicitation, type ToolCache, type Unconnected } from './unconnected.ts';

// /mcp/{gateway}/{server} for a caller who has not connected their account to
// this per-user server yet: there is nothing to forward to, so a small local
// MCP server answers in the upstream's place, in both eras — initialize /
// server/discover, tools/list (the upstream's tools as last seen, or a
// placeholder tool), and tools/call with the connect URL (unconnected.ts).
// A 2025 client gets a session id that is Keygate's own: once the account is
// connected, the gateway opens the session upstream on the client's behalf
// and the same id goes on there (stand-in-continuation.ts).

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

/** What a 2025 client said in its initialize: replayed to the upstream once the person connects (stand-in-continuation.ts). */
export const initializeParams = z.strictObject({
  protocolVersion: z.string().max(64),
  capabilities: z.record(z.string(), z.unknown()),
  clientInfo: z.looseObject({ name: z.string(), version: z.string() }),
});
export type InitializeParams = z.infer<typeof initializeParams>;

/** The client's initialize params, from an initialize request's body (undefined when they are not valid). */
export function initializeParamsOf(body: Buffer | undefined): InitializeParams | undefined {
  if (!body) return undefined;
  try {
    const params = (JSON.parse(body.toString('utf8')) as { params?: Record<string, unknown> }).params;
    const parsed = initializeParams.safeParse({ protocolVersion: params?.protocolVersion, capabilities: params?.capabilities, clientInfo: params?.clientInfo });
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** At most this much of a client's initialize is carried in the session id (beyond it, the session cannot go on after connecting). */
const MAX_CARRIED = 2048;

/**
 * The stand-in's own 2025 session id (wrapped and bound to the caller by session-binding.ts, which
 * MACs all of it): unique, and carrying what the stand-in must remember, statelessly — whether the
 * client declared URL elicitation, and its initialize params, so the session can go on upstream once
 * the person connects.
 */
export function standInSessionId(urlElicitation: boolean, init: InitializeParams | undefined): string {
  const carried = init === undefined ? '' : JSON.stringify(init);
  const nonce = randomBytes(16).toString('base64url');
  return `${STAND_IN_SESSION};url=${urlElicitation ? 1 : 0};${nonce}${carried.length > 0 && carried.length <= MAX_CARRIED ? `;${carried}` : ''}`;
}

export function parseStandInSession(upstreamId: string): { urlElicitation: boolean; initialize: InitializeParams | undefined } | undefined {
  const match = /^keygate-unconnected;url=([01])(?:;[A-Za-z0-9_-]+(?:;(\{.*\}))?)?$/s.exec(upstreamId);
  if (!match) return undefined;
  let initialize: InitializeParams | undefined;
  if (match[2] !== undefined) {
    try {
      const parsed = initializeParams.safeParse(JSON.parse(match[2]));
      if (parsed.success) initialize = parsed.data;
    } catch {
      initialize = undefined;
    }
  }
  return { urlElicitation: match[1] === '1', initialize };
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
        // (The tool filter and policies judged the call before the stand-in was asked: steps.ts policy.)
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
