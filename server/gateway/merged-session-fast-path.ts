import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerContext } from '@modelcontextprotocol/server';
import type { LegacySession } from './merged-caller.ts';
import { LEGACY_VERSIONS } from './mcp-headers.ts';
import type { MergedHandlers, RequestContext } from './merged-server.ts';
import { sseMessage } from './sse.ts';
import type { RequestId, RpcMessage } from './upstream-client.ts';
import { type Cancellable, Cancellation } from './upstream-transport.ts';

// The hot path of a 2025 session on /mcp/{gateway}: a tools/call is
// forwarded over the pooled upstream connection (the same one, with the same
// exchange hooks, that the SDK path's handler uses) and its answer written
// straight back, without a round trip through the session's SDK server and
// transport. The answer is JSON when the upstream said nothing else on the
// way; an SSE stream as soon as it does (progress, a log message, a
// server-to-client request), each event stored in the session's event store
// under its id, as the SDK path stores them, so a client whose stream breaks
// may resume it with Last-Event-ID (Streamable HTTP 2025-11-25, "Resumability
// and Redelivery"). Server-to-client requests (elicitation, sampling, roots)
// go to the client on that stream; its answer comes back as a POST to the
// session, which the endpoint hands to `answerAsk`. A client that cancels
// (notifications/cancelled) reaches `cancel`.
//
// Anything the SDK path would answer differently declines, before a byte is
// written: a batch, a malformed call, a refused or unknown tool, a caller who
// has not connected the server's identity, a disabled upstream, a session
// that resumes streams (those get the SDK's primed streams). The SDK path
// answers those, so a refusal reads the same on either path.

/** As the SDK server: a request to the client that gets no answer fails after 60 s. */
const ASK_TIMEOUT_MS = 60_000;

/** Per-session state of the fast path: requests sent to the client, and calls the client may cancel. */
export interface FastPathState {
  asks: Map<string, (reply: Pick<RpcMessage, 'result' | 'error'>) => void>;
  calls: Map<RequestId, Cancellation>;
  /** A 2026-07-28 upstream's input_required first round, by the client's request id, for the SDK path to go on from. */
  handedOver: Map<RequestId, RpcMessage>;
  nextAsk: number;
  nextStream: number;
}

export function fastPathState(): FastPathState {
  return { asks: new Map(), calls: new Map(), handedOver: new Map(), nextAsk: 1, nextStream: 1 };
}

