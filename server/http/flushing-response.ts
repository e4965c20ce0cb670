import type { ServerResponse } from 'node:http';
import type { toNodeHandler } from '@modelcontextprotocol/node';

type NodeResponse = Parameters<ReturnType<typeof toNodeHandler>>[1];

/**
 * A response for the MCP SDK's toNodeHandler that sends its headers at once:
 * the handler otherwise sends them with the first body chunk, and an idle SSE
 * stream (a 2025 GET) must reach the client before its first event.
 */
export function flushingResponse(res: ServerResponse): NodeResponse {
  return {
    writeHead: (status, headers) => (res.writeHead(status, headers), res.flushHeaders(), res),
    write: (chunk) => res.write(chunk),
    end: (chunk) => res.end(chunk),
    on: (event, listener) => res.on(event, listener),
    get destroyed() {
      return res.destroyed;
    },
  };
}
