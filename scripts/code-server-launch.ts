import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { codeServerEnv, requireInstall } from './code-server-install.mjs';

// Start code-server (installed by scripts/setup-code-server.mjs) with the
// Keygate extension and the settings it needs: the one launch line that
// `npm run try:vscode` and the VS Code e2e suites share. Everything
// code-server writes goes under the folder it is given: its config file,
// user data, extensions and its own logs (XDG_DATA_HOME).

/**
 * Settings that keep a fresh VS Code quiet and offline: no welcome page, tips,
 * telemetry, update or gallery checks, port-forwarding prompts or secondary
 * side bar. Chat stays on: turning AI features off (chat.disableAIFeatures)
 * also removes VS Code's MCP support.
 */
export const QUIET_SETTINGS: Record<string, unknown> = {
  // MCP over HTTP fails in code-server with the additional fetch support on.
  'http.fetchAdditionalSupport': false,
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'security.workspace.trust.enabled': false,
  'remote.autoForwardPorts': false,
  'git.enabled': false,
  'chat.commandCenter.enabled': false,
  'window.commandCenter': false,
};

export interface LaunchOptions {
  /** code-server's folder: config.yaml, user-data/, extensions/, data/ (its logs). Created when missing. */
  dir: string;
  /** The folder the workbench opens. */
  workspace: string;
  /** .vsix files to install (again, replacing an older copy) before starting. */
  extensions: string[];
  /** User settings, over QUIET_SETTINGS and over what is in settings.json already. */
  settings: Record<string, unknown>;
  /** Keep the settings a person changed in an earlier run (default: start from QUIET_SETTINGS). */
  keepSettings?: boolean;
  /** Loopback port (default 0: any free port). */
  port?: number;
  startTimeoutMs?: number;
}

export interface RunningCodeServer {
  /** http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  /** The URL that opens the workspace folder. */
  workbenchUrl: string;
  userDataDir: string;
  extensionsDir: string;
  workspace: string;
  /** Resolves when code-server exits (stopped or crashed). */
  exited: Promise<void>;
  log(): string;
  /** Stop code-server and every process it started. */
  stop(): Promise<void>;
}

function readSettings(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    // VS Code's settings.json may hold comments; then the quiet settings start over.
    return {};
  }
}

export async function launchCodeServer(options: LaunchOptions): Promise<RunningCodeServer> {
  const install = requireInstall();
  const userDataDir = join(options.dir, 'user-data');
  const extensionsDir = join(options.dir, 'extensions');
  for (const d of [join(userDataDir, 'User'), extensionsDir, options.workspace]) mkdirSync(d, { recursive: true });
  const settingsFile = join(userDataDir, 'User', 'settings.json');
  const earlier = options.keepSettings ? readSettings(settingsFile) : {};
  writeFileSync(settingsFile, `${JSON.stringify({ ...QUIET_SETTINGS, ...earlier, ...options.settings }, null, 2)}\n`);
  // Its own config file, so code-server never writes ~/.config/code-server/config.yaml.
  const config = join(options.dir, 'config.yaml');
  writeFileSync(config, 'auth: none\ncert: false\n');
  const common = ['--config', config, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
  const env = codeServerEnv(join(options.dir, 'data'));

  for (const vsix of options.extensions) {
    const installed = spawnSync(install.node, [install.entry, ...common, '--install-extension', vsix, '--force'], { env, encoding: 'utf8', timeout: 120_000 });
    if (installed.status !== 0 || !/successfully installed/i.test(installed.stdout)) {
      throw new Error(`code-server could not install ${vsix}:\n${installed.stdout}\n${installed.stderr}`);
    }
  }

  // Its own process group, so stop() ends code-server and every process it started.
  const child: ChildProcess = spawn(
    install.node,
    [
      install.entry,
      ...common,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${options.port ?? 0}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      options.workspace,
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // already gone
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      signal('SIGTERM');
      const killer = setTimeout(() => signal('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
  };

  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const url = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    const check = () => {
      const m = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
  if (!url) {
    const output = log;
    await stop();
    throw new Error(`code-server did not start within ${timeoutMs / 1000} s:\n${output}`);
  }
  return {
    url,
    workbenchUrl: `${url}/?folder=${encodeURIComponent(options.workspace)}`,
    userDataDir,
    extensionsDir,
    workspace: options.workspace,
    exited,
    log: () => log,
    stop,
  };
}
