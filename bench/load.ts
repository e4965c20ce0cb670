// npm run bench:load: 200 concurrent MCP clients (bench/load-clients.ts: half
// 2026-07-28 stateless calls, half 2025 sessions; half on a shared server,
// half on a per-user one, whose identities ten people saved through
// /api/v1/me/identities) for BENCH_LOAD_SECONDS (60): straight to the demo
// upstream, then over two registry instances on one PostgreSQL, then over one
// instance on lowdb, all in this run. Half-way through each registry run, 50
// browserless sign-ins (authorize, login form, consent, token) go through
// the deployment's proxy: none may fail, and the MCP clients' p99 while they
// run must stay within 2x of their p99 in the rest of the run. Prints the
// requests, the failures by reason, throughput, p50/p99 (gateway vs direct),
// the registries' event-loop delay (before and during the sign-ins), and
// each registry process's RSS and heap at start and end.
//
// npm run bench:load -- --soak: the same clients over the two instances for
// BENCH_SOAK_MINUTES (10). After a warm-up minute, then every minute, the
// clients pause and each registry's RSS and heap (after a full collection),
// open sockets and timers, and the upstream's 2025 sessions are read; at the
// end each must be within 10 % of its level after the warm-up.
//
// Everything runs on loopback and stops by itself: the processes, the
// PostgreSQL cluster and the temp dirs are removed on the way out.
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ChildProcess } from 'node:child_process';
import { startCluster, type Cluster } from '../test/helpers/cluster.ts';
import { signIn } from '../test/helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.ts';
import { Gate, percentile, runClient, type ClientSpec, type ClientStats } from './load-clients.ts';
import { ask, startProcess } from './process.ts';

const SOAK = process.argv.includes('--soak');
const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 60);
const SOAK_MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 10);
if (!(SECONDS >= 10)) {
  console.error(`BENCH_LOAD_SECONDS must be a number of seconds, at least 10 (the sign-ins start half-way), not ${process.env.BENCH_LOAD_SECONDS}`);
  process.exit(2);
}
if (!(SOAK_MINUTES >= 2)) {
  console.error(`BENCH_SOAK_MINUTES must be a number of minutes, at least 2 (one is the warm-up), not ${process.env.BENCH_SOAK_MINUTES}`);
  process.exit(2);
}
// BENCH_LOAD_STORES=postgres (or lowdb): only that deployment after the direct run (a shorter run while investigating).
const STORES = (process.env.BENCH_LOAD_STORES ?? 'postgres,lowdb').split(',') as ('postgres' | 'lowdb')[];
if (STORES.some((s) => s !== 'postgres' && s !== 'lowdb')) {
  console.error(`BENCH_LOAD_STORES is a comma-separated list of postgres and lowdb, not ${process.env.BENCH_LOAD_STORES}`);
  process.exit(2);
}
const CLIENTS = 200;
const SIGN_INS = 50;
const USERS = 10;
// Before each measured run: the clients open their connections and sessions, and their calls are checked but not timed.
const WARMUP_SECONDS = 5;

const apiKey = randomBytes(24).toString('base64url');
const personalPrefix = 'personal-';
const password = randomBytes(12).toString('base64url');
const users = Array.from({ length: USERS }, (_, i) => ({ username: `load${i}`, password }));
const personalKeys = users.map((u) => `${personalPrefix}${u.username}-${randomBytes(8).toString('hex')}`);

interface Memory {
  rss: number;
  heapUsed: number;
}
interface LoopDelay {
  maxMs: number;
  p99Ms: number;
}
interface Deployment {
  name: string;
  cluster: Cluster;
  tokens: string[];
  probes: ChildProcess[];
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const ms = (x: number) => `${x.toFixed(1)} ms`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups: (() => Promise<unknown>)[] = [];
// The machine's load before the bench starts its processes (other work on it skews every figure).
const loadAtStart = loadavg().map((x) => x.toFixed(1)).join(' ');
let exitCode = 0;

function registryConfig(store: 'postgres' | 'lowdb', upstreamUrl: string): Record<string, unknown> {
  return {
    ...(store === 'postgres' && { storage: { type: 'postgres' }, vault: { key_env: 'VAULT_KEY' } }),
    oauth_server: { builtin: { users: users.map((u) => ({ username: u.username, password_env: 'LOAD_PASSWORD', scopes: ['mcp:read', 'mcp:write'] })) } },
    upstreams: [{ id: 'demo', url: upstreamUrl, credential: { type: 'bearer' } }],
    identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_API_KEY' }],
    gateways: [
      { id: 'shared', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] },
      { id: 'personal', visibility: 'private', servers: [{ upstream: 'demo', identity: 'per_user' }] },
    ],
  };
}

