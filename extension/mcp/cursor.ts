import type { GatewayDefinition } from './definitions.ts';

// Cursor: its MCP clients do not read VS Code's definition provider. Inside
// Cursor the extension registers each gateway with `vscode.cursor.mcp`
// (feature-detected; it exists only there), again whenever the token or an
// identity changes, and unregisters them on sign-out. Outside the editor,
// "Keygate: Copy Cursor Configuration" writes an mcp.json entry that names an
// environment variable for the token, never the token itself.

/** vscode.cursor.mcp, as Cursor documents it. */
export interface CursorMcpApi {
  registerServer(config: { name: string; server: { url: string; headers?: Record<string, string> } }): void;
  unregisterServer(serverName: string): void;
}

/** The environment variable the copied configuration reads the access token from. */
export const TOKEN_ENV = 'KEYGATE_TOKEN';
/** ... and, for gateways with client-held credentials, the X-Keygate-Credentials value. */
export const credentialsEnv = (gatewayId: string) => `KEYGATE_CREDENTIALS_${gatewayId.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;

/** The server name in Cursor: stable per gateway, safe as a JSON key and a tool prefix. */
export const cursorServerName = (gatewayId: string) => `keygate-${gatewayId.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;

/**
 * The `mcpServers` object for Cursor's mcp.json: one remote server per gateway,
 * its Authorization header taken from ${env:KEYGATE_TOKEN} when Cursor starts
 * it. `clientHeld` names the gateways with `storage: client` servers.
 */
export function cursorConfig(definitions: readonly GatewayDefinition[], clientHeld: ReadonlySet<string> = new Set()): { mcpServers: Record<string, { url: string; headers?: Record<string, string> }> } {
  const mcpServers: Record<string, { url: string; headers?: Record<string, string> }> = {};
  for (const d of definitions) {
    const headers: Record<string, string> = {};
    if (d.visibility === 'private' || clientHeld.has(d.gatewayId)) headers.Authorization = `Bearer \${env:${TOKEN_ENV}}`;
    if (clientHeld.has(d.gatewayId)) headers['X-Keygate-Credentials'] = `\${env:${credentialsEnv(d.gatewayId)}}`;
    mcpServers[cursorServerName(d.gatewayId)] = { url: d.uri, ...(Object.keys(headers).length && { headers }) };
  }
  return { mcpServers };
}

/**
 * Keeps Cursor's programmatic MCP servers in step with the gateways: each
 * sync registers every current one (with fresh headers) and unregisters those
 * that went away; clear() unregisters them all (sign-out).
 */
export class CursorRegistrar {
  private registered = new Set<string>();

  constructor(private readonly api: CursorMcpApi) {}

  sync(servers: readonly { gatewayId: string; url: string; headers: Record<string, string> }[]): void {
    const next = new Set<string>();
    for (const s of servers) {
      const name = cursorServerName(s.gatewayId);
      next.add(name);
      // Re-registering replaces the previous registration (and its headers).
      this.api.registerServer({ name, server: { url: s.url, headers: s.headers } });
    }
    for (const name of this.registered) if (!next.has(name)) this.api.unregisterServer(name);
    this.registered = next;
  }

  clear(): void {
    for (const name of this.registered) this.api.unregisterServer(name);
    this.registered = new Set();
  }

  get names(): string[] {
    return [...this.registered].sort();
  }
}
