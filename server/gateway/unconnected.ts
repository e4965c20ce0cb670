import { randomUUID } from 'node:crypto';
import type { Assignment } from '../catalog/catalog.ts';
import type { GatewayFailure } from '../catalog/failure.ts';

// A per-user server the caller has not connected yet (no identity, or one
// whose sign-in expired): its tools are still listed (as last seen at the
// upstream, or one placeholder tool that says how to connect), and a call
// answers with what to do next, carrying the connect URL:
//
// - a 2025-11-25 client that declared `elicitation.url`: the JSON-RPC error
//   -32042 URLElicitationRequiredError, data.elicitations[{mode: 'url', ...}];
// - a 2026-07-28 client that declared `elicitation.url`: the same URL
//   elicitation, embedded in an input_required result (that revision has no
//   -32042: URL elicitation rides the multi-round-trip flow);
// - any other client: a tool result with isError: true whose text names the URL.

/** Resolver reasons that the caller can fix by connecting an account. */
const CONNECTABLE = new Set(['identity_missing', 'identity_expired']);

export interface Unconnected {
  reason: string;
  /** What the caller must do, URL included when there is one. */
  message: string;
  connectUrl: string | undefined;
}

export function asUnconnected(failure: GatewayFailure, connectUrl: string | undefined): Unconnected | undefined {
  if (!CONNECTABLE.has(failure.reason)) return undefined;
  return { reason: failure.reason, message: failure.message, connectUrl };
}

/** The placeholder's name on /mcp/{gateway}/{server}; on /mcp/{gateway} it is prefixed like every tool. */
export const CONNECT_TOOL = 'keygate_connect_account';

export interface ToolDefinition {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  [key: string]: unknown;
}

export function placeholderTool(name: string, serverLabel: string, u: Unconnected): ToolDefinition {
  return {
    name,
    title: `Connect your ${serverLabel} account`,
    description: `${serverLabel} needs your own account before its tools can be used here. ${u.connectUrl ? `Open ${u.connectUrl} to connect it, then list the tools again.` : u.message}`,
    inputSchema: { type: 'object', properties: {} },
    annotations: { readOnlyHint: true, openWorldHint: false },
  };
}

/**
 * A call to the placeholder tool of a server whose person has connected since
 * the client listed it: the upstream has no such tool (unless it lists one of
 * that name), so the call is answered here, never forwarded.
 */
export function isStalePlaceholder(tools: ToolCache, a: Pick<Assignment, 'identity' | 'upstream'>, name: string): boolean {
  return name === CONNECT_TOOL && a.identity === 'per_user' && !tools.get(a.upstream.id)?.some((t) => t.name === CONNECT_TOOL);
}

/** The answer to a stale placeholder: done, list again. */
export function connectedResult(serverLabel: string): { content: { type: 'text'; text: string }[] } {
  return { content: [{ type: 'text', text: `Your ${serverLabel} account is connected. List the tools again: ${serverLabel}'s own tools replace this one.` }] };
}

/** The readable tool error (clients that cannot open a URL elicitation). */
export function connectToolError(u: Unconnected): { content: { type: 'text'; text: string }[]; isError: true } {
  const text = u.connectUrl
    ? `${u.message}\n\nOpen ${u.connectUrl} in your browser to connect your account, then call the tool again.`
    : u.message;
  return { content: [{ type: 'text', text }], isError: true };
}

/** The URL-mode elicitation that sends the user to the connect page. */
export function connectElicitation(u: Unconnected & { connectUrl: string }): { mode: 'url'; elicitationId: string; url: string; message: string } {
  return { mode: 'url', elicitationId: randomUUID(), url: u.connectUrl, message: u.message };
}

/** Did the client declare URL-mode elicitation? (2025-11-25: capabilities.elicitation.url.) */
export function supportsUrlElicitation(capabilities: Record<string, unknown> | undefined): boolean {
  const elicitation = capabilities?.elicitation as Record<string, unknown> | undefined;
  return elicitation !== undefined && elicitation !== null && typeof elicitation === 'object' && elicitation.url !== undefined;
}

/**
 * Each upstream's tool list as last listed through Keygate (raw path or
 * merged endpoint, any identity): what a caller who has not connected yet is
 * shown. In memory only: the request path never writes the store.
 */
export class ToolCache {
  private readonly lists = new Map<string, ToolDefinition[]>();

  remember(upstreamId: string, tools: unknown): void {
    if (!Array.isArray(tools)) return;
    const valid = tools.filter((t): t is ToolDefinition => t !== null && typeof t === 'object' && typeof (t as ToolDefinition).name === 'string');
    this.lists.set(upstreamId, valid);
  }

  get(upstreamId: string): ToolDefinition[] | undefined {
    return this.lists.get(upstreamId);
  }
}
