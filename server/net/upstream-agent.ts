import { Agent as HttpAgent, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { responseHeader } from './raw-headers.ts';

// The keep-alive agent of each upstream's pooled connections
// (server/catalog/catalog.ts says why the pool is shaped as it is). An idle
// connection is closed after `idleMs`, or 1 s before the Keep-Alive timeout
// the upstream announced if that is shorter (as node's agent does with its
// `timeout` option). Unlike that option, the idle timer runs only while the
// connection is idle: with node's, the connection's timer is re-armed at
// every read and write of every call, a listener is added and removed per
// request, and the answer's `headers` object is built to read the hint.

/** Node's margin before an announced Keep-Alive timeout (HTTP_AGENT_KEEP_ALIVE_TIMEOUT_BUFFER). */
const HINT_MARGIN_MS = 1000;
const KEEP_ALIVE_HINT = /^timeout=(\d+)/;
/** TCP keep-alive's initial delay on an idle connection: the agent's default (keepAliveMsecs). */
const KEEP_ALIVE_MSECS = 1000;

export interface UpstreamAgentOptions {
  maxSockets: number;
  scheduling: 'fifo' | 'lifo';
  /** An idle connection is closed after this long. */
  idleMs: number;
}

/** How long an idle connection may be kept after this answer: undefined to close it now. */
function idleLimit(res: IncomingMessage | undefined, idleMs: number): number | undefined {
  const hint = res && responseHeader(res, 'keep-alive');
  const seconds = hint === undefined ? undefined : KEEP_ALIVE_HINT.exec(hint)?.[1];
  if (seconds === undefined) return idleMs;
  const hinted = Number(seconds) * 1000 - HINT_MARGIN_MS;
  // Too short to reuse safely: the upstream may be closing it already.
  return hinted <= 0 ? undefined : Math.min(hinted, idleMs);
}

/** The pooled agent of an upstream at `url`: every idle connection is kept (maxFreeSockets is maxSockets). */
export function upstreamAgent(url: URL, { maxSockets, scheduling, idleMs }: UpstreamAgentOptions): HttpAgent {
  const options = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling };
  const agent = url.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
  const reuse = agent.reuseSocket.bind(agent);
  // Node's keepSocketAlive and reuseSocket, with the idle timer set when a connection goes idle and cleared when it is reused.
  agent.keepSocketAlive = (socket: Socket) => {
    const limit = idleLimit((socket as Socket & { _httpMessage?: ClientRequest & { res?: IncomingMessage } })._httpMessage?.res, idleMs);
    if (limit === undefined) return false;
    socket.setKeepAlive(true, KEEP_ALIVE_MSECS);
    socket.unref();
    // (The agent destroys a connection whose timer fires while it is idle.)
    socket.setTimeout(limit);
    return true;
  };
  agent.reuseSocket = (socket: Socket, req: ClientRequest) => {
    socket.setTimeout(0);
    reuse(socket, req);
  };
  return agent;
}