/** The registries, their people signed in (through the proxy) with their identities saved. */
async function deploy(store: 'postgres' | 'lowdb', upstreamUrl: string, pg: TestPostgres): Promise<Deployment> {
  const instances = store === 'postgres' ? 2 : 1;
  const env = {
    DEMO_API_KEY: apiKey,
    LOAD_PASSWORD: password,
    KEYGATE_LOG_LEVEL: 'warn',
    ...(store === 'postgres' && { VAULT_KEY: randomBytes(32).toString('base64'), KEYGATE_DATABASE_URL: await pg.createDatabase() }),
  };
  const cluster = await startCluster(registryConfig(store, upstreamUrl), env, { instances, probe: true });
  cleanups.push(() => cluster.close());
  const tokens: string[] = [];
  for (const [i, user] of users.entries()) {
    const { tokens: t } = await signIn(cluster.url, user);
    tokens.push(t.access_token);
    const saved = await fetch(`${cluster.url}/api/v1/me/identities`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ upstream: 'demo', token: personalKeys[i] }),
    });
    if (saved.status !== 201) throw new Error(`saving ${user.username}'s identity: ${saved.status} ${await saved.text()}`);
  }
  const name = store === 'postgres' ? `${instances} instances, PostgreSQL` : '1 instance, lowdb';
  return { name, cluster, tokens, probes: cluster.instances.map((x) => x.process.child) };
}

/** The 200 clients: era alternating, then shared/per-user; people in turn. */
function specs(target: { bases: string[]; shared: string; personal: string; authorization: (server: 'shared' | 'per-user', user: number) => string }): ClientSpec[] {
  return Array.from({ length: CLIENTS }, (_, i) => {
    const server = Math.floor(i / 2) % 2 === 0 ? 'shared' : 'per-user';
    return {
      era: i % 2 === 0 ? '2026-07-28' : '2025-11-25',
      server,
      bases: target.bases,
      path: server === 'shared' ? target.shared : target.personal,
      authorization: target.authorization(server, i % USERS),
    };
  });
}

interface SignInWindow {
  from: number;
  to: number;
  failures: Map<string, number>;
  before: LoopDelay[];
  during: LoopDelay[];
}

interface Run {
  name: string;
  stats: ClientStats[];
  seconds: number;
  /** The event-loop delay of this process, where the clients run: a stalled load generator delays every call it times. */
  clientLoop: LoopDelay;
  start?: Memory[];
  end?: Memory[];
  signIns?: SignInWindow;
}

