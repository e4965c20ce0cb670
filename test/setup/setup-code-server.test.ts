import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pins } from '../../scripts/code-server-install.mjs';

// `node scripts/setup-code-server.mjs` as on a machine that never ran it: a
// home folder with no ~/.config, no ~/.local and no ~/.cache, no
// KEYGATE_E2E_CACHE or XDG_* variables. The first run must succeed (it once
// failed here: code-server's first start writes ~/.config/code-server/config.yaml
// and logs that before its version), write nothing outside the cache folder
// the README names (~/.cache/keygate-e2e), and a second run must find the
// install and only check it. npm keeps its own download cache and user config
// (the real ones, so the test does not download what this machine already
// has); that is npm's, not the script's. Slow (a full code-server install, about
// 3 minutes): not part of `npm test`; .ci/run runs it (`npm run test:setup`).

const root = fileURLToPath(new URL('../..', import.meta.url));
const SETUP = join(root, 'scripts', 'setup-code-server.mjs');
const INSTALL_TIMEOUT_MS = 20 * 60_000;
/** The cache folder the README names, relative to the home folder. */
const CACHE = join('.cache', 'keygate-e2e');

let work: string;
let home: string;

/** What npm itself would use with the real home: its cache and user config stay npm's. */
function npmSettings(): NodeJS.ProcessEnv {
  const cache = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).stdout.trim();
  return { npm_config_cache: cache || join(homedir(), '.npm'), NPM_CONFIG_USERCONFIG: process.env.NPM_CONFIG_USERCONFIG || join(homedir(), '.npmrc') };
}

/** The environment of a person on a new machine whose home is `home`. */
function freshEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(XDG_|KEYGATE_|npm_|NPM_CONFIG_|NODE_OPTIONS$|VSCODE_|CODE_SERVER_)/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, HOME: home, ...npmSettings() };
}

/** Run the script; its output, exit code and how long it took. */
function setup(): Promise<{ code: number | null; output: string; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SETUP], { cwd: root, env: freshEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), INSTALL_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/** Every file and folder under `dir`, relative to it, but for what is inside `skip` (a relative path). */
function tree(dir: string, skip: string, under = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const rel = relative(under, path);
    return lstatSync(path).isDirectory() && rel !== skip ? [rel, ...tree(path, skip, under)] : [rel];
  });
}

/** The last lines of a long output, for an assertion message. */
const tail = (output: string) => output.split('\n').slice(-40).join('\n');

describe('scripts/setup-code-server.mjs on a new machine', { timeout: 2 * INSTALL_TIMEOUT_MS + 60_000 }, () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'keygate-setup-'));
    home = join(work, 'home');
    mkdirSync(home);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the first run installs Node and code-server into ~/.cache/keygate-e2e and writes nothing else in the home folder', { timeout: INSTALL_TIMEOUT_MS + 30_000 }, async () => {
    assert.deepEqual(readdirSync(home), [], 'the home folder starts empty');
    const first = await setup();
    console.log(`first run: exit ${first.code} in ${first.seconds.toFixed(1)} s`);
    assert.equal(first.code, 0, `the first run failed:\n${tail(first.output)}`);
    assert.match(first.output, /code-server for the e2e suite is ready/);

    const cache = join(home, CACHE);
    assert.deepEqual(tree(home, CACHE).sort(), ['.cache', CACHE], `written outside ${cache}`);
    // The install it reports is the one it made: the pinned code-server, its marker, Node 24.
    const marker = JSON.parse(readFileSync(join(cache, `code-server-${pins.codeServer}`, '.installed.json'), 'utf8')) as { codeServer: string; node: string };
    assert.equal(marker.codeServer, pins.codeServer);
    assert.equal(marker.node, pins.node);
    const node = join(cache, `node-v${pins.node}`, 'node_modules', `node-${process.platform}-${process.arch}`, 'bin', 'node');
    assert.equal(spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim(), `v${pins.node}`);
  });

  test('a second run finds the install and only checks it', { timeout: 5 * 60_000 }, async () => {
    const second = await setup();
    console.log(`second run: exit ${second.code} in ${second.seconds.toFixed(1)} s`);
    assert.equal(second.code, 0, `the second run failed:\n${tail(second.output)}`);
    assert.match(second.output, /present: .*node/);
    assert.match(second.output, new RegExp(`present: .*code-server-${pins.codeServer.replace(/\./g, '\\.')}`));
    assert.doesNotMatch(second.output, /installed in/, 'nothing was installed again');
    assert.deepEqual(tree(home, CACHE).sort(), ['.cache', CACHE], 'the second run wrote nothing outside the cache either');
  });
});
