import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { z } from 'zod';

/**
 * An upstream MCP server protected by OAuth, as SaaS MCP servers are: it
 * accepts only JWT access tokens its authorization server (a real
 * oidc-provider) issued for it (RFC 8707 audience = its URL), advertises that
 * server in RFC 9728 metadata, and answers 401 with resource_metadata
 * otherwise. Its `whoami` tool says whose token it got.
 */
export async function startOAuthUpstream(idpIssuer: string): Promise<{ url: string; seen: { sub: string | undefined; client: string | undefined; token: string }[]; rejected: number; close(): Promise<void> }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = `${origin}/mcp`;
  const jwks = createRemoteJWKSet(new URL(`${idpIssuer}/jwks`));
  const state = { seen: [] as { sub: string | undefined; client: string | undefined; token: string }[], rejected: 0 };

  const mcp = createMcpHandler((ctx) => {
    const s = new McpServer({ name: 'oauth-upstream', version: '1.0.0' });
    s.registerTool('whoami', { description: 'Whose token reached me', inputSchema: z.object({}) }, async () => ({
      content: [{ type: 'text', text: String(ctx.authInfo?.extra?.sub ?? 'nobody') }],
    }));
    return s;
  });
  const node = toNodeHandler({
    fetch: async (req: Request) => {
      const path = new URL(req.url).pathname;
      if (path === '/.well-known/oauth-protected-resource/mcp' || path === '/.well-known/oauth-protected-resource') {
        return Response.json({ resource: url, authorization_servers: [idpIssuer], bearer_methods_supported: ['header'] });
      }
      const challenge = { 'www-authenticate': `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"` };
      const token = /^Bearer (.+)$/.exec(req.headers.get('authorization') ?? '')?.[1];
      if (!token) {
        state.rejected++;
        return new Response('{"error":"unauthorized"}', { status: 401, headers: challenge });
      }
      try {
        const { payload } = await jwtVerify(token, jwks, { issuer: idpIssuer, audience: url });
        state.seen.push({ sub: payload.sub, client: typeof payload.client_id === 'string' ? payload.client_id : undefined, token });
        return mcp.fetch(req, { authInfo: { token, clientId: String(payload.client_id ?? ''), scopes: [], expiresAt: payload.exp, extra: { sub: payload.sub ?? `client:${String(payload.client_id)}` } } });
      } catch {
        state.rejected++;
        return new Response('{"error":"invalid_token"}', { status: 401, headers: challenge });
      }
    },
  });
  server.on('request', (req, res) => void node(req, res));
  return {
    url,
    get seen() {
      return state.seen;
    },
    get rejected() {
      return state.rejected;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
