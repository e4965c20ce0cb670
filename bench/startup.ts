// npm run bench:startup [-- --runs N] [-- --before REV]: how long the bin takes
// to start, measured from outside as a person waits for it: every CLI command
// from spawn to exit, the registry on the embedded default from spawn to its
// first 200 on /healthz (through `node server/bin/keygate-registry.mjs` and
// through `npm start`, on a fresh and on an existing data dir). Each runs in a
// copy of the checkout, compiled (dist/server, as `npm install` leaves it) and
// from the sources through tsx (as after an edit, before a build); --before
// adds the sources of a git revision (the figures before a change). Prints the
// minimum and median of N runs per row (after one unmeasured run), the median
// CPU time of the bin's process (less at the mercy of the machine's load), and
// whether the targets hold: every CLI command < 300 ms, the registry < 1 s.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { copyCheckout, type Checkout } from '../test/helpers/checkout.ts';
import { CAROL, startControlFixture } from '../test/helpers/control.ts';
import { signInAdmin } from '../test/helpers/oauth.ts';

const CLI_TARGET_MS = 300;
const REGISTRY_TARGET_MS = 1000;

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, before: { type: 'string' } } });
const RUNS = Number(values.runs);
const work = mkdtempSync(join(tmpdir(), 'keygate-bench-startup-'));

interface Variant {
  label: string;
  checkout: Checkout;
  /** TMPDIR for the child: a fresh one per run empties tsx's cache (cold). */
  coldTsxCache?: boolean;
}

/** Where the runs of the row being measured write their CPU time (cpu-at-exit.mjs). */
let cpuFile = '';
const CPU_PROBE = ['--import', fileURLToPath(new URL('cpu-at-exit.mjs', import.meta.url))];

function childEnv(variant: Variant, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tsxTmp = variant.coldTsxCache ? mkdtempSync(join(work, 'tmp-')) : undefined;
  return { ...process.env, KEYGATE_CREDENTIALS: join(work, 'no-credentials.json'), KEYGATE_BENCH_CPU_FILE: cpuFile, ...env, ...(tsxTmp && { TMPDIR: tsxTmp }) };
}