/** The clients for `seconds`; with a deployment, 50 sign-ins half-way through. */
async function run(name: string, clients: ClientSpec[], seconds: number, deployment?: Deployment): Promise<Run> {
  const memory = () => Promise.all((deployment?.probes ?? []).map((p) => ask<Memory>(p, 'heap')));
  const startMemory = deployment && (await memory());
  const own = monitorEventLoopDelay({ resolution: 10 });
  own.enable();
  const start = performance.now();
  const measureFrom = WARMUP_SECONDS * 1000;
  const end = start + measureFrom + seconds * 1000;
  const stats = Promise.all(clients.map((spec, index) => runClient(spec, start, () => performance.now() >= end, { index, measureFrom })));
  let signIns: SignInWindow | undefined;
  if (deployment) {
    await sleep(measureFrom);
    await Promise.all(deployment.probes.map((p) => ask(p, 'loop-start')));
    await sleep(start + measureFrom + (seconds * 1000) / 2 - performance.now());
    const before = await Promise.all(deployment.probes.map((p) => ask<LoopDelay>(p, 'loop-stop')));
    await Promise.all(deployment.probes.map((p) => ask(p, 'loop-start')));
    const from = performance.now() - start;
    const failures = new Map<string, number>();
    await Promise.all(
      Array.from({ length: SIGN_INS }, (_, i) =>
        signIn(deployment.cluster.url, users[i % USERS]!).catch((err: Error) => {
          const reason = err.message.split('\n')[0]!.slice(0, 120);
          failures.set(reason, (failures.get(reason) ?? 0) + 1);
        }),
      ),
    );
    const to = performance.now() - start;
    const during = await Promise.all(deployment.probes.map((p) => ask<LoopDelay>(p, 'loop-stop')));
    signIns = { from, to, failures, before, during };
    if (to > measureFrom + seconds * 1000) console.error(`${name}: the sign-ins ended ${(to / 1000).toFixed(1)} s into a run of ${WARMUP_SECONDS + seconds} s, after the clients stopped: raise BENCH_LOAD_SECONDS`);
  }
  const result = await stats;
  own.disable();
  const elapsed = (performance.now() - start) / 1000 - WARMUP_SECONDS;
  return { name, stats: result, seconds: elapsed, clientLoop: { maxMs: own.max / 1e6, p99Ms: own.percentile(99) / 1e6 }, start: startMemory, end: deployment && (await memory()), signIns };
}

function latencies(stats: ClientStats[], keep: (s: ClientStats) => boolean = () => true, window?: (at: number) => boolean): number[] {
  return stats
    .filter(keep)
    .flatMap((s) => s.samples.filter((x) => !window || window(x.at)).map((x) => x.ms))
    .sort((a, b) => a - b);
}

function failuresOf(stats: ClientStats[]): Map<string, number> {
  const all = new Map<string, number>();
  for (const s of stats) for (const [reason, n] of s.failures) all.set(reason, (all.get(reason) ?? 0) + n);
  return all;
}

const GROUPS: [string, (s: ClientStats) => boolean][] = [
  ['all', () => true],
  ['2026-07-28 shared', (s) => s.spec.era === '2026-07-28' && s.spec.server === 'shared'],
  ['2026-07-28 per-user', (s) => s.spec.era === '2026-07-28' && s.spec.server === 'per-user'],
  ['2025-11-25 shared', (s) => s.spec.era === '2025-11-25' && s.spec.server === 'shared'],
  ['2025-11-25 per-user', (s) => s.spec.era === '2025-11-25' && s.spec.server === 'per-user'],
];

