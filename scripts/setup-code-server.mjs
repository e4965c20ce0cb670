#!/usr/bin/env node
// Installs what the VS Code end-to-end suite (test/e2e/vscode-*.test.ts) runs
// in, outside the repository, and says where it put it:
//
//   1. Debian packages: the headers code-server's native modules build
//      against, and Chromium (apt-get, as root or through sudo);
//   2. Node 24, code-server's engine, from the npm package node-<os>-<arch>;
//   3. code-server itself from npm, built with that Node.
//
// Everything but the Debian packages goes into one cache folder:
// $KEYGATE_E2E_CACHE, else $XDG_CACHE_HOME/keygate-e2e, else
// ~/.cache/keygate-e2e, and nothing is written outside it (code-server's own
// config and data homes included: see code-server-install.mjs). Idempotent:
// a second run only checks (about a second). Versions: scripts/code-server.json.
// Nothing is downloaded from anywhere but the npm registry and the Debian
// archive. test/setup/setup-code-server.test.ts runs it as on a new machine.
//
// Usage: node scripts/setup-code-server.mjs
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { codeServerEnv, installPaths, parseVersion, pins } from './code-server-install.mjs';

const paths = installPaths();
const { cache, nodePackage, nodeProject, nodeHome, node: nodeBin, codeServerProject, entry: codeServerEntry, marker } = paths;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const started = Date.now();
const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const step = (text) => console.log(`\n--> ${text}`);

function fail(message) {
  console.error(`\nsetup-code-server: ${message}`);
  process.exit(1);
}

/** Run a command with inherited output; fail the setup when it fails. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) fail(`${command} could not be started: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
}

/** A command's stdout, or undefined when it cannot run or fails. */
function output(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

// An environment without anything that would point npm or node elsewhere.
function cleanEnv(extra) {
  const env = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

// 1. Debian packages ---------------------------------------------------------
function aptPackages() {
  step(`Debian packages: ${pins.aptPackages.join(' ')}`);
  if (output('dpkg-query', ['--version']) === undefined) {
    console.log(`    not a Debian system (no dpkg-query): make sure the equivalents of ${pins.aptPackages.join(', ')} are installed.`);
    return;
  }
  const missing = pins.aptPackages.filter((p) => output('dpkg-query', ['-W', '-f=${Status}', p]) !== 'install ok installed');
  if (missing.length === 0) {
    console.log('    all installed');
    return;
  }
  console.log(`    installing ${missing.join(' ')}`);
  const isRoot = process.getuid?.() === 0;
  // sudo resets the environment: DEBIAN_FRONTEND goes in through env(1).
  const sudo = (args) => (isRoot ? ['apt-get', args] : ['sudo', ['-n', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args]]);
  if (!isRoot && output('sudo', ['-n', 'true']) === undefined) {
    fail(`not root and sudo needs a password: run   sudo apt-get install -y ${missing.join(' ')}   and then this script again`);
  }
  const env = cleanEnv({ DEBIAN_FRONTEND: 'noninteractive' });
  const since = Date.now();
  run(...sudo(['update', '-qq']), { env });
  run(...sudo(['install', '-y', '-qq', ...missing]), { env });
  console.log(`    installed in ${seconds(since)}`);
}

// 2. Node for code-server ----------------------------------------------------
function installNode() {
  step(`Node ${pins.node} (npm package ${nodePackage}@${pins.node})`);
  if (existsSync(nodeBin) && output(nodeBin, ['--version']) === `v${pins.node}`) {
    console.log(`    present: ${nodeBin}`);
    return;
  }
  const since = Date.now();
  rmSync(nodeProject, { recursive: true, force: true });
  mkdirSync(nodeProject, { recursive: true });
  writeFileSync(join(nodeProject, 'package.json'), `${JSON.stringify({ private: true, description: 'Node for code-server (Keygate e2e)', dependencies: { [nodePackage]: pins.node } }, null, 2)}\n`);
  run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock'], { cwd: nodeProject, env: cleanEnv({}) });
  const version = output(nodeBin, ['--version']);
  if (version !== `v${pins.node}`) fail(`${nodeBin} reports ${version ?? 'nothing'}, expected v${pins.node}`);
  console.log(`    installed in ${seconds(since)}: ${nodeBin}`);
}

// 3. code-server ---------------------------------------------------------------
/**
 * What the installed code-server says its version is. On a first run it
 * would write ~/.config/code-server/config.yaml and log a line about it before
 * the version: its config file and data home are given, inside the install.
 */
function codeServerVersion() {
  const env = codeServerEnv(join(paths.state, 'data'));
  const result = spawnSync(nodeBin, [codeServerEntry, '--config', join(paths.state, 'config.yaml'), '--version'], { env, encoding: 'utf8' });
  const said = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim() || (result.error?.message ?? `exit ${result.status}`);
  return { version: result.status === 0 ? parseVersion(result.stdout) : undefined, said };
}

function installCodeServer() {
  step(`code-server ${pins.codeServer} (npm, built with Node ${pins.node})`);
  if (existsSync(marker) && existsSync(codeServerEntry) && codeServerVersion().version === pins.codeServer) {
    console.log(`    present: ${codeServerEntry}`);
    return;
  }
  const since = Date.now();
  // A half-finished install is started over, not patched.
  rmSync(codeServerProject, { recursive: true, force: true });
  mkdirSync(codeServerProject, { recursive: true });
  writeFileSync(
    join(codeServerProject, 'package.json'),
    `${JSON.stringify(
      {
        private: true,
        description: 'code-server for the Keygate e2e suite',
        dependencies: { 'code-server': pins.codeServer },
        // npm 11 asks before running install scripts: code-server's postinstall
        // fetches its VS Code's dependencies and builds the native modules,
        // argon2 builds its binding; nothing else needs one.
        allowScripts: Object.fromEntries(pins.allowScripts.map((name) => [name, true])),
      },
      null,
      2,
    )}\n`,
  );
  // code-server's native modules must be built for Node 24, against its headers
  // (the npm package ships include/node), not for the Node running this script.
  const env = cleanEnv({ PATH: `${join(nodeHome, 'bin')}${delimiter}${process.env.PATH ?? ''}`, npm_config_nodedir: nodeHome });
  run('npm', ['install', '--no-audit', '--no-fund'], { cwd: codeServerProject, env });
  const { version, said } = codeServerVersion();
  if (version !== pins.codeServer) fail(`code-server reports ${version ?? 'no version'} after the install, expected ${pins.codeServer}; it said:\n${said}`);
  writeFileSync(marker, `${JSON.stringify({ codeServer: pins.codeServer, node: pins.node, installedAt: new Date().toISOString() }, null, 2)}\n`);
  console.log(`    installed in ${seconds(since)}`);
}

mkdirSync(cache, { recursive: true });
aptPackages();
installNode();
installCodeServer();
if (!existsSync(CHROMIUM)) fail(`no Chromium at ${CHROMIUM} (set CHROMIUM_PATH)`);

console.log(`
code-server for the e2e suite is ready (${seconds(started)}):
  cache        ${cache}
  node         ${nodeBin}
  code-server  ${codeServerEntry}
  chromium     ${CHROMIUM} (${output(CHROMIUM, ['--version']) ?? 'version unknown'})
Run the suite with: npm run test:e2e`);
