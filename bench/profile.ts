// npm run bench:profile [-- PATH]: where the registry's CPU goes on one
// forwarding path, next to the lean gateway's (bench/lean-gateway.ts: the floor
// of a gateway that reads, judges and audits each call) on the same calls.
// Runs tools/call on PATH (raw | merged | raw-2025 | merged-2025 | per-user;
// default raw) and then through the lean gateway (same era), each for
// BENCH_DURATION seconds (default 10) after a BENCH_WARMUP warm-up (default 15
// s), each process's CPU profiled (every 100 µs) during its measured run only
// (bench/heap-probe.mjs). Prints each one's CPU per call read from /proc, and
// its profiled time per call by area (node internals, each dependency,
// Keygate's own code) and the functions whose self time per call the registry
// adds most over the lean gateway: what to optimise. (A profile counts wall
// time: how one process's time divides, not what it costs; docs/performance.md.)
// BENCH_CONNECTIONS sets the connections (10; 1: each call alone, every event
// of it on caches the upstream has just used). BENCH_PROFILE_OUT=DIR keeps the
// two profiles; BENCH_PERF=1 adds Linux perf's view (below);
// BENCH_UPSTREAM=canned runs against an upstream that answers at once
// (bench/canned-upstream.ts; raw and per-user only), the gateway flat out.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { connectionsFromEnv, cpuMicros, cpuProfile } from './process.ts';

