// Where scripts/setup-code-server.mjs puts code-server and its Node, and how
// to run it so that it writes nothing outside that place. Shared by the
// setup script, `npm run try:vscode` (scripts/try-vscode.ts) and the VS Code
// e2e suites (test/helpers/code-server.ts). Types: code-server-install.d.mts.
//
// Everything lives in one cache folder: $KEYGATE_E2E_CACHE, else
// $XDG_CACHE_HOME/keygate-e2e, else ~/.cache/keygate-e2e. code-server on its
// own writes ~/.config/code-server/config.yaml (and logs that it did, before
// anything else it prints) and ~/.local/share/code-server/: every run here
// passes --config and sets XDG_DATA_HOME to folders it chose instead.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** scripts/code-server.json: the versions and what the install needs. */
export const pins = JSON.parse(readFileSync(fileURLToPath(new URL('./code-server.json', import.meta.url)), 'utf8'));

export const SETUP_COMMAND = 'node scripts/setup-code-server.mjs';

/** The cache folder, as the README names it. */
export function cacheDir(env = process.env) {
  return env.KEYGATE_E2E_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'keygate-e2e');
}

/** Every path of the install, derived from the cache folder. */
export function installPaths(env = process.env) {
  const cache = cacheDir(env);
  const nodePackage = `node-${process.platform}-${process.arch}`;
  const nodeProject = join(cache, `node-v${pins.node}`);
  const nodeHome = join(nodeProject, 'node_modules', nodePackage);
  const codeServerProject = join(cache, `code-server-${pins.codeServer}`);
  return {
    cache,
    nodePackage,
    nodeProject,
    nodeHome,
    node: join(nodeHome, 'bin', 'node'),
    codeServerProject,
    entry: join(codeServerProject, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    /** Written last, once the installed code-server reported the pinned version. */
    marker: join(codeServerProject, '.installed.json'),
    /** code-server's own config and data for the setup's version check. */
    state: join(codeServerProject, 'state'),
  };
}

/** The install, or an Error that says how to make it. */
export function requireInstall(env = process.env) {
  const paths = installPaths(env);
  const missing = [paths.node, paths.entry, paths.marker].filter((p) => !existsSync(p));
  if (missing.length) {
    throw new Error(
      `code-server ${pins.codeServer} is not installed (missing ${missing.join(', ')}).\n` +
        `Run \`${SETUP_COMMAND}\` first (it installs Node ${pins.node} and code-server from npm into ${paths.cache}; set KEYGATE_E2E_CACHE to put them elsewhere).`,
    );
  }
  return { ...paths, version: pins.codeServer };
}

/**
 * The environment to run code-server in: nothing inherited that would
 * reconfigure it or point it at another VS Code; its data (logs) under
 * `dataHome`; no extension gallery (it would query open-vsx.org).
 */
export function codeServerEnv(dataHome, env = process.env) {
  const clean = {};
  for (const [key, value] of Object.entries(env)) {
    if (/^(VSCODE_|CODE_SERVER_|ELECTRON_)/.test(key)) continue;
    if (['NODE_OPTIONS', 'PORT', 'PASSWORD', 'HASHED_PASSWORD', 'GITHUB_TOKEN'].includes(key)) continue;
    clean[key] = value;
  }
  clean.XDG_DATA_HOME = dataHome;
  clean.EXTENSIONS_GALLERY = '{}';
  return clean;
}

/**
 * The version in `code-server --version` output: the line that starts with
 * one ("4.139.1 <commit> with Code 1.139.1"), wherever it is among log lines.
 */
export function parseVersion(output) {
  for (const line of String(output ?? '').split('\n')) {
    const m = /^(\d+\.\d+\.\d+)(?:\s|$)/.exec(line.trim());
    if (m) return m[1];
  }
  return undefined;
}
