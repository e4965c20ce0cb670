import * as vscode from 'vscode';
import type { GatewayDefinitionProvider, SessionSource } from '../mcp/gateway-provider.ts';
import { WANTED_SCOPES } from '../auth/oauth-flow.ts';
import { MCP_PROVIDER_ID, PROVIDER_ID } from '../contributions.ts';

// VS Code adapter: the `keygate.gateways` MCP server definition provider
// (contributes.mcpServerDefinitionProviders) over GatewayDefinitionProvider.

/** Sessions through vscode.authentication, so the Accounts menu and access prompts stay VS Code's. */
export const vscodeSessions: SessionSource = {
  async silent() {
    const session = await vscode.authentication.getSession(PROVIDER_ID, [...WANTED_SCOPES], { silent: true });
    return session?.accessToken;
  },
  async interactive() {
    try {
      const session = await vscode.authentication.getSession(PROVIDER_ID, [...WANTED_SCOPES], { createIfNone: true });
      return session.accessToken;
    } catch {
      // Declined or cancelled: the server just does not start.
      return undefined;
    }
  },
};

export function registerMcpProvider(gateways: GatewayDefinitionProvider): vscode.Disposable {
  // The endpoint each offered definition stands for, exactly as the registry wrote it.
  const endpoints = new WeakMap<vscode.McpHttpServerDefinition, string>();
  return vscode.lm.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, {
    onDidChangeMcpServerDefinitions: gateways.onDidChange,
    async provideMcpServerDefinitions() {
      const definitions = await gateways.provide();
      return definitions.map((d) => {
        const server = new vscode.McpHttpServerDefinition(d.label, vscode.Uri.parse(d.uri, true), {}, d.version);
        endpoints.set(server, d.uri);
        return server;
      });
    },
    async resolveMcpServerDefinition(server) {
      if (!(server instanceof vscode.McpHttpServerDefinition)) return server;
      const headers = await gateways.resolveHeaders(endpoints.get(server) ?? server.uri.toString(true));
      if (!headers) return undefined;
      server.headers = { ...server.headers, ...headers };
      return server;
    },
  });
}