const PATHS = ['raw', 'merged', 'raw-2025', 'merged-2025', 'per-user'] as const;
const path = (process.argv[2] ?? 'raw') as (typeof PATHS)[number];
if (!PATHS.includes(path)) {
  console.error(`usage: npm run bench:profile -- [${PATHS.join(' | ')}]`);
  process.exit(2);
}
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = connectionsFromEnv();
// Until V8 has settled: under --trace-opt the registry still optimised 142
// functions (and deoptimised 19) between 5 and 13 s of load, and 2-10 a window after.
const WARMUP = Number(process.env.BENCH_WARMUP ?? 15);
// BENCH_PERF=1: Linux perf records both processes too (the same runs), for
// what the V8 profile cannot see: V8's own runtime (inline caches that miss,
// objects in dictionary mode, map migrations), the garbage collector's
// threads, node's C++ and the kernel. JIT frames are named through
// --perf-basic-prof's /tmp/perf-PID.map (removed at the end).
const PERF = process.env.BENCH_PERF === '1';
if (PERF) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --perf-basic-prof`.trim();
// BENCH_UPSTREAM=canned (bench/canned-upstream.ts): the gateway runs flat out; stateless calls only.
if (process.env.BENCH_UPSTREAM === 'canned' && path !== 'raw' && path !== 'per-user') {
  console.error(`BENCH_UPSTREAM=canned answers stateless 2026-07-28 calls only: npm run bench:profile -- raw | per-user (not ${path})`);
  process.exit(2);
}
const { accept, apiKey, data, legacyBody, legacySession, mergedLegacyBody, mergedModernBody, modernBody, registry, registryUrl, token, lean, leanGateway, leanGatewayUrl, upstream, upstreamUrl } = await import('./setup.ts');

const viaGateway = `Bearer ${token}`;
const modern = { accept, 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' };
const legacy = { accept, 'content-type': 'application/json', 'mcp-protocol-version': '2025-11-25' };
type Target = [string, Record<string, string>, string];
async function targets(): Promise<[Target, Target]> {
  const leanModern: Target = [leanGatewayUrl, { ...modern, 'mcp-name': 'add', authorization: viaGateway }, modernBody];
  const leanLegacy = async (): Promise<Target> => [leanGatewayUrl, { ...legacy, authorization: viaGateway, 'mcp-session-id': await legacySession(upstreamUrl, `Bearer ${apiKey}`) }, legacyBody];
  const session = async (url: string) => ({ ...legacy, authorization: viaGateway, 'mcp-session-id': await legacySession(url, viaGateway) });
  switch (path) {
    case 'raw':
      return [[`${registryUrl}/mcp/bench/demo`, { ...modern, 'mcp-name': 'add', authorization: viaGateway }, modernBody], leanModern];
    case 'per-user':
      return [[`${registryUrl}/mcp/personal/demo`, { ...modern, 'mcp-name': 'add', authorization: viaGateway }, modernBody], leanModern];
    case 'merged':
      return [[`${registryUrl}/mcp/bench`, { ...modern, 'mcp-name': 'demo__add', authorization: viaGateway }, mergedModernBody], leanModern];
    case 'raw-2025':
      return [[`${registryUrl}/mcp/bench/demo`, await session(`${registryUrl}/mcp/bench/demo`), legacyBody], await leanLegacy()];
    case 'merged-2025':
      return [[`${registryUrl}/mcp/bench`, await session(`${registryUrl}/mcp/bench`), mergedLegacyBody], await leanLegacy()];
  }
}

/** Warm-up, then the measured run with the process's CPU profiled; `cpu`: its CPU per call read from /proc over that run. */
async function run([url, headers, body]: Target, child: ChildProcess): Promise<{ calls: number; rps: number; errors: number; profile: Profile; cpu: number }> {
  let next = 0;
  const requests = [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: body.replace('"id":1,', `"id":${++next},`) }) }];
  await autocannon({ url, method: 'POST', headers, body, connections: CONNECTIONS, duration: WARMUP, requests });
  const perf = PERF ? spawn('perf', ['record', '-q', '-F', '2999', '-g', '-o', perfData(child), '-p', String(child.pid)], { stdio: 'ignore' }) : undefined;
  const before = cpuMicros(child.pid!);
  const { result, profile } = await cpuProfile(child, () => autocannon({ url, method: 'POST', headers, body, connections: CONNECTIONS, duration: DURATION, requests }));
  const cpu = (cpuMicros(child.pid!) - before) / result.requests.total;
  if (perf) await new Promise((resolve) => (perf.once('exit', resolve), perf.kill('SIGINT')));
  return { calls: result.requests.total, rps: result.requests.average, errors: result.errors + result.non2xx, profile: profile as Profile, cpu };
}
const perfData = (child: ChildProcess) => join(data, `perf-${child.pid}.data`);

/** CPU per call by symbol (µs), from a perf recording of `child`. */
function perfSymbols(child: ChildProcess, calls: number): Map<string, number> {
  const report = spawnSync('perf', ['report', '-i', perfData(child), '--no-children', '--sort', 'sym', '--stdio', '-g', 'none'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).stdout;
  const total = Number(/Event count \(approx\.\): (\d+)/.exec(report)?.[1] ?? 0); // ns of CPU
  const bySymbol = new Map<string, number>();
  for (const line of report.split('\n')) {
    const m = /^\s*([\d.]+)%\s+\[.\]\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const symbol = m[2]!.replace(/\+0x[0-9a-f]+$/, '').replace(/file:\/\/\S*?\/(server|node_modules)\//, '$1/');
    bySymbol.set(symbol, (bySymbol.get(symbol) ?? 0) + (Number(m[1]) / 100) * (total / 1000 / calls));
  }
  return bySymbol;
}

const [gatewayTarget, leanTarget] = await targets();
const gateway = await run(gatewayTarget, registry.child);
const leanRun = await run(leanTarget, leanGateway.child);
await Promise.all([registry, lean, leanGateway, upstream].map(({ child }) => new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : (child.once('exit', resolve), child.kill('SIGTERM'))))));
const perfReports = PERF ? [perfSymbols(registry.child, gateway.calls), perfSymbols(leanGateway.child, leanRun.calls)] : undefined;
if (PERF) {
  // --perf-basic-prof's maps, and the V8 logs it leaves in the working directory.
  const pids = new Set([registry, lean, leanGateway, upstream].map(({ child }) => String(child.pid)));
  for (const pid of pids) rmSync(`/tmp/perf-${pid}.map`, { force: true });
  for (const file of readdirSync('.')) {
    const pid = /^isolate-0x[0-9a-f]+-(\d+)-v8\.log$/.exec(file)?.[1];
    if (pid !== undefined && pids.has(pid)) rmSync(file);
  }
}
rmSync(data, { recursive: true, force: true });

interface Profile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}
/** Self time per function and per area, in µs per call. */
function summarise(prof: Profile, calls: number): { busy: number; self: Map<string, number>; area: Map<string, number>; inclusive: Map<string, number> } {
  const byId = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = ({ functionName, url }: Profile['nodes'][number]['callFrame']) => `${functionName || '(anonymous)'}  ${url.replace(/^file:\/\/.*?\/(server)\//, '$1/')}`;
  const inclusive = new Map<string, number>();
  const self = new Map<string, number>();
  const area = new Map<string, number>();
  let busy = 0;
  const add = (map: Map<string, number>, key: string, v: number) => map.set(key, (map.get(key) ?? 0) + v);
  prof.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id)!;
    if (functionName === '(idle)' || functionName === '(program)') return;
    const micros = (prof.timeDeltas[i] ?? 0) / calls;
    busy += micros;
    const where = url.replace(/^file:\/\/.*?\/(node_modules\/)/, '$1').replace(/^file:\/\/.*?\/(server|bench|test)\//, '$1/');
    add(self, `${functionName || '(anonymous)'}  ${where}${where ? `:${lineNumber + 1}` : ''}`, micros);
    const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    add(area, !url ? functionName : url.startsWith('node:') ? 'node internals' : dep ? `dep ${dep}` : 'keygate', micros);
    // Inclusive: each of Keygate's functions on this sample's stack, once.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!;
      if (!frame.url.includes('/server/')) continue;
      const key = name(frame);
      if (!seen.has(key)) (seen.add(key), add(inclusive, key, micros));
    }
  });
  return { busy, self, area, inclusive };
}
// BENCH_PROFILE_OUT=DIR keeps both profiles (open them in Chrome DevTools or VS Code).
if (process.env.BENCH_PROFILE_OUT) {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(process.env.BENCH_PROFILE_OUT, { recursive: true });
  writeFileSync(`${process.env.BENCH_PROFILE_OUT}/registry-${path}.cpuprofile`, JSON.stringify(gateway.profile));
  writeFileSync(`${process.env.BENCH_PROFILE_OUT}/lean-gateway-${path}.cpuprofile`, JSON.stringify(leanRun.profile));
}
const g = summarise(gateway.profile, gateway.calls);
const l = summarise(leanRun.profile, leanRun.calls);

