// BENCH_UPSTREAM=canned (bench/setup.ts): an upstream that answers every POST
// with the same JSON-RPC result, at once, without an MCP server. With it the
// gateway runs flat out (the demo upstream spends about 1.2 ms of CPU per
// call, so every proxy in front of it waits between calls, with cold caches):
// a second regime, in which the proxies' own work is most of each call. Only
// stateless 2026-07-28 calls make sense against it (no session, no
// initialize): `npm run bench:profile -- raw | per-user`.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const answer = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: '3' }], structuredContent: { sum: 3 } } }));
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length }).end(answer));
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`upstream http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp\n`));
process.once('SIGTERM', () => process.exit(0));
