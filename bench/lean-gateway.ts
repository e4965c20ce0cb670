// The floor of a gateway that keeps Keygate's promises per call, written as
// leanly as Node allows: bench/lean-proxy.ts plus only what every forwarded
// call must do there: read the body whole, bounded, and parse it (bad input is
// refused before anything is forwarded; the method and tool are judged and
// audited); look the bearer token up in a cache by its SHA-256 (no signature
// check: a cache hit); put the upstream's credential in place of the caller's
// token; keep an audit record (in memory, serialized in batches as the
// registry's file audit does). No policy, no catalog, no vault, no
// refusals. bench/forwarding.ts measures it in the same run as the registry:
// what the registry costs beyond it is its own code's, not the promise's.
import { hash } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

const target = new URL(process.env.TARGET!);
const upstreamToken = process.env.UPSTREAM_TOKEN!;
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const LIMIT = 4 * 1024 * 1024;
/** Any token is accepted after its first use (the point is the cost of a cache hit, not validation). */
const tokens = new Map<string, { subject: string; until: number }>();
let batch: string[] = [];
setInterval(() => {
  // What the file audit does with a batch, minus the disk.
  if (batch.length) void batch.join('\n').length;
  batch = [];
}, 200).unref();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= LIMIT) chunks.push(c);
  });
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const started = performance.now();
    let call: { method?: string; params?: { name?: string } } | undefined;
    try {
      call = JSON.parse(body.toString('utf8')) as typeof call;
    } catch {
      return void res.writeHead(400).end();
    }
    const token = (req.headers.authorization ?? '').slice(7);
    const key = hash('sha256', token, 'base64url');
    let principal = tokens.get(key);
    if (!principal) tokens.set(key, (principal = { subject: 'bench', until: Date.now() / 1000 + 3600 }));
    const headers = { ...req.headers, host: target.host, authorization: `Bearer ${upstreamToken}`, 'content-length': String(body.length) };
    const upstream = request({ hostname: target.hostname, port: target.port, path: target.pathname, method: req.method, headers, agent });
    upstream.on('response', (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.once('close', () => {
      batch.push(JSON.stringify({ time: new Date().toISOString(), subject: principal.subject, method: call?.method, name: call?.params?.name, status: res.statusCode, latency_ms: performance.now() - started }));
    });
    upstream.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`));
process.once('SIGTERM', () => process.exit(0));
