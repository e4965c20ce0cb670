// npm run bench: tools/call straight to the demo upstream, through the
// registry's /mcp/{gateway}/{server} (raw forwarding), and through
// /mcp/{gateway} (the merged endpoint: SDK server toward the client, pooled
// upstream session), measured in the same run, in both protocol eras. Prints
// requests/s, p50/p99 latency, their ratio, and the registry's CPU time per
// call (from /proc, so it counts only the registry process). Also: a per-user
// identity, a token-cache miss, 50 connections, the registry's heap after 10k
// and after 100k calls, and a last line saying which of issue 10's targets
// hold (against the lean proxy: throughput >= 0.95x, CPU/call <= 1.3x raw and
// 1.5x merged, p99 at most 2 ms above). The lean gateway (bench/lean-gateway.ts)
// is measured beside them: the least any gateway that reads, judges and audits
// each call costs in Node, so the registry's own share can be told apart.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { importJWK, type JWK, SignJWT } from 'jose';
import { connectionsFromEnv, cpuMicros, heapUsed } from './process.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const HEAP_CALLS = Number(process.env.BENCH_HEAP_CALLS ?? 100_000);
// The heap is read after 10,000 calls and again after HEAP_CALLS: the second must come after the first.
if (!(HEAP_CALLS > 10_000)) {
  console.error(`BENCH_HEAP_CALLS must be a number above 10,000 (the heap is compared after 10,000 calls and after BENCH_HEAP_CALLS), not ${process.env.BENCH_HEAP_CALLS}`);
  process.exit(2);
}
const CONNECTIONS = connectionsFromEnv();
/**
 * CPU per call is compared in interleaved rounds: each round runs every path
 * of an era (the lean proxy first among equals) for ROUND_SECONDS in turn, so
 * the lean proxy and a path are measured minutes apart at most, and each
 * ratio is the median of the per-round ratios. (A single run per row swung a
 * path's ratio to the lean proxy between 1.3x and 2.2x on this machine.)
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_SECONDS = Number(process.env.BENCH_ROUND_SECONDS ?? 4);
/** Seconds of load before each measured run (the first row measured 40 % more CPU than the same path later in the run after 2 s). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
if (process.env.BENCH_UPSTREAM === 'canned') {
  console.error('BENCH_UPSTREAM=canned is for npm run bench:profile -- raw | per-user: this bench needs a real MCP upstream (2025 sessions, the merged endpoint)');
  process.exit(2);
}
// Imported here, after the checks above: importing it starts the processes.
const { accept, apiKey, data, lean, leanGateway, leanGatewayUrl, leanUrl, legacyBody, legacySession, mergedLegacyBody, mergedModernBody, modernBody, registry, registryUrl, signedIn, token, upstream, upstreamUrl } = await import('./setup.ts');

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuPerCall?: number;
  /** The demo upstream's CPU per call: what bounds a row whose proxy is not busy. */
  upstreamCpuPerCall: number;
}

/**
 * Distinct valid access tokens, signed with the registry's own key (read from
 * its data dir) exactly as it signs them: each request of a run can carry a
 * token the registry has not seen, so each pays the signature check.
 */
async function mintTokens(count: number, claims: (i: number) => Record<string, unknown> = () => ({ client_id: 'bench' })): Promise<string[]> {
  const ring = JSON.parse(readFileSync(join(data, 'signing-keys.json'), 'utf8')) as { keys: { jwk: JWK; alg: string; retired_at?: number }[] };
  const active = ring.keys.find((k) => k.retired_at === undefined)!;
  const key = await importJWK(active.jwk, active.alg);
  const now = Math.floor(Date.now() / 1000);
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      new SignJWT({ scope: 'mcp:read mcp:write', ...claims(i) })
        .setProtectedHeader({ alg: active.alg, kid: active.jwk.kid!, typ: 'at+jwt' })
        .setIssuer(registryUrl)
        .setSubject('bench')
        .setAudience(registryUrl)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .setJti(`bench-${i}`)
        .sign(key),
    ),
  );
}

