import type { IncomingMessage, ServerResponse } from 'node:http';

// Errors on the MCP endpoints are JSON-RPC error responses (with the HTTP
// status that fits), each naming the step of the request path that failed.

export type Step = 'route' | 'inbound' | 'scope' | 'gateway' | 'assignment' | 'vault' | 'upstream';

export interface GatewayFailure {
  status: number;
  code: number;
  step: Step;
  reason: string;
  message: string;
  headers?: Record<string, string>;
}

// JSON-RPC 2.0 reserves -32000..-32099 for implementation-defined server errors.
export const CODES = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** The SDKs' generic server error: a transport-level refusal (media type, missing session). */
  serverError: -32000,
  /** MCP: resource not found (2025 SDKs send it as -32602). */
  resourceNotFound: -32002,
  /** MCP 2026-07-28 HeaderMismatch (Streamable HTTP, "Server Validation"). */
  headerMismatch: -32020,
  unauthorized: -32001,
  forbidden: -32003,
  notFound: -32004,
  upstream: -32010,
  credential: -32011,
} as const;

const MAX_ID_PEEK = 64 * 1024;

/** On an error path only: read the request body to answer with its JSON-RPC id. */
export async function peekRequestId(req: IncomingMessage): Promise<string | number | null> {
  if (req.method !== 'POST' || req.readableEnded) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_ID_PEEK) return null;
      chunks.push(chunk);
    }
    const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const id = (body as { id?: unknown } | null)?.id;
    return typeof id === 'string' || typeof id === 'number' ? id : null;
  } catch {
    return null;
  }
}

/** `id`: the JSON-RPC id when known; omitted, the body is peeked for it (only before it was forwarded). */
export async function sendFailure(req: IncomingMessage, res: ServerResponse, failure: GatewayFailure, id?: string | number | null): Promise<void> {
  if (id === undefined) id = await peekRequestId(req);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: { code: failure.code, message: failure.message, data: { step: failure.step, reason: failure.reason } },
  });
  res.writeHead(failure.status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...failure.headers,
  });
  res.end(body);
}
