import type { IncomingHttpHeaders } from 'node:http';

// The 2026-07-28 request metadata headers (Streamable HTTP, "Request
// Metadata"; SEP-2243): Mcp-Method mirrors the body's `method`, Mcp-Name its
// `params.name` / `params.uri`, MCP-Protocol-Version the envelope's version.
// Written as the v2 SDK does (@modelcontextprotocol/core: encodeMcpParamValue,
// decodeMcpParamValue, validateStandardRequestHeaders), so SDK clients and
// servers on either side agree with the gateway byte for byte.

export const MODERN_VERSION = '2026-07-28';
/** The 2025 revision Keygate speaks to an upstream that has no 2026-07-28. */
export const LEGACY_VERSION = '2025-11-25';
/** The 2025 revisions a session may name in MCP-Protocol-Version (what the SDK transport accepts). */
export const LEGACY_VERSIONS: ReadonlySet<string> = new Set([LEGACY_VERSION, '2025-06-18', '2025-03-26']);
/** 2026-07-28: the `_meta` key of a request's protocol version. */
export const ENVELOPE_VERSION = 'io.modelcontextprotocol/protocolVersion';

const PREFIX = '=?base64?';
const SUFFIX = '?=';
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 9110 §5.5 field value the revision lets travel as is: visible ASCII, space, tab. */
const PLAIN = /^[\t\x20-\x7e]*$/;

const isSentinel = (value: string) => value.startsWith(PREFIX) && value.endsWith(SUFFIX);

/**
 * "Value Encoding": a value that cannot be a plain ASCII header value
 * (non-ASCII, control characters, leading or trailing whitespace, empty) or
 * that looks like the sentinel travels as `=?base64?{Base64 of its UTF-8}?=`.
 */
export function encodeMcpName(value: string): string {
  const plain = value !== '' && !isSentinel(value) && value === value.trim() && PLAIN.test(value);
  return plain ? value : `${PREFIX}${Buffer.from(value, 'utf8').toString('base64')}${SUFFIX}`;
}

/**
 * The value an Mcp-Name header carries: as is, or decoded from the sentinel
 * (markers case-sensitive). `undefined` when the sentinel's payload is not
 * canonical Base64 of valid UTF-8: "servers MUST reject such values".
 */
export function decodeMcpName(value: string): string | undefined {
  if (!isSentinel(value)) return value;
  const payload = value.slice(PREFIX.length, value.length - SUFFIX.length);
  if (!CANONICAL_BASE64.test(payload)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(payload, 'base64'));
  } catch {
    return undefined;
  }
}

/** "Standard Request Headers": the body field Mcp-Name mirrors, by method (tasks/* per SEP-2663, as in the SDK). */
const NAME_SOURCE: Record<string, 'name' | 'uri' | 'taskId'> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/** What a request's Mcp-Name names (not yet encoded: upstream-transport.ts encodes it), when its method has one. */
export function mcpNameOf(method: string, params: Record<string, unknown> | undefined): string | undefined {
  const field = Object.hasOwn(NAME_SOURCE, method) ? NAME_SOURCE[method] : undefined;
  const value = field === undefined ? undefined : params?.[field];
  return typeof value === 'string' ? value : undefined;
}

type Message = { method?: unknown; params?: Record<string, unknown> & { _meta?: Record<string, unknown> } };

const isModernVersion = (v: unknown): v is string => typeof v === 'string' && v >= MODERN_VERSION;

/**
 * A 2026-07-28 (or later) message: its MCP-Protocol-Version header or its
 * envelope says so. (A batch is a 2025 thing: never modern.)
 */
export function isModernRequest(headers: IncomingHttpHeaders, body: unknown): boolean {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return false;
  return isModernVersion(headers['mcp-protocol-version']) || isModernVersion((body as Message).params?._meta?.[ENVELOPE_VERSION]);
}

/**
 * Streamable HTTP, "Server Validation": why a modern request's headers
 * disagree with its body, or undefined when they agree. Missing required
 * headers and a malformed Mcp-Name count as disagreeing. Stricter than the
 * SDK in one place: an Mcp-Name beside a body that names nothing disagrees
 * (an intermediary could route by it while the body runs something else).
 */
export function headerMismatch(headers: IncomingHttpHeaders, body: unknown): string | undefined {
  const message = body as Message;
  const method = typeof message.method === 'string' ? message.method : undefined;
  const isRequest = 'id' in (message as object);
  const version = headers['mcp-protocol-version'];
  const claimed = message.params?._meta?.[ENVELOPE_VERSION];
  if (version === undefined) {
    if (isRequest) return 'the required MCP-Protocol-Version header is absent';
  } else if (claimed !== undefined && version !== claimed) {
    return `the body's envelope names protocol version ${String(claimed)} but the MCP-Protocol-Version header names ${version}`;
  }
  const mcpMethod = headers['mcp-method'];
  if (mcpMethod === undefined) {
    if (isRequest) return `the body names method ${method ?? '(none)'} but the required Mcp-Method header is absent`;
  } else if (mcpMethod !== method) {
    return `the body names method ${method ?? '(none)'} but the Mcp-Method header names ${String(mcpMethod)}`;
  }
  const field = method !== undefined && Object.hasOwn(NAME_SOURCE, method) ? NAME_SOURCE[method] : undefined;
  if (field === undefined) return undefined;
  const raw = message.params?.[field];
  const bodyValue = typeof raw === 'string' ? raw : undefined;
  const mcpName = headers['mcp-name'];
  if (typeof mcpName !== 'string') {
    return bodyValue === undefined ? undefined : `the body carries params.${field}="${bodyValue}" but the required Mcp-Name header is absent`;
  }
  const decoded = decodeMcpName(mcpName);
  if (decoded === undefined) return 'the Mcp-Name header carries an invalid Base64 sentinel value';
  if (decoded !== bodyValue) return `the body carries params.${field}=${bodyValue === undefined ? '(nothing)' : `"${bodyValue}"`} but the Mcp-Name header names "${decoded}"`;
  return undefined;
}
