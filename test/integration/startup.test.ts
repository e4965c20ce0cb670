import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { copyCheckout, type Checkout } from '../helpers/checkout.ts';
import { CAROL, startControlFixture } from '../helpers/control.ts';
import type { Fixture } from '../helpers/fixture.ts';
import { eventually } from '../helpers/merged-gateway.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';
import { spawnRegistry } from '../helpers/spawn.ts';

// What the bin loads and which code it runs, seen from outside: every command
// runs in a child process, as an admin runs it, with a loader hook that writes
// down each module Node loads (helpers/module-trace.mjs), in copies of the
// checkout that are built (server/bin/build-server.mjs, npm install's prepare),
// edited and started as a developer would.

const TRACER = fileURLToPath(new URL('../helpers/module-trace.mjs', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'keygate-startup-'));

/** The registry's modules a CLI command may load: the CLI itself, and the two small modules it shares with the registry. */
const CLI_MODULES = /^(bin\/[\w-]+\.mjs|main|log|secret-file|oauth\/builtin-clients|cli\/[\w-]+)$/;
const CLI_PACKAGES = new Set(['tsx', 'esbuild', 'zod', 'yaml', 'oauth4webapi']);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The registry's modules, by name ("cli/admin", "app"), whether compiled or not. */
  modules: string[];
  /** Loaded from the compiled build (dist/server) rather than the sources. */
  compiled: boolean;
  /** The packages loaded (their entry points). */
  packages: Set<string>;
}

let traces = 0;