/** Milliseconds from spawn to exit of `node …argv`, which must succeed. */
function timeNode(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, argv, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`)))),
  );
}

/** Milliseconds from spawn to exit of one CLI command. */
function timeCommand(variant: Variant, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return timeNode([...CPU_PROBE, variant.checkout.bin, ...args], variant.checkout.root, childEnv(variant, env));
}

function healthz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
  });
}

/** Milliseconds from spawn to the first 200 on /healthz of a registry on the embedded default; stopped after. */
async function timeRegistry(variant: Variant, viaNpm: boolean, dataDir: string): Promise<number> {
  const args = ['--port', '0', '--data-dir', dataDir];
  const started = performance.now();
  // npm start runs the bin through a shell: a process group of its own, stopped as a whole.
  const child = viaNpm
    ? spawn('npm', ['start', '--silent', '--', ...args], { cwd: variant.checkout.root, env: childEnv(variant, {}), stdio: ['ignore', 'pipe', 'ignore'], detached: true })
    : spawn(process.execPath, [...CPU_PROBE, variant.checkout.bin, ...args], { cwd: variant.checkout.root, env: childEnv(variant, {}), stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    let out = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      void exited.then(() => reject(new Error(`the registry exited before listening: ${out}`)));
    });
    while (!(await healthz(port))) await new Promise((r) => setTimeout(r, 5));
    return performance.now() - started;
  } finally {
    if (viaNpm) process.kill(-child.pid!, 'SIGTERM');
    else child.kill('SIGTERM');
    await exited;
  }
}

const rows: string[][] = [];

interface Figures {
  min: number;
  median: number;
  /** The median CPU time of the bin's process (all its threads), where it was measured. */
  cpu?: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function measure(run: () => Promise<number>): Promise<Figures> {
  cpuFile = join(work, `cpu-${rows.length}.txt`);
  writeFileSync(cpuFile, '');
  await run(); // unmeasured: the OS's file cache, tsx's cache
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await run());
  const cpu = readFileSync(cpuFile, 'utf8').split('\n').filter(Boolean).map(Number).slice(1);
  return { min: Math.min(...times), median: median(times), ...(cpu.length > 0 && { cpu: median(cpu) }) };
}

function row(what: string, variant: string, figures: Figures, target?: number): void {
  rows.push([what, variant, figures.min.toFixed(0), figures.median.toFixed(0), figures.cpu?.toFixed(0) ?? '', target ? `< ${target}` : '', target ? (figures.median < target ? 'yes' : 'NO') : '']);
  console.error(`  ${what} (${variant}): median ${figures.median.toFixed(0)} ms`);
}

const compiled: Variant = { label: 'compiled', checkout: copyCheckout() };
execFileSync(process.execPath, [join(compiled.checkout.root, 'server/bin/build-server.mjs')], { stdio: 'ignore' });
const sources: Variant = { label: 'sources (tsx)', checkout: copyCheckout() };
const variants: Variant[] = [compiled, sources];
if (values.before) variants.push({ label: `${values.before} (tsx)`, checkout: copyCheckout(values.before) });
const coldSources: Variant = { label: 'sources (tsx, cold cache)', checkout: sources.checkout, coldTsxCache: true };

const fixture = await startControlFixture();
const token = (await signInAdmin(fixture.registry.url, CAROL)).tokens.access_token;
const load = loadavg();
try {
  row('node -e 0 (Node alone, for reference)', '', await measure(() => timeNode(['-e', '0'], work, process.env)));
  const commands: [string, string[], NodeJS.ProcessEnv][] = [
    ['--help', ['--help'], {}],
    ['admin --help', ['admin', '--help'], {}],
    ['admin gateways list', ['admin', 'gateways', 'list'], { KEYGATE_REGISTRY: fixture.registry.url, KEYGATE_TOKEN: token }],
    ['login --help', ['login', '--help'], {}],
    ['logout', ['logout'], {}],
    ['keys rotate --help', ['keys', 'rotate', '--help'], {}],
  ];
  for (const variant of variants) {
    for (const [what, args, env] of commands) {
      // login --help is new: a revision before it has none.
      if (variant.label.startsWith(`${values.before} `) && args[0] === 'login') continue;
      row(what, variant.label, await measure(() => timeCommand(variant, args, env)), CLI_TARGET_MS);
    }
  }
  row('admin --help', coldSources.label, await measure(() => timeCommand(coldSources, ['admin', '--help'], {})), CLI_TARGET_MS);

  for (const variant of [...variants, coldSources]) {
    for (const viaNpm of [false, true]) {
      const how = viaNpm ? 'npm start' : 'node bin';
      const existing = join(work, `existing-${rows.length}`);
      mkdirSync(existing);
      row(`registry, ${how}, fresh data dir`, variant.label, await measure(() => timeRegistry(variant, viaNpm, mkdtempSync(join(work, 'data-')))), REGISTRY_TARGET_MS);
      row(`registry, ${how}, existing data dir`, variant.label, await measure(() => timeRegistry(variant, viaNpm, existing)), REGISTRY_TARGET_MS);
      if (variant === coldSources) break;
    }
  }
} finally {
  await fixture.close();
  for (const v of variants) v.checkout.close();
  rmSync(work, { recursive: true, force: true });
}

const end = loadavg();
console.log(`start-up of keygate-registry: ${RUNS} runs per row after one unmeasured run; ${cpus().length} cores; Node ${process.version}`);
console.log(`load average before ${load.map((l) => l.toFixed(2)).join(' ')}, after ${end.map((l) => l.toFixed(2)).join(' ')}`);
const header = ['what', 'build', 'min ms', 'median ms', 'CPU ms', 'target', 'holds'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
for (const r of [header, ...rows]) console.log(r.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '));