function report(runs: Run[]): void {
  const direct = runs[0]!;
  console.log(
    `\n${CLIENTS} MCP clients (tools/call, raw HTTP, one keep-alive connection each), ${SECONDS} s measured per run after ${WARMUP_SECONDS} s of warm-up, node ${process.version}, ` +
      `${availableParallelism()} CPUs, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} (at the start: ${loadAtStart})\n`,
  );
  for (const r of runs) {
    const ok = r.stats.reduce((n, s) => n + s.samples.length, 0);
    const failures = failuresOf(r.stats);
    const failed = [...failures.values()].reduce((a, b) => a + b, 0);
    if (failed > 0) exitCode = 1;
    console.log(`${r.name}: ${ok + failed} requests, ${failed} failed${failed ? ` (${[...failures].map(([k, n]) => `${n} ${k}`).join('; ')})` : ''}, ${(ok / r.seconds).toFixed(0)} req/s${r === direct ? '' : ` (${(ok / r.seconds / (direct.stats.reduce((n, s) => n + s.samples.length, 0) / direct.seconds)).toFixed(2)}x direct)`}`);
    for (const [group, keep] of GROUPS) {
      const l = latencies(r.stats, keep);
      const d = latencies(direct.stats, keep);
      const vs = r === direct ? '' : `   vs direct: p50 ${(percentile(l, 50) / percentile(d, 50)).toFixed(2)}x, p99 ${(percentile(l, 99) / percentile(d, 99)).toFixed(2)}x`;
      console.log(`  ${group.padEnd(22)} ${String(l.length).padStart(8)} calls  p50 ${ms(percentile(l, 50)).padStart(9)}  p99 ${ms(percentile(l, 99)).padStart(9)}${vs}`);
    }
    console.log(`  the clients' own event-loop delay: max ${ms(r.clientLoop.maxMs)}, p99 ${ms(r.clientLoop.p99Ms)}`);
    if (r.start && r.end) {
      r.start.forEach((m, i) => console.log(`  registry ${i}: RSS ${mb(m.rss)} -> ${mb(r.end![i]!.rss)}, heap (after a full GC) ${mb(m.heapUsed)} -> ${mb(r.end![i]!.heapUsed)}`));
    }
    if (r.signIns) {
      const w = r.signIns;
      const inWindow = (at: number) => at >= w.from && at <= w.to;
      const during = latencies(r.stats, () => true, inWindow);
      const outside = latencies(r.stats, () => true, (at) => !inWindow(at));
      const failedSignIns = [...w.failures.values()].reduce((a, b) => a + b, 0);
      const ratio = percentile(during, 99) / percentile(outside, 99);
      const holds = failedSignIns === 0 && ratio <= 2;
      if (!holds) exitCode = 1;
      console.log(
        `  ${SIGN_INS} sign-ins during the load: ${SIGN_INS - failedSignIns} done, ${failedSignIns} failed${failedSignIns ? ` (${[...w.failures].map(([k, n]) => `${n} ${k}`).join('; ')})` : ''}, in ${((w.to - w.from) / 1000).toFixed(1)} s; ` +
          `MCP p99 during them ${ms(percentile(during, 99))} (${during.length} calls) vs ${ms(percentile(outside, 99))} without (${outside.length} calls): ${ratio.toFixed(2)}x (<= 2x: ${holds ? 'holds' : 'misses'})`,
      );
      w.during.forEach((d, i) => console.log(`  registry ${i} event-loop delay: max ${ms(w.before[i]!.maxMs)}, p99 ${ms(w.before[i]!.p99Ms)} before the sign-ins; max ${ms(d.maxMs)}, p99 ${ms(d.p99Ms)} during them`));
    }
  }
}

async function load(upstreamUrl: string, pg: TestPostgres): Promise<void> {
  const url = new URL(upstreamUrl);
  const runs: Run[] = [];
  runs.push(
    await run(
      'direct to the upstream',
      specs({ bases: [url.origin], shared: url.pathname, personal: url.pathname, authorization: (server, user) => `Bearer ${server === 'shared' ? apiKey : personalKeys[user]}` }),
      SECONDS,
    ),
  );
  for (const store of STORES) {
    const deployment = await deploy(store, upstreamUrl, pg);
    const clients = specs({
      bases: deployment.cluster.instances.map((x) => x.url),
      shared: '/mcp/shared/demo',
      personal: '/mcp/personal/demo',
      authorization: (_, user) => `Bearer ${deployment.tokens[user]}`,
    });
    runs.push(await run(`via the gateway, ${deployment.name}`, clients, SECONDS, deployment));
    // What the registries logged at warn or above (KEYGATE_LOG_LEVEL=warn): the reasons behind failed calls.
    const logged = deployment.cluster.logs().split('\n').filter((line) => line.trim() !== '');
    if (logged.length) console.error(`${deployment.name}: the registries logged ${logged.length} lines, the first ones:\n${[...new Set(logged)].slice(0, 8).join('\n')}`);
    await cleanups.pop()!(); // this deployment's cluster
  }
  report(runs);
}

interface SoakSample {
  minute: number;
  memory: Memory[];
  sockets: number[];
  timers: number[];
  upstreamSessions: number;
}