interface Body {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: { name?: unknown; arguments?: unknown; task?: unknown; _meta?: unknown; [k: string]: unknown };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Could this 2025 session request take the fast path? (Headers only, and what the SDK transport checks first.) */
export function sessionFastPathCandidate(req: IncomingMessage, session: LegacySession): boolean {
  const accept = String(req.headers.accept ?? '');
  return (
    !session.resumes &&
    req.headers['last-event-id'] === undefined &&
    /^application\/json\b/i.test(String(req.headers['content-type'] ?? '')) &&
    accept.includes('application/json') &&
    accept.includes('text/event-stream') &&
    LEGACY_VERSIONS.has(String(req.headers['mcp-protocol-version']))
  );
}

/**
 * A client's JSON-RPC response to a request the fast path sent it, or its
 * notifications/cancelled for a call the fast path holds: consumed (202, as
 * the SDK transport answers), or false for the SDK path to take.
 */
export function answerAsk(res: ServerResponse, parsed: unknown, session: LegacySession): boolean {
  const message = parsed as (RpcMessage & { params?: { requestId?: unknown } }) | undefined;
  if (!isObject(message) || message.jsonrpc !== '2.0') return false;
  if (message.method === undefined && typeof message.id === 'string') {
    const settle = session.fast.asks.get(message.id);
    if (!settle) return false;
    session.fast.asks.delete(message.id);
    settle(message.error !== undefined ? { error: message.error } : { result: message.result ?? {} });
  } else if (message.method === 'notifications/cancelled' && message.id === undefined) {
    const requestId = message.params?.requestId;
    const call = (typeof requestId === 'string' || typeof requestId === 'number') && session.fast.calls.get(requestId);
    if (!call) return false;
    call.abort();
  } else {
    return false;
  }
  res.writeHead(202).end();
  return true;
}

/**
 * Serve a tools/call of a 2025 session, or return false (nothing written) for the SDK path to
 * answer. `sdk` runs the same request through the SDK path: when a 2026-07-28 upstream answers
 * input_required, that path goes on from this first round (the SDK server turns the rounds into
 * requests to the client) and its answer is relayed here.
 */
export async function trySessionFastPath(res: ServerResponse, parsed: unknown, rc: RequestContext & { session: LegacySession }, handlers: MergedHandlers, sdk: () => Promise<Response>): Promise<boolean> {
  const body = parsed as Body | undefined;
  if (!isObject(body) || body.jsonrpc !== '2.0' || body.method !== 'tools/call' || (typeof body.id !== 'string' && typeof body.id !== 'number')) return false;
  const params = body.params;
  if (!isObject(params) || typeof params.name !== 'string' || params.task !== undefined || params.requestState !== undefined || params.inputResponses !== undefined) return false;
  if ((params.arguments !== undefined && !isObject(params.arguments)) || (params._meta !== undefined && !isObject(params._meta))) return false;
  const { session } = rc;
  const id = body.id;
  if (session.fast.calls.has(id)) return false;
  const route = await handlers.fastRoute(rc, params.name);
  if (!route) return false;

  // Cancelled by the client's notifications/cancelled (answerAsk): the upstream request goes too.
  const abort = new Cancellation();
  session.fast.calls.set(id, abort);
  // Written in order: the SSE head on the first event, then each event with its stored id.
  let stream: string | undefined;
  let writing = Promise.resolve();
  const emit = (message: Record<string, unknown>): Promise<void> => {
    writing = writing.then(async () => {
      if (stream === undefined) {
        stream = `fast-${session.fast.nextStream++}`;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no', 'mcp-session-id': session.id });
      }
      const eventId = await session.events.storeEvent(stream, message as never);
      // 2025: a client that went away has not cancelled; what follows is stored for its resumption.
      if (!res.destroyed) res.write(sseMessage(message, eventId));
    });
    return writing;
  };
  // (Methods, not arrow properties: the loader names each named closure as it is made, once per call here.)
  const ctx = {
    mcpReq: {
      signal: abort,
      notify(notification: { method: string; params?: unknown }) {
        return emit({ jsonrpc: '2.0', ...notification });
      },
      send(request: { method: string; params?: unknown }) {
        return ask(session, request, emit, abort);
      },
    },
  } as unknown as ServerContext;

  try {
    const outcome = await handlers.fastCall(rc, ctx, route, { ...params, name: route.original }, id);
    if ('inputRequired' in outcome) {
      session.fast.calls.delete(id);
      session.fast.handedOver.set(id, outcome.inputRequired);
      await writing;
      try {
        await relay(await sdk(), res);
      } finally {
        session.fast.handedOver.delete(id);
      }
      return true;
    }
    const { message, status } = outcome;
    // Cancelled: as the SDK server, no answer.
    if (abort.aborted) {
      await writing;
      res.end();
    } else if (stream === undefined) {
      const text = JSON.stringify(message);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'mcp-session-id': session.id }).end(text);
    } else {
      await emit(message as unknown as Record<string, unknown>);
      res.end();
    }
  } finally {
    session.fast.calls.delete(id);
  }
  return true;
}

/** A server-to-client request on the call's stream; the answer arrives as a POST (answerAsk). */
function ask(session: LegacySession, request: { method: string; params?: unknown }, emit: (m: Record<string, unknown>) => Promise<void>, signal: Cancellable): Promise<Record<string, unknown>> {
  const id = `keygate-${session.fast.nextAsk++}`;
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      session.fast.asks.delete(id);
    };
    const fail = (message: string) => {
      done();
      void emit({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: message } }).catch(() => undefined);
      reject(new Error(message));
    };
    const timer = setTimeout(() => fail('Request timed out'), ASK_TIMEOUT_MS);
    const onAbort = () => fail('the call was cancelled');
    signal.addEventListener('abort', onAbort, { once: true });
    session.fast.asks.set(id, (reply) => {
      done();
      if (reply.error) reject(Object.assign(new Error(reply.error.message), { code: reply.error.code, data: reply.error.data }));
      else resolve(reply.result ?? {});
    });
    emit({ jsonrpc: '2.0', id, method: request.method, params: request.params ?? {} }).catch((err: Error) => fail(err.message));
  });
}

/** The SDK path's answer, onto this response (after what the fast path already streamed, if anything). */
async function relay(answer: Response, res: ServerResponse): Promise<void> {
  if (!res.headersSent) res.writeHead(answer.status, Object.fromEntries(answer.headers));
  else if (!answer.headers.get('content-type')?.startsWith('text/event-stream')) {
    // An SSE stream is open already and the SDK path answered in another form: nothing it says fits in it.
    await answer.body?.cancel();
    return void res.end();
  }
  const reader = answer.body?.getReader();
  for (let next = await reader?.read(); next && !next.done; next = await reader!.read()) if (!res.destroyed) res.write(next.value);
  res.end();
}
