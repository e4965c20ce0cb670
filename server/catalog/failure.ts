// A refusal or failure of an MCP request, from whichever step decided it:
// the one error type of the gateway pipeline. The catalog's rules, the vault
// and the gateway's steps produce it; the gateway turns it into the response
// in one place (gateway/jsonrpc.ts sendFailure): a JSON-RPC error response
// with the HTTP status that fits, naming the step and the reason.

export type Step = 'route' | 'inbound' | 'scope' | 'gateway' | 'assignment' | 'vault' | 'upstream';

export interface GatewayFailure {
  status: number;
  code: number;
  step: Step;
  reason: string;
  message: string;
  headers?: Record<string, string>;
  /** The policy rule that decided a refusal (`policies[2]`): named in the audit record, not in the answer. */
  rule?: string;
}

/** A GatewayFailure thrown by a pipeline step: the endpoint catches it and answers with it. */
export class GatewayError extends Error {
  constructor(
    readonly failure: GatewayFailure,
    /** The JSON-RPC id of the call refused; undefined: read from the body, if it was not read yet. */
    readonly id?: string | number | null,
  ) {
    super(failure.message);
  }
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