/** What a loader hook saw one run load. */
function traced(checkout: Checkout, file: string): Pick<Run, 'modules' | 'compiled' | 'packages'> {
  const urls = readFileSync(file, 'utf8').split('\n').filter((u) => u.startsWith('file:'));
  const paths = urls.map((u) => relative(checkout.root, fileURLToPath(u)).split('\\').join('/'));
  const mine = paths.filter((p) => /^(dist\/)?server\//.test(p));
  const packages = new Set(urls.filter((u) => u.includes('/node_modules/')).map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)![1]!));
  return {
    modules: mine.map((p) => p.replace(/^(dist\/)?server\//, '').replace(/\.(ts|js)$/, '')),
    compiled: mine.some((p) => p.startsWith('dist/')) && !mine.some((p) => p.endsWith('.ts')),
    packages,
  };
}

/** Run `keygate-registry …args` of a checkout to its end, tracing what it loads. */
async function run(checkout: Checkout, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const trace = join(work, `trace-${++traces}.txt`);
  writeFileSync(trace, '');
  const child = spawnRegistry(args, { KEYGATE_CREDENTIALS: join(work, 'no-credentials.json'), ...env, KEYGATE_TEST_MODULE_TRACE: trace }, checkout.root, { bin: checkout.bin, node: ['--import', TRACER] });
  const code = await child.exit;
  return { code, stdout: child.stdout(), stderr: child.stderr(), ...traced(checkout, trace) };
}

/** `npm run build:server` in a checkout. */
async function build(checkout: Checkout, ...flags: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnRegistry(flags, {}, checkout.root, { bin: join(checkout.root, 'server', 'bin', 'build-server.mjs') });
  const code = await child.exit;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

function assertCliOnly(r: Run, what: string): void {
  const registry = r.modules.filter((m) => !CLI_MODULES.test(m));
  assert.deepEqual(registry, [], `${what} loaded modules of the registry`);
  const packages = [...r.packages].filter((p) => !CLI_PACKAGES.has(p));
  assert.deepEqual(packages, [], `${what} loaded packages of the registry`);
}

let built: Checkout;
let f: Fixture;
let carol: string;

before(async () => {
  built = copyCheckout();
  const made = await build(built);
  assert.equal(made.code, 0, made.stderr);
  f = await startControlFixture();
  carol = (await signInAdmin(f.registry.url, CAROL)).tokens.access_token;
});
after(async () => {
  await f?.close();
  built?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('what each command loads', () => {
  test('admin, login, logout and --help load none of the registry: only the CLI, zod, yaml and oauth4webapi', async () => {
    const commands: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--help'], {}, /^Usage: keygate-registry \[--config FILE\]/],
      [['keys', 'rotate', '--help'], {}, /^Usage: keygate-registry \[--config FILE\]/],
      [['admin', '--help'], {}, /^Usage: keygate-registry admin RESOURCE ACTION/],
      [['admin', 'gateways', 'list'], { KEYGATE_REGISTRY: f.registry.url, KEYGATE_TOKEN: carol }, /\bteam\b/],
      [['login', '--help'], {}, /^Usage: keygate-registry login \[URL\]/],
      [['logout', '--help'], {}, /^Usage: keygate-registry login \[URL\]/],
      [['logout'], {}, /^Not signed in to /],
    ];
    for (const [args, env, says] of commands) {
      const r = await run(built, args, env);
      const what = args.join(' ');
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.match(r.stdout, says, what);
      assert.ok(r.compiled, `${what} ran the compiled build`);
      assertCliOnly(r, what);
    }
  });

  test('admin gateways list against a registry prints its gateways, the CLI alone loaded', async () => {
    const r = await run(built, ['admin', 'gateways', 'list', '--json'], { KEYGATE_REGISTRY: f.registry.url, KEYGATE_TOKEN: carol });
    assert.equal(r.code, 0, r.stderr);
    const listed = (await (await fetch(`${f.registry.url}/api/v1/admin/gateways`, { headers: { authorization: `Bearer ${carol}` } })).json()) as { gateways: { id: string }[] };
    assert.ok(listed.gateways.length > 0);
    assert.deepEqual(JSON.parse(r.stdout), listed);
    assertCliOnly(r, 'admin gateways list');
  });

  test('from the sources through tsx (no build), admin loads the CLI alone too', async () => {
    const sources = copyCheckout();
    try {
      const r = await run(sources, ['admin', 'gateways', 'list'], { KEYGATE_REGISTRY: f.registry.url, KEYGATE_TOKEN: carol });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.compiled && r.modules.includes('cli/admin'), 'ran server/cli/admin.ts');
      assertCliOnly(r, 'admin gateways list from the sources');
    } finally {
      sources.close();
    }
  });

  test('starting the registry loads the app, express and lowdb (what the trace would catch), and not pg on the embedded default', async () => {
    const trace = join(work, 'trace-start.txt');
    writeFileSync(trace, '');
    const registry = spawnRegistry(['--port', '0', '--data-dir', join(work, 'start-data')], { KEYGATE_TEST_MODULE_TRACE: trace }, built.root, { bin: built.bin, node: ['--import', TRACER] });
    try {
      const url = await registry.url;
      assert.ok(url, registry.stderr());
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
    } finally {
      await registry.stop();
    }
    const r = traced(built, trace);
    assert.ok(r.compiled);
    for (const m of ['app', 'store/lowdb/lowdb-store', 'gateway/mcp-endpoint']) assert.ok(r.modules.includes(m), m);
    for (const p of ['express', 'lowdb', 'jose']) assert.ok(r.packages.has(p), p);
    assert.ok(!r.packages.has('pg') && !r.modules.includes('store/postgres/postgres-store'), 'pg is loaded only for storage.type postgres');
  });
});

describe('the compiled server', () => {
  test('the compiled registry signs a person in: paths relative to a module (the bcrypt worker, package.json) resolve as from its source', async () => {
    const registry = spawnRegistry(['--port', '0', '--data-dir', join(work, 'sign-in-data')], {}, built.root, { bin: built.bin });
    try {
      const url = await registry.url;
      assert.ok(url, registry.stderr());
      await eventually(() => /demo password:\s+\S+/.test(registry.stdout()), 'the demo password');
      const password = /demo password:\s+(\S+)/.exec(registry.stdout())![1]!;
      const { tokens } = await signIn(url, { username: 'demo', password });
      assert.ok(tokens.access_token);
      const wrong = await signIn(url, { username: 'demo', password: `${password}x` }).then(
        () => 'signed in',
        (err: Error) => err.message,
      );
      assert.notEqual(wrong, 'signed in');
    } finally {
      await registry.stop();
    }
  });

  test('after an edit to any file of server/ or to tsconfig.json the bin runs the sources, never the stale build; undoing the edit makes the build current again', async () => {
    const usage = 'Usage: keygate-registry [--config FILE]';
    const edits: [string, (text: string) => string][] = [
      ['server/main.ts', (t) => t.replace(usage, 'Usage (edited): keygate-registry [--config FILE]')],
      ['server/store/store.ts', (t) => `${t}\n// an edit far from main.ts\n`],
      ['server/console-notes.txt', () => 'a new file\n'],
      ['tsconfig.json', (t) => `${t}\n`],
    ];
    for (const [file, edit] of edits) {
      const path = join(built.root, file);
      let before: string | undefined;
      try {
        before = readFileSync(path, 'utf8');
      } catch {
        before = undefined;
      }
      writeFileSync(path, edit(before ?? ''));
      const edited = await run(built, ['--help']);
      assert.equal(edited.code, 0, edited.stderr);
      assert.ok(!edited.compiled && edited.modules.includes('main'), `after editing ${file}: ran server/main.ts, not the build`);
      if (file === 'server/main.ts') assert.match(edited.stdout, /Usage \(edited\)/);
      if (before === undefined) rmSync(path);
      else writeFileSync(path, before);
      const undone = await run(built, ['--help']);
      assert.ok(undone.compiled, `after undoing the edit of ${file}: ran the build`);
    }
  });

  test('npm run build:server makes the edited sources the build the bin runs', async () => {
    const path = join(built.root, 'server/main.ts');
    const original = readFileSync(path, 'utf8');
    try {
      writeFileSync(path, original.replace('-h, --help           this text.', '-h, --help           this text (rebuilt).'));
      const made = await build(built);
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /built .*dist.server \(\d+ files\)/);
      const r = await run(built, ['--help']);
      assert.ok(r.compiled);
      assert.match(r.stdout, /this text \(rebuilt\)/);
    } finally {
      writeFileSync(path, original);
      assert.equal((await build(built)).code, 0);
    }
  });

  test('a build without its record of the sources (a build cut short) is not run', async () => {
    const sources = copyCheckout();
    try {
      assert.equal((await build(sources)).code, 0);
      assert.ok((await run(sources, ['--help'])).compiled);
      rmSync(join(sources.root, 'dist/server/source-hash'));
      const r = await run(sources, ['--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.compiled && r.modules.includes('main'));
    } finally {
      sources.close();
    }
  });

  test('a source the build cannot compile fails npm run build:server, only warns in the prepare of npm install, and the bin runs the sources', async () => {
    const sources = copyCheckout();
    try {
      writeFileSync(join(sources.root, 'server/where.ts'), 'export const here = import.meta.dirname;\n');
      const strict = await build(sources);
      assert.equal(strict.code, 1);
      assert.match(strict.stderr, /import\.meta\.dirname is not supported in server\/.*\(server.where\.ts\)/);
      const prepare = await build(sources, '--if-possible');
      assert.equal(prepare.code, 0, prepare.stderr);
      assert.match(prepare.stderr, /will run the TypeScript sources through tsx/);
      const r = await run(sources, ['--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.compiled && r.modules.includes('main'));
    } finally {
      sources.close();
    }
  });
});
