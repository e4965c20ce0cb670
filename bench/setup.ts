// The processes every bench of the gateway's forwarding runs against, started
// when this module is imported: the demo upstream, the registry (a shared and a
// per-user server, and a merged gateway), the lean node:http proxy, the lean
// gateway, a signed-in user and the request bodies. Used by bench/forwarding.ts and bench/profile.ts.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signIn } from '../test/helpers/oauth.ts';
import { startProcess as start } from './process.ts';

export const apiKey = randomBytes(24).toString('base64url');
export const data = mkdtempSync(join(tmpdir(), 'keygate-bench-'));
/** BENCH_UPSTREAM=canned: an upstream that answers at once (bench/canned-upstream.ts), for stateless 2026-07-28 calls only. */
export const canned = process.env.BENCH_UPSTREAM === 'canned';
export const upstream = await start(['--import', 'tsx', canned ? 'bench/canned-upstream.ts' : 'bench/serve-upstream.ts'], { DEMO_API_KEY: apiKey }, /upstream (\S+)\n/);
export const upstreamUrl = upstream.match[1]!;
const configFile = join(data, 'bench.yaml');
writeFileSync(
  configFile,
  `oauth_server:
  builtin:
    users:
      - username: bench
        password_env: BENCH_PASSWORD
        scopes: [mcp:read, mcp:write]
upstreams:
  - id: demo
    url: ${upstreamUrl}
    credential: { type: bearer }
identities:
  - id: svc
    upstream: demo
    token_env: DEMO_API_KEY
gateways:
  - id: bench
    visibility: private
    servers:
      - upstream: demo
        identity: shared
        shared_identity: svc
      # A second server makes /mcp/bench the merged endpoint (tools named demo__add, second__add).
      - upstream: demo
        name: second
        identity: shared
        shared_identity: svc
  # The caller's own identity (saved through the self-service API below): its credential is decrypted on the path.
  - id: personal
    visibility: private
    servers:
      - upstream: demo
        identity: per_user
`,
);
// The registry runs compiled (dist/server) only when that build was made from the sources as they are: else through tsx,
// which costs more per call (docs/performance.md). Say so, rather than measure the slower one unawares.
const { compiledEntry } = (await import('../server/bin/compiled.mjs' as string)) as { compiledEntry(): string | undefined };
if (!compiledEntry()) console.error('bench: dist/server is missing or older than server/: the registry runs from the TypeScript sources through tsx (slower per call); npm run build:server first');
// Through heap-probe.mjs (under --expose-gc): the bench asks the registry for its heap after a full collection, or for a CPU profile.
export const registry = await start(
  ['--expose-gc', 'bench/heap-probe.mjs', 'server/bin/keygate-registry.mjs', '--config', configFile, '--port', '0', '--data-dir', data],
  { DEMO_API_KEY: apiKey, BENCH_PASSWORD: 'bench-password', KEYGATE_LOG_LEVEL: 'warn' },
  /listening on (\S+)\n/,
  { ipc: true },
);
export const registryUrl = registry.match[1]!;
export const lean = await start(['--import', 'tsx', 'bench/lean-proxy.ts'], { TARGET: upstreamUrl }, /listening on (\S+)\n/);
export const leanUrl = `${lean.match[1]!}/mcp`;
// The floor of a gateway that judges each call (bench/lean-gateway.ts): what the registry must cost at least.
export const leanGateway = await start(['--expose-gc', '--import', 'tsx', 'bench/heap-probe.mjs', 'bench/lean-gateway.ts'], { TARGET: upstreamUrl, UPSTREAM_TOKEN: apiKey }, /listening on (\S+)\n/, { ipc: true });
export const leanGatewayUrl = `${leanGateway.match[1]!}/mcp`;
export const signedIn = await signIn(registryUrl, { username: 'bench', password: 'bench-password' });
export const token = signedIn.tokens.access_token;
const saved = await fetch(`${registryUrl}/api/v1/me/identities`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ upstream: 'demo', token: apiKey }) });
if (saved.status !== 201) throw new Error(`saving the bench user's identity: ${saved.status} ${await saved.text()}`);

const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' } };
export const modernBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 2 }, _meta: meta } });
export const legacyBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 2 } } });
export const mergedModernBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'demo__add', arguments: { a: 1, b: 2 }, _meta: meta } });
export const mergedLegacyBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'demo__add', arguments: { a: 1, b: 2 } } });
export const accept = 'application/json, text/event-stream';

export async function legacySession(url: string, authorization: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization, accept, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }),
  });
  await res.text();
  const id = res.headers.get('mcp-session-id');
  if (!id) throw new Error(`no session from ${url}: ${res.status}`);
  await fetch(url, { method: 'POST', headers: { authorization, accept, 'content-type': 'application/json', 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' }, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
  return id;
}

