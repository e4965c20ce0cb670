import type { IncomingMessage } from 'node:http';
import { CODES, type GatewayFailure } from '../catalog/failure.ts';

// A request body the gateway reads itself (the merged endpoint always; the
// raw endpoint for tool policy, scopes and per-user servers): bounded in size
// and in nesting before it is parsed, so that no body can make validation or
// re-serialization recurse off the stack (a 10,000-deep array was a 500), and
// answered in JSON-RPC when it is refused.

/** The SDK's own default bound on a request body. */
export const BODY_LIMIT = 4 * 1024 * 1024;
/**
 * Deepest nesting of arrays and objects accepted (serde_json's default
 * recursion limit): an MCP request nests a handful of levels, tool arguments
 * rarely a dozen.
 */
export const MAX_DEPTH = 128;

export class BodyTooLargeError extends Error {
  readonly code = 'ERR_BODY_TOO_LARGE';
}

export class BodyTooDeepError extends Error {
  readonly code = 'ERR_BODY_TOO_DEEP';
}

/** The whole body, by events (no async iterator on the hot path); past `limit`, BodyTooLargeError and the rest is left unread. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData).off('end', onEnd).off('error', reject);
      req.pause();
      reject(new BodyTooLargeError(`the request body is larger than ${limit} bytes`));
    };
    const onEnd = () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    req.on('data', onData).once('end', onEnd).once('error', reject);
  });
}

/**
 * Does this JSON text nest arrays and objects deeper than `limit`? One pass
 * over the bytes, strings skipped (a bracket inside a string does not count):
 * no recursion, no allocation.
 */
export function nestsDeeperThan(text: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next byte is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** A body read whole, parsed: undefined when it is not JSON. Throws BodyTooDeepError. */
export function parseJsonBody(body: Buffer): unknown {
  if (nestsDeeperThan(body, MAX_DEPTH)) throw new BodyTooDeepError(`Parse error: the body nests arrays and objects deeper than ${MAX_DEPTH} levels`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The answer to a body refused while reading it, or undefined for any other
 * error. A 413 closes the connection: the rest of the body is never read,
 * and a keep-alive client would otherwise send its next request behind it
 * and wait for an answer that never comes.
 */
export function bodyFailure(err: unknown): GatewayFailure | undefined {
  if (err instanceof BodyTooLargeError) return { status: 413, code: CODES.invalidRequest, step: 'route', reason: 'body_too_large', message: err.message, headers: { connection: 'close' } };
  if (err instanceof BodyTooDeepError) return { status: 400, code: CODES.parseError, step: 'route', reason: 'body_too_deep', message: err.message };
  return undefined;
}

/** JSON-RPC 2.0 §5.1: -32700 for a body that is not JSON. */
export const NOT_JSON: GatewayFailure = { status: 400, code: CODES.parseError, step: 'route', reason: 'parse_error', message: 'Parse error: the body is not JSON' };
