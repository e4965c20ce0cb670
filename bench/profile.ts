// npm run bench:profile [-- PATH]: where the registry's CPU goes on one
// forwarding path, next to the lean gateway's (bench/lean-gateway.ts: the floor
// of a gateway that reads, judges and audits each call) on the same calls.
// Runs tools/call on PATH (raw | merged | raw-2025 | merged-2025 | per-user;
// default raw) and then through the lean gateway (same era), each for
// BENCH_DURATION seconds (default 10) after a 2 s warm-up, each process's CPU
// profiled during its measured run only (bench/heap-probe.mjs). Prints each one's profiled CPU per call by area (node
// internals, each dependency, Keygate's own code) and the functions whose self
// time per call the registry adds most over the lean gateway: what to optimise.
import { rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { cpuProfile } from './process.ts';

const PATHS = ['raw', 'merged', 'raw-2025', 'merged-2025', 'per-user'] as const;
const path = (process.argv[2] ?? 'raw') as (typeof PATHS)[number];
if (!PATHS.includes(path)) {
  console.error(`usage: npm run bench:profile -- [${PATHS.join(' | ')}]`);
  process.exit(2);
}
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
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

/** Warm-up, then the measured run with the process's CPU profiled. */
async function run([url, headers, body]: Target, child: ChildProcess): Promise<{ calls: number; rps: number; errors: number; profile: Profile }> {
  let next = 0;
  const requests = [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: body.replace('"id":1,', `"id":${++next},`) }) }];
  await autocannon({ url, method: 'POST', headers, body, connections: 10, duration: 2, requests });
  const { result, profile } = await cpuProfile(child, () => autocannon({ url, method: 'POST', headers, body, connections: 10, duration: DURATION, requests }));
  return { calls: result.requests.total, rps: result.requests.average, errors: result.errors + result.non2xx, profile: profile as Profile };
}

const [gatewayTarget, leanTarget] = await targets();
const gateway = await run(gatewayTarget, registry.child);
const leanRun = await run(leanTarget, leanGateway.child);
await Promise.all([registry, lean, leanGateway, upstream].map(({ child }) => new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : (child.once('exit', resolve), child.kill('SIGTERM'))))));
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
const g = summarise(gateway.profile, gateway.calls);
const l = summarise(leanRun.profile, leanRun.calls);

const us = (v: number) => `${v.toFixed(1).padStart(7)} µs`;
console.log(`\n${path}: ${gateway.rps.toFixed(0)} req/s (lean gateway ${leanRun.rps.toFixed(0)}), errors ${gateway.errors} / ${leanRun.errors}`);
console.log(`profiled CPU per call: registry ${us(g.busy)}, lean gateway ${us(l.busy)} (${(g.busy / l.busy).toFixed(2)}x)\n`);
console.log('by area             registry     lean gateway');
const areas = [...new Set([...g.area.keys(), ...l.area.keys()])].sort((a, b) => (g.area.get(b) ?? 0) - (g.area.get(a) ?? 0));
for (const k of areas.slice(0, 14)) console.log(`  ${k.padEnd(30)} ${us(g.area.get(k) ?? 0)} ${us(l.area.get(k) ?? 0)}`);
console.log('\nwhat the registry adds (self time per call, registry minus lean gateway):');
const keys = [...new Set([...g.self.keys(), ...l.self.keys()])];
const added = keys.map((k) => [k, (g.self.get(k) ?? 0) - (l.self.get(k) ?? 0)] as const).sort((a, b) => b[1] - a[1]);
for (const [k, v] of added.slice(0, 40)) console.log(`  ${us(v)}  ${k}`);
console.log("\nKeygate's functions, inclusive time per call (what each costs with everything it calls):");
for (const [k, v] of [...g.inclusive].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${us(v)}  ${k}`);