async function soak(upstreamUrl: string, pg: TestPostgres, upstream: ChildProcess): Promise<void> {
  const deployment = await deploy('postgres', upstreamUrl, pg);
  const clients = specs({ bases: deployment.cluster.instances.map((x) => x.url), shared: '/mcp/shared/demo', personal: '/mcp/personal/demo', authorization: (_, user) => `Bearer ${deployment.tokens[user]}` });
  const gate = new Gate();
  const start = performance.now();
  let stopped = false;
  const running = Promise.all(clients.map((spec, index) => runClient(spec, start, () => stopped, { gate, index })));
  const samples: SoakSample[] = [];
  async function sample(): Promise<void> {
    await gate.close(); // every client between requests
    const memory = await Promise.all(deployment.probes.map((p) => ask<Memory>(p, 'heap')));
    const handles = await Promise.all(deployment.probes.map((p) => ask<{ handles: Record<string, number>; timers: number }>(p, 'handles')));
    const { sessions } = await ask<{ sessions: number }>(upstream, 'sessions');
    gate.reopen();
    const s = { minute: (performance.now() - start) / 60_000, memory, sockets: handles.map((h) => h.handles.Socket ?? 0), timers: handles.map((h) => h.timers), upstreamSessions: sessions };
    samples.push(s);
    console.log(
      `${s.minute.toFixed(1).padStart(5)} min: ${s.memory.map((m, i) => `registry ${i} RSS ${mb(m.rss)} heap ${mb(m.heapUsed)} sockets ${s.sockets[i]} timers ${s.timers[i]}`).join('; ')}; upstream 2025 sessions ${s.upstreamSessions}`,
    );
  }
  console.log(`soak: ${CLIENTS} MCP clients over ${deployment.name} for ${SOAK_MINUTES} min, node ${process.version}, ${availableParallelism()} CPUs, load average ${loadAtStart}; sampled (clients paused) after the warm-up minute, then every minute`);
  for (let minute = 1; minute <= SOAK_MINUTES; minute++) {
    await sleep(start + minute * 60_000 - performance.now());
    await sample();
  }
  stopped = true;
  const stats = await running;
  const ok = stats.reduce((n, s) => n + s.samples.length, 0);
  const failures = failuresOf(stats);
  const failed = [...failures.values()].reduce((a, b) => a + b, 0);
  const all = latencies(stats);
  console.log(`\n${ok + failed} requests, ${failed} failed${failed ? ` (${[...failures].map(([k, n]) => `${n} ${k}`).join('; ')})` : ''}, ${(ok / ((performance.now() - start) / 1000)).toFixed(0)} req/s, p50 ${ms(percentile(all, 50))}, p99 ${ms(percentile(all, 99))}`);

  const warm = samples[0]!;
  const last = samples[samples.length - 1]!;
  const missed: string[] = [];
  const within = (what: string, a: number, b: number, show: (x: number) => string) => {
    const ratio = b / a;
    const ok = b <= a * 1.1;
    console.log(`${what}: ${show(a)} after the warm-up, ${show(b)} at the end (${ratio.toFixed(3)}x): ${ok ? 'holds' : 'grew more than 10 %'}`);
    if (!ok) missed.push(what);
  };
  deployment.probes.forEach((_, i) => {
    within(`registry ${i} RSS`, warm.memory[i]!.rss, last.memory[i]!.rss, mb);
    within(`registry ${i} heap`, warm.memory[i]!.heapUsed, last.memory[i]!.heapUsed, mb);
    within(`registry ${i} open sockets`, warm.sockets[i]!, last.sockets[i]!, String);
    within(`registry ${i} timers`, Math.max(1, warm.timers[i]!), last.timers[i]!, String);
  });
  within('upstream 2025 sessions', warm.upstreamSessions, last.upstreamSessions, String);
  if (failed > 0) missed.push('failed requests');
  if (missed.length) exitCode = 1;
  console.log(`\nsoak verdict (${SOAK_MINUTES} min, end within 10 % of the level after the warm-up minute, no failed request): ${missed.length ? `misses: ${missed.join(', ')}` : 'holds'}`);
}

try {
  const pg = await startPostgres({ durable: true });
  cleanups.push(() => pg.stop());
  const upstream = await startProcess(['--import', 'tsx', 'bench/serve-upstream.ts'], { DEMO_API_KEY: apiKey, DEMO_PERSONAL_PREFIX: personalPrefix }, /upstream (\S+)\n/, { ipc: true });
  cleanups.push(() => new Promise((resolve) => (upstream.child.exitCode !== null ? resolve(undefined) : (upstream.child.once('exit', resolve), upstream.child.kill('SIGTERM')))));
  if (SOAK) await soak(upstream.match[1]!, pg, upstream.child);
  else await load(upstream.match[1]!, pg);
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => console.error('cleaning up:', err));
}
process.exit(exitCode);
