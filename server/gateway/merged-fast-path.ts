import type { IncomingMessage, ServerResponse } from 'node:http';
import { toolOffered } from '../catalog/tool-policy.ts';
import { CONNECT_TOOL } from './unconnected.ts';
import type { MergedHandlers, RequestContext } from './merged-server.ts';
import { failureMessage, sendFailure } from './jsonrpc.ts';
import { decodeMcpName, ENVELOPE_VERSION as PV, MODERN_VERSION } from './mcp-headers.ts';
import type { GatewayState } from './round-trips.ts';
import { SseParser, sseMessage } from './sse.ts';
import { modernHeaders, requestUpstream, responseHeader, streamDropped, upstreamFailure, type UpstreamResponse } from './upstream-transport.ts';

// The hot path of /mcp/{gateway}: a 2026-07-28 tools/call to a 2026-07-28
// upstream needs no protocol translation, so it skips the SDK server: the
// route comes from the Mcp-Method / Mcp-Name headers, the body is parsed once
// to put the upstream's own tool name in it, and the upstream's answer streams
// back as it arrives (progress and log notifications untouched; the client's
// own envelope went upstream, so the upstream honours its log level). Only
// the final message is touched: the gateway's serverInfo in _meta, and an
// input_required's requestState wrapped in the gateway's own, exactly as the
// SDK path answers. Anything else (a first call before the upstream's era is
// known, a retry round, a caller not connected yet, a refused tool, a body
// whose headers disagree) declines, and the SDK path answers it.

const CAPS = 'io.modelcontextprotocol/clientCapabilities';
const SERVER_INFO = 'io.modelcontextprotocol/serverInfo';

interface Body {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: { name?: unknown; requestState?: unknown; inputResponses?: unknown; _meta?: Record<string, unknown>; [k: string]: unknown };
}

/** Could this request take the fast path? (Headers only: nothing is parsed for a request that cannot.) */
export function fastPathCandidate(req: IncomingMessage): boolean {
  return req.method === 'POST' && /^application\/json\b/i.test(String(req.headers['content-type'] ?? '')) && req.headers['mcp-protocol-version'] === MODERN_VERSION && req.headers['mcp-method'] === 'tools/call' && typeof req.headers['mcp-name'] === 'string';
}

/** Serve it, or return false (nothing written) for the SDK path to answer. */
export async function tryFastPath(req: IncomingMessage, res: ServerResponse, parsed: unknown, rc: RequestContext, handlers: MergedHandlers, serverInfo: { name: string; version: string }): Promise<boolean> {
  const body = parsed as Body | undefined;
  const params = body?.params;
  const name = decodeMcpName(req.headers['mcp-name'] as string);
  if (!body || body.jsonrpc !== '2.0' || body.method !== 'tools/call' || (typeof body.id !== 'string' && typeof body.id !== 'number')) return false;
  if (!params || params.name !== name || params.requestState !== undefined || params.inputResponses !== undefined) return false;
  if (params._meta?.[PV] !== MODERN_VERSION || typeof params._meta?.[CAPS] !== 'object') return false;

  const gateway = handlers.deps.catalog.current.gateways.get(rc.caller.gatewayId);
  if (!gateway || name === undefined) return false;
  const alias = handlers.book(gateway.id).resolve(name, gateway.servers.values());
  const a = alias && gateway.servers.get(alias.assignment);
  // A filtered tool, or one a policy denies this caller: the SDK path answers with the refusal. The placeholder tool: the SDK path too.
  if (!alias || !a || alias.original === CONNECT_TOOL || !toolOffered(a, rc.principal, alias.original)) return false;
  const reach = await handlers.reach(rc, a);
  if (!reach.ok || reach.conn.era !== 'modern') return false;

  rc.record.method = 'tools/call';
  rc.record.name = alias.original;
  rc.record.server = a.name;
  rc.record.upstream = a.upstream.id;
  rc.record.identity = reach.identity;
  reach.conn.lastUsed = Date.now();

  const id = body.id;
  const forwarded = JSON.stringify({ ...body, params: { ...params, name: alias.original } });
  const { upstream } = a;
  // The final message: the gateway's serverInfo; an input_required keeps the upstream's state inside the gateway's.
  const finish = async (message: Record<string, any>): Promise<Record<string, any>> => {
    const result = message.result as Record<string, any> | undefined;
    if (!result) {
      if (message.error) rc.record.outcome = 'upstream_error';
      return message;
    }
    const next: Record<string, any> = { ...result, _meta: { ...result._meta, [SERVER_INFO]: serverInfo } };
    if (result.resultType === 'input_required') {
      const state: GatewayState = { k: 'upstream', c: rc.caller.callerKey, a: a.name, s: typeof result.requestState === 'string' ? result.requestState : undefined };
      next.requestState = await handlers.deps.codec.mint(state);
    }
    return { ...message, result: next };
  };

  // The upstream's answer, as it arrives.
  const relay = (upstreamRes: UpstreamResponse) => {
    const status = upstreamRes.statusCode ?? 502;
    const type = responseHeader(upstreamRes, 'content-type') ?? '';
    upstreamRes.setEncoding('utf8');
    // Cut before the end: the answer so far is relayed, then the call's JSON-RPC error (upstream_stream_dropped), as on the raw endpoint.
    const dropped = () => {
      rc.record.outcome = 'upstream_stream_dropped';
      return upstreamFailure(streamDropped(upstream), a);
    };
    upstreamRes.on('error', () => undefined); // said by 'close'
    if (type.startsWith('text/event-stream')) {
      res.writeHead(status, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
      const parser = new SseParser();
      let pending = Promise.resolve();
      let answered = false;
      upstreamRes.on('data', (chunk: string) => {
        for (const event of parser.push(chunk)) {
          pending = pending.then(async () => {
            if (event.event !== 'message' || event.data === '') return;
            let message: Record<string, any>;
            try {
              message = JSON.parse(event.data) as Record<string, any>;
            } catch {
              return;
            }
            const final = message.id === id && message.method === undefined;
            answered ||= final;
            res.write(sseMessage(final ? await finish(message) : message));
          });
        }
      });
      upstreamRes.on('end', () => void pending.then(() => res.end()));
      upstreamRes.on('close', () => {
        if (!upstreamRes.complete) void pending.then(() => (answered ? res.end() : res.end(sseMessage(failureMessage(dropped(), id)))));
      });
      return;
    }
    upstreamRes.on('close', () => {
      if (!upstreamRes.complete) void sendFailure(req, res, dropped(), id);
    });
    let text = '';
    upstreamRes.on('data', (chunk: string) => (text += chunk));
    upstreamRes.on('end', async () => {
      let out = text;
      try {
        const message = JSON.parse(text) as Record<string, any>;
        if (message && message.id === id) out = JSON.stringify(await finish(message));
      } catch {
        // not JSON: passed on as it came
      }
      res.writeHead(status, { 'content-type': type || 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
    });
  };
  // The upstream's own name goes in Mcp-Name (upstream-transport.ts encodes it when it is not plain ASCII).
  const cancel = requestUpstream(upstream, { method: 'POST', headers: modernHeaders('tools/call', alias.original, reach.headers), body: forwarded }, (err, upstreamRes) => {
    if (err) {
      rc.record.outcome = err.reason;
      // The JSON-RPC error in a 200, as the SDK path answers it.
      return void sendFailure(req, res, upstreamFailure(err, a), id);
    }
    relay(upstreamRes!);
  });
  res.on('close', () => {
    // The client went away (2026-07-28 cancellation): so does the upstream request.
    if (!res.writableFinished) cancel();
  });
  return true;
}