async function load(url: string, headers: Record<string, string>, body: string, pid?: number, tokens?: string[], connections = CONNECTIONS): Promise<Figures> {
  // Every request carries its own JSON-RPC id (a session's ids must be unique: an
  // SDK server pairs answers with requests by id), and either a distinct token
  // (every request a cache miss) or the one token in `headers` (every request a hit).
  let next = 0;
  const requests: autocannon.Request[] = [
    {
      setupRequest: (req: autocannon.Request) => {
        const n = next++;
        return { ...req, body: body.replace('"id":1,', `"id":${n + 1},`), ...(tokens && { headers: { ...req.headers, authorization: `Bearer ${tokens[n % tokens.length]}` } }) };
      },
    },
  ];
  // A warm-up (the same for every row: the JIT of a just-started process settles), then the measured run.
  await autocannon({ url, method: 'POST', headers, body, connections, duration: WARMUP, requests });
  const cpuBefore = pid ? cpuMicros(pid) : 0;
  const upstreamBefore = cpuMicros(upstream.child.pid!);
  const result = await autocannon({ url, method: 'POST', headers, body, connections, duration: DURATION, requests });
  const cpuAfter = pid ? cpuMicros(pid) : 0;
  const upstreamAfter = cpuMicros(upstream.child.pid!);
  const calls = result.requests.total;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    upstreamCpuPerCall: (upstreamAfter - upstreamBefore) / calls,
    ...(pid && { cpuPerCall: (cpuAfter - cpuBefore) / calls }),
  };
}

const rows: [string, Figures][] = [];
/** Per path: its CPU per call in each round, and that over the round's reference (its era's lean proxy at the same connections). */
const rounds = new Map<string, { cpu: number[]; ratio: number[]; reference: string | undefined }>();

interface RoundTarget {
  name: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  pid: number;
  connections?: number;
  /** The row this one is divided by (the lean proxy); none: it is a reference. */
  reference?: string;
}

