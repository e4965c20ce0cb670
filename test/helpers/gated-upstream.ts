import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';

/**
 * A real MCP server whose `hold` tool sends one progress notification and then
 * waits until the test calls `release()`. A gateway that buffered responses
 * would never let the notification through before the result: the test would
 * hang instead of passing.
 */
export async function startGatedUpstream(): Promise<{ url: string; release(): void; close(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'gated', version: '1.0.0' });
    server.registerTool('hold', { description: 'progress, then wait for the test', inputSchema: z.object({}) }, async (_args, ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken;
      if (progressToken !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: 1, total: 2 } });
      await released;
      return { content: [{ type: 'text', text: 'released' }] };
    });
    return server;
  });
  const node = toNodeHandler(handler);
  const server = createServer((req, res) => void node(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    release,
    async close() {
      release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