const us = (v: number) => `${v.toFixed(1).padStart(7)} µs`;
console.log(`\n${path}: ${gateway.rps.toFixed(0)} req/s (lean gateway ${leanRun.rps.toFixed(0)}), errors ${gateway.errors} / ${leanRun.errors}`);
console.log(`profiled time per call: registry ${us(g.busy)}, lean gateway ${us(l.busy)} (${(g.busy / l.busy).toFixed(2)}x)`);
// V8's profiler counts wall time between samples: time a process waits for a core is charged to whatever it was running.
// So the profile says how one process's time divides, and /proc what it costs (all threads, the profiler's own cost included).
console.log(`CPU per call (/proc):  registry ${us(gateway.cpu)}, lean gateway ${us(leanRun.cpu)} (${(gateway.cpu / leanRun.cpu).toFixed(2)}x)\n`);
console.log('by area             registry     lean gateway');
const areas = [...new Set([...g.area.keys(), ...l.area.keys()])].sort((a, b) => (g.area.get(b) ?? 0) - (g.area.get(a) ?? 0));
for (const k of areas.slice(0, 14)) console.log(`  ${k.padEnd(30)} ${us(g.area.get(k) ?? 0)} ${us(l.area.get(k) ?? 0)}`);
console.log('\nwhat the registry adds (self time per call, registry minus lean gateway):');
const keys = [...new Set([...g.self.keys(), ...l.self.keys()])];
const added = keys.map((k) => [k, (g.self.get(k) ?? 0) - (l.self.get(k) ?? 0)] as const).sort((a, b) => b[1] - a[1]);
for (const [k, v] of added.slice(0, 40)) console.log(`  ${us(v)}  ${k}`);
console.log("\nKeygate's functions, inclusive time per call (what each costs with everything it calls):");
for (const [k, v] of [...g.inclusive].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${us(v)}  ${k}`);
if (perfReports) {
  const [r, lg] = perfReports;
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  console.log(`\nperf (all threads, kernel included): registry ${us(sum(r!))}, lean gateway ${us(sum(lg!))} per call; what the registry adds, by symbol:`);
  const symbols = [...new Set([...r!.keys(), ...lg!.keys()])].map((k) => [k, (r!.get(k) ?? 0) - (lg!.get(k) ?? 0)] as const).sort((a, b) => b[1] - a[1]);
  for (const [k, v] of symbols.slice(0, 40)) console.log(`  ${us(v)}  ${k.slice(0, 120)}`);
}