/** ROUNDS rounds over `targets` (already warm), each starting one further along the list, so no path always runs first. */
async function cpuRounds(targets: RoundTarget[]): Promise<void> {
  for (let r = 0; r < ROUNDS; r++) {
    const cpu = new Map<string, number>();
    for (let i = 0; i < targets.length; i++) {
      const t = targets[(i + r) % targets.length]!;
      let next = 0;
      const requests = [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: t.body.replace('"id":1,', `"id":${1_000_000 * (r + 1) + ++next},`) }) }];
      const before = cpuMicros(t.pid);
      const result = await autocannon({ url: t.url, method: 'POST', headers: t.headers, body: t.body, connections: t.connections ?? CONNECTIONS, duration: ROUND_SECONDS, requests });
      if (result.errors + result.non2xx > 0) throw new Error(`${t.name}: ${result.errors + result.non2xx} errors in a CPU round`);
      cpu.set(t.name, (cpuMicros(t.pid) - before) / result.requests.total);
    }
    for (const t of targets) {
      const figures = rounds.get(t.name) ?? { cpu: [], ratio: [], reference: t.reference };
      figures.cpu.push(cpu.get(t.name)!);
      figures.ratio.push(cpu.get(t.name)! / cpu.get(t.reference ?? t.name)!);
      rounds.set(t.name, figures);
    }
  }
}
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const heap: { after10k?: number; after100k?: number } = {};
try {
  const direct = `Bearer ${apiKey}`;
  const viaGateway = `Bearer ${token}`;
  const gatewayUrl = `${registryUrl}/mcp/bench/demo`;
  const modern = { accept, 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'add' };

  rows.push(['2026-07-28 direct', await load(upstreamUrl, { ...modern, authorization: direct }, modernBody)]);
  rows.push(['2026-07-28 lean proxy', await load(leanUrl, { ...modern, authorization: direct }, modernBody, lean.child.pid)]);
  rows.push(['2026-07-28 lean gateway', await load(leanGatewayUrl, { ...modern, authorization: viaGateway }, modernBody, leanGateway.child.pid)]);
  rows.push(['2026-07-28 via gateway', await load(gatewayUrl, { ...modern, authorization: viaGateway }, modernBody, registry.child.pid)]);
  rows.push(['2026-07-28 per-user identity', await load(`${registryUrl}/mcp/personal/demo`, { ...modern, authorization: viaGateway }, modernBody, registry.child.pid)]);
  rows.push(['2026-07-28 lean proxy, 50 conns', await load(leanUrl, { ...modern, authorization: direct }, modernBody, lean.child.pid, undefined, 50)]);
  rows.push(['2026-07-28 via gateway, 50 conns', await load(gatewayUrl, { ...modern, authorization: viaGateway }, modernBody, registry.child.pid, undefined, 50)]);
  // Enough distinct tokens that none repeats within a run (about 1,000 calls/s at most here).
  const fresh = await mintTokens(Math.max(20_000, (DURATION + 2) * 2500));
  rows.push(['2026-07-28 gateway, token cache miss', await load(gatewayUrl, modern, modernBody, registry.child.pid, fresh)]);
  // The revocation check on a cache hit: the same call right before and right after 1,000 grants are
  // revoked (RFC 7009, over HTTP), so both rows run on an equally warm registry.
  rows.push(['2026-07-28 via gateway, 0 revocations', await load(gatewayUrl, { ...modern, authorization: viaGateway }, modernBody, registry.child.pid)]);
  const revocable = await mintTokens(1000, (i) => ({ client_id: signedIn.clientId, gid: `bench-grant-${i}` }));
  for (const t of revocable) {
    const res = await fetch(`${registryUrl}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: t, client_id: signedIn.clientId }) });
    if (res.status !== 200) throw new Error(`revoking a bench grant: ${res.status}`);
  }
  // Let the registry finish what the revocations left behind (store writes, audit lines, garbage) before measuring.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  rows.push(['2026-07-28 via gateway, 1k revocations', await load(gatewayUrl, { ...modern, authorization: viaGateway }, modernBody, registry.child.pid)]);
  const mergedUrl = `${registryUrl}/mcp/bench`;
  rows.push(['2026-07-28 merged /mcp/{gateway}', await load(mergedUrl, { ...modern, 'mcp-name': 'demo__add', authorization: viaGateway }, mergedModernBody, registry.child.pid)]);

  const directSession = await legacySession(upstreamUrl, direct);
  const gatewaySession = await legacySession(gatewayUrl, viaGateway);
  const legacy = { accept, 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25' };
  rows.push(['2025-11-25 direct', await load(upstreamUrl, { ...legacy, authorization: direct, 'mcp-session-id': directSession }, legacyBody)]);
  rows.push(['2025-11-25 lean proxy', await load(leanUrl, { ...legacy, authorization: direct, 'mcp-session-id': directSession }, legacyBody, lean.child.pid)]);
  rows.push(['2025-11-25 lean gateway', await load(leanGatewayUrl, { ...legacy, authorization: viaGateway, 'mcp-session-id': directSession }, legacyBody, leanGateway.child.pid)]);
  rows.push(['2025-11-25 via gateway', await load(gatewayUrl, { ...legacy, authorization: viaGateway, 'mcp-session-id': gatewaySession }, legacyBody, registry.child.pid)]);
  const mergedSession = await legacySession(mergedUrl, viaGateway);
  rows.push(['2025-11-25 merged /mcp/{gateway}', await load(mergedUrl, { ...legacy, authorization: viaGateway, 'mcp-session-id': mergedSession }, mergedLegacyBody, registry.child.pid)]);

  // CPU per call in interleaved rounds (every process above is warm by now).
  const r = registry.child.pid!;
  const modernLean = '2026-07-28 lean proxy';
  await cpuRounds([
    { name: modernLean, url: leanUrl, headers: { ...modern, authorization: direct }, body: modernBody, pid: lean.child.pid! },
    { name: '2026-07-28 lean gateway', url: leanGatewayUrl, headers: { ...modern, authorization: viaGateway }, body: modernBody, pid: leanGateway.child.pid!, reference: modernLean },
    { name: '2026-07-28 via gateway', url: gatewayUrl, headers: { ...modern, authorization: viaGateway }, body: modernBody, pid: r, reference: modernLean },
    { name: '2026-07-28 per-user identity', url: `${registryUrl}/mcp/personal/demo`, headers: { ...modern, authorization: viaGateway }, body: modernBody, pid: r, reference: modernLean },
    { name: '2026-07-28 merged /mcp/{gateway}', url: mergedUrl, headers: { ...modern, 'mcp-name': 'demo__add', authorization: viaGateway }, body: mergedModernBody, pid: r, reference: modernLean },
    { name: '2026-07-28 lean proxy, 50 conns', url: leanUrl, headers: { ...modern, authorization: direct }, body: modernBody, pid: lean.child.pid!, connections: 50 },
    { name: '2026-07-28 via gateway, 50 conns', url: gatewayUrl, headers: { ...modern, authorization: viaGateway }, body: modernBody, pid: r, connections: 50, reference: '2026-07-28 lean proxy, 50 conns' },
  ]);
  const legacyLean = '2025-11-25 lean proxy';
  await cpuRounds([
    { name: legacyLean, url: leanUrl, headers: { ...legacy, authorization: direct, 'mcp-session-id': directSession }, body: legacyBody, pid: lean.child.pid! },
    { name: '2025-11-25 lean gateway', url: leanGatewayUrl, headers: { ...legacy, authorization: viaGateway, 'mcp-session-id': directSession }, body: legacyBody, pid: leanGateway.child.pid!, reference: legacyLean },
    { name: '2025-11-25 via gateway', url: gatewayUrl, headers: { ...legacy, authorization: viaGateway, 'mcp-session-id': gatewaySession }, body: legacyBody, pid: r, reference: legacyLean },
    { name: '2025-11-25 merged /mcp/{gateway}', url: mergedUrl, headers: { ...legacy, authorization: viaGateway, 'mcp-session-id': mergedSession }, body: mergedLegacyBody, pid: r, reference: legacyLean },
  ]);

  // The heap (after a full collection) once 10k more calls have gone through, and once 100k have: flat means no leak per call.
  const calls = (amount: number) => autocannon({ url: gatewayUrl, method: 'POST', headers: { ...modern, authorization: viaGateway }, body: modernBody, connections: CONNECTIONS, amount });
  await calls(10_000);
  heap.after10k = await heapUsed(registry.child);
  await calls(HEAP_CALLS - 10_000);
  heap.after100k = await heapUsed(registry.child);
} finally {
  // Each process is gone (the registry flushes its audit log on SIGTERM) before its data directory is.
  await Promise.all([registry, lean, leanGateway, upstream].map(({ child }) => new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : (child.once('exit', resolve), child.kill('SIGTERM'))))));
  rmSync(data, { recursive: true, force: true });
}

console.log(`\ntools/call, ${CONNECTIONS} connections, ${DURATION} s per run, node ${process.version}\n`);
console.log('run                                   req/s     p50 ms  p99 ms  errors  proxy CPU/call');
for (const [name, f] of rows) {
  console.log(
    `${name.padEnd(36)} ${f.rps.toFixed(0).padStart(7)}  ${String(f.p50).padStart(7)} ${String(f.p99).padStart(7)}  ${String(f.errors).padStart(6)}  ${f.cpuPerCall === undefined ? '' : `${f.cpuPerCall.toFixed(0)} µs`}`,
  );
}
console.log(`upstream CPU/call (the demo upstream's, in each row): ${rows.map(([n, f]) => `${n} ${f.upstreamCpuPerCall.toFixed(0)} µs`).join('; ')}`);
for (const era of ['2026-07-28', '2025-11-25']) {
  const d = rows.find(([n]) => n === `${era} direct`)![1];
  const g = rows.find(([n]) => n === `${era} via gateway`)![1];
  const l = rows.find(([n]) => n === `${era} lean proxy`)![1];
  console.log(
    `${era}: gateway/direct throughput ${(g.rps / d.rps).toFixed(3)}x (lean proxy ${(l.rps / d.rps).toFixed(3)}x), ` +
      `p50 +${(g.p50 - d.p50).toFixed(1)} ms, p99 +${(g.p99 - d.p99).toFixed(1)} ms, ` +
      `registry CPU/call ${g.cpuPerCall!.toFixed(0)} µs = lean proxy ${l.cpuPerCall!.toFixed(0)} µs + ${(g.cpuPerCall! - l.cpuPerCall!).toFixed(0)} µs`,
  );
}
for (const era of ['2026-07-28', '2025-11-25']) {
  const d = rows.find(([n]) => n === `${era} direct`)![1];
  const g = rows.find(([n]) => n === `${era} via gateway`)![1];
  const m = rows.find(([n]) => n === `${era} merged /mcp/{gateway}`)![1];
  console.log(
    `${era} merged: throughput ${(m.rps / d.rps).toFixed(3)}x direct, ${(m.rps / g.rps).toFixed(3)}x raw; ` +
      `p50 +${(m.p50 - d.p50).toFixed(1)} ms, p99 +${(m.p99 - d.p99).toFixed(1)} ms over direct; registry CPU/call ${m.cpuPerCall!.toFixed(0)} µs (raw ${g.cpuPerCall!.toFixed(0)} µs)`,
  );
}
const hit = rows.find(([n]) => n === '2026-07-28 via gateway')![1];
const miss = rows.find(([n]) => n === '2026-07-28 gateway, token cache miss')![1];
console.log(`token cache: a miss (signature check) costs ${(miss.cpuPerCall! - hit.cpuPerCall!).toFixed(0)} µs CPU more per call than a hit; throughput ${(miss.rps / hit.rps).toFixed(3)}x of a hit`);
const plain = rows.find(([n]) => n === '2026-07-28 via gateway, 0 revocations')![1];
const checked = rows.find(([n]) => n === '2026-07-28 via gateway, 1k revocations')![1];
console.log(
  `revocation check on a cache hit: ${checked.cpuPerCall!.toFixed(0)} µs CPU per call with 1,000 grants revoked, ${plain.cpuPerCall!.toFixed(0)} µs with none ` +
    `(${(checked.cpuPerCall! - plain.cpuPerCall!).toFixed(0)} µs); throughput ${(checked.rps / plain.rps).toFixed(3)}x`,
);
const figures = (name: string) => rows.find(([n]) => n === name)![1];
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const heapRatio = heap.after100k! / heap.after10k!;
console.log(`heap after ${(10_000).toLocaleString('en')} calls ${mb(heap.after10k!)}, after ${HEAP_CALLS.toLocaleString('en')} ${mb(heap.after100k!)} (${heapRatio.toFixed(3)}x)`);

// Issue 10's targets, each path against the lean proxy of its era (measured in this run).
const verdicts: string[] = [];
for (const [path, lean, cpuLimit] of [
  ['2026-07-28 via gateway', '2026-07-28 lean proxy', 1.3],
  ['2026-07-28 per-user identity', '2026-07-28 lean proxy', 1.3],
  ['2026-07-28 via gateway, 50 conns', '2026-07-28 lean proxy, 50 conns', 1.3],
  ['2026-07-28 merged /mcp/{gateway}', '2026-07-28 lean proxy', 1.5],
  ['2025-11-25 via gateway', '2025-11-25 lean proxy', 1.3],
  ['2025-11-25 merged /mcp/{gateway}', '2025-11-25 lean proxy', 1.5],
] as const) {
  const g = figures(path);
  const l = figures(lean);
  const rps = g.rps / l.rps;
  const cpu = median(rounds.get(path)!.ratio);
  const p99 = g.p99 - l.p99;
  const missed = [rps < 0.95 && 'throughput', cpu > cpuLimit && 'CPU', p99 > 2 && 'p99'].filter(Boolean);
  verdicts.push(`${path}: ${rps.toFixed(2)}x throughput, ${cpu.toFixed(2)}x CPU (<= ${cpuLimit}), p99 ${p99 >= 0 ? '+' : ''}${p99} ms: ${missed.length ? `misses ${missed.join(', ')}` : 'holds'}`);
}
verdicts.push(`heap after ${HEAP_CALLS.toLocaleString('en')} calls vs 10,000: ${heapRatio.toFixed(2)}x: ${heapRatio <= 1.1 ? 'holds' : 'misses (more than 10 % growth)'}`);
// The floor (bench/lean-gateway.ts): what reading, parsing, a token-cache hit and an audit record cost per call at least.
for (const era of ['2026-07-28', '2025-11-25']) {
  const l = figures(`${era} lean proxy`);
  const floor = figures(`${era} lean gateway`);
  // CPU from the interleaved rounds (medians).
  const cpuOf = (name: string) => median(rounds.get(`${era} ${name}`)!.cpu);
  const floorCpu = cpuOf('lean gateway');
  console.log(
    `${era} lean gateway (the floor of a gateway that judges each call): ${floorCpu.toFixed(0)} µs CPU/call = ${median(rounds.get(`${era} lean gateway`)!.ratio).toFixed(2)}x the lean proxy, ` +
      `${(floor.rps / l.rps).toFixed(2)}x its throughput; the registry's raw path ${(cpuOf('via gateway') / floorCpu).toFixed(2)}x the floor's CPU, merged ${(cpuOf('merged /mcp/{gateway}') / floorCpu).toFixed(2)}x`,
  );
}
console.log(`\nCPU per call in ${ROUNDS} interleaved rounds of ${ROUND_SECONDS} s (median; ratio: the median of each round's ratio to its lean proxy):`);
for (const [name, { cpu, ratio, reference }] of rounds) {
  const spread = `${Math.min(...cpu).toFixed(0)}-${Math.max(...cpu).toFixed(0)} µs`;
  console.log(`  ${name.padEnd(36)} ${median(cpu).toFixed(0).padStart(5)} µs (${spread})${reference === undefined ? '' : `  ${median(ratio).toFixed(2)}x the lean proxy (${Math.min(...ratio).toFixed(2)}-${Math.max(...ratio).toFixed(2)})`}`);
}
console.log(`\ntargets (vs the lean proxy: throughput >= 0.95x, CPU/call <= 1.3x raw and 1.5x merged (interleaved rounds), p99 <= +2 ms; heap flat within 10 %):\n${verdicts.map((v) => `  ${v}`).join('\n')}`);

const failed = rows.filter(([, f]) => f.errors > 0);
if (failed.length) {
  console.error(`\nerrors in: ${failed.map(([n]) => n).join(', ')}`);
  process.exit(1);
}
