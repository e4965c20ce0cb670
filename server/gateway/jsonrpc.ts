import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayFailure } from '../catalog/failure.ts';

// The one place a GatewayFailure becomes a response on the MCP endpoints.

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
  const body = failureBody(failure, id);
  res.writeHead(failure.status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...failure.headers,
  });
  res.end(body);
}

/** The same answer as a fetch Response (where the SDK's web-standard transport answers: merged-endpoint.ts). */
export function failureResponse(failure: GatewayFailure, id: string | number | null = null): Response {
  return new Response(failureBody(failure, id), { status: failure.status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...failure.headers } });
}

/** The JSON-RPC error message of a failure (also sent as the last event of an SSE answer cut short). */
export function failureMessage(failure: GatewayFailure, id: string | number | null): { jsonrpc: '2.0'; id: string | number | null; error: { code: number; message: string; data: { step: string; reason: string } } } {
  return { jsonrpc: '2.0', id, error: { code: failure.code, message: failure.message, data: { step: failure.step, reason: failure.reason } } };
}

function failureBody(failure: GatewayFailure, id: string | number | null): string {
  return JSON.stringify(failureMessage(failure, id));
}
