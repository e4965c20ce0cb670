// npm run try:vscode: Keygate in a real VS Code, in one command.
//
//   1. builds the extension (.vsix) as `npm run package` does;
//   2. sets up code-server when it is not there yet (scripts/setup-code-server.mjs);
//   3. starts the registry on the embedded demo default (as `npm start`, with
//      a new demo password so it can be printed);
//   4. starts code-server with the extension installed and the settings it
//      needs (keygate.registryUrl, http.fetchAdditionalSupport: false);
//   5. prints the URL to open and the demo credentials; Ctrl-C stops both.
//
// code-server's settings, extensions and logs live in <data-dir>/vscode, beside
// the registry's store, so a second run keeps the sign-in and what you changed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { cacheDir, pins, requireInstall } from './code-server-install.mjs';
import { launchCodeServer, type RunningCodeServer } from './code-server-launch.ts';

const USAGE = `Usage: npm run try:vscode [-- --port N] [--vscode-port N] [--data-dir DIR] [--keep-demo-password]

  --port N              the registry's port (default 8787; 0: any free port)
  --vscode-port N       code-server's port (default 8080; 0: any free port)
  --data-dir DIR        the registry's data dir (default ./.keygate); code-server's
                        state goes in DIR/vscode
  --keep-demo-password  do not make a new demo password (it is then not printed)
`;

const root = fileURLToPath(new URL('..', import.meta.url));

function fail(message: string): never {
  process.stderr.write(`try:vscode: ${message}\n`);
  process.exit(1);
}

function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`${name} must be a port number (0-65535), not ${JSON.stringify(value)}\n\n${USAGE}`);
  return n;
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      port: { type: 'string' },
      'vscode-port': { type: 'string' },
      'data-dir': { type: 'string' },
      'keep-demo-password': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
}
try {
  args = parse();
} catch (err) {
  fail(`${(err as Error).message}\n\n${USAGE}`);
}
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const registryPort = port(args.port, 8787, '--port');
const vscodePort = port(args['vscode-port'], 8080, '--vscode-port');
const dataDir = resolve(args['data-dir'] ?? process.env.KEYGATE_DATA_DIR ?? join(root, '.keygate'));

const step = (text: string) => process.stdout.write(`\n==> ${text}\n`);

/** Run a command to its end with its output shown; exit when it fails. */
function run(command: string, argv: string[], what: string): void {
  const result = spawnSync(command, argv, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) fail(`${what} failed (${command} ${argv.join(' ')} exited with ${result.status ?? result.signal})`);
}

interface StartedRegistry {
  child: ChildProcess;
  url: string;
  /** The demo password, when the registry printed one. */
  password: string | undefined;
  username: string;
  personalPrefix: string | undefined;
  exited: Promise<number | null>;
}

/** The registry as `npm start` runs it; resolves once it printed the demo block. */
function startRegistry(): Promise<StartedRegistry> {
  const argv = [join(root, 'server', 'bin', 'keygate-registry.mjs'), '--port', String(registryPort), '--data-dir', dataDir];
  if (!args['keep-demo-password']) argv.push('--reset-demo-password');
  const env = { ...process.env };
  // The embedded default: a configuration in the environment would replace it.
  delete env.KEYGATE_CONFIG;
  const child = spawn(process.execPath, argv, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let out = '';
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  return new Promise((ready, failed) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const listening = /listening on (http:\/\/\S+)/.exec(out);
      // The demo block ends with the "Next:" list, whose last line is about other MCP clients.
      if (!listening || !/\nNext:\n[\s\S]*Any MCP client[^\n]*\n/.test(out)) return;
      child.stdout!.off('data', onData);
      // What the registry logs from now on is shown as it comes.
      child.stdout!.on('data', (more: Buffer) => process.stdout.write(more));
      const password = /demo password:\s+(\S+)\s+\(shown once/.exec(out)?.[1];
      ready({
        child,
        url: listening[1]!,
        password,
        username: /demo user:\s+(\S+)/.exec(out)?.[1] ?? 'demo',
        personalPrefix: /any key starting\s+with (\S+)/.exec(out)?.[1],
        exited,
      });
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => failed(new Error(`the registry exited (${code}) before it was ready:\n${out}`)));
  });
}

async function main(): Promise<void> {
  step('Building the extension (npm run package)');
  run('npm', ['run', '--silent', 'package'], 'npm run package');
  const vsix = join(root, 'dist', 'keygate.vsix');

  step(`code-server ${pins.codeServer} (in ${cacheDir()})`);
  try {
    requireInstall();
    process.stdout.write('    installed\n');
  } catch {
    process.stdout.write('    not installed yet: running scripts/setup-code-server.mjs (a few minutes, once)\n');
    run(process.execPath, [join(root, 'scripts', 'setup-code-server.mjs')], 'setting up code-server');
  }

  step(`Starting the registry (embedded demo, data in ${dataDir})`);
  const registry = await startRegistry().catch((err: Error) => fail(err.message));

  let vscode: RunningCodeServer | undefined;
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nStopping code-server and the registry…\n');
    await vscode?.stop();
    if (registry.child.exitCode === null) registry.child.kill('SIGTERM');
    await registry.exited;
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));
  void registry.exited.then((code) => {
    if (!stopping) {
      process.stderr.write(`try:vscode: the registry stopped (exit ${code})\n`);
      void stopAll(1);
    }
  });

  step('Starting code-server with the Keygate extension');
  const state = join(dataDir, 'vscode');
  try {
    vscode = await launchCodeServer({
      dir: state,
      workspace: join(state, 'workspace'),
      extensions: [vsix],
      settings: { 'keygate.registryUrl': registry.url },
      keepSettings: true,
      port: vscodePort,
    });
  } catch (err) {
    process.stderr.write(`try:vscode: ${(err as Error).message}\n`);
    if (vscodePort !== 0) process.stderr.write(`(is port ${vscodePort} taken? --vscode-port N picks another, 0 any free one)\n`);
    return stopAll(1);
  }
  void vscode.exited.then(() => {
    if (!stopping) {
      process.stderr.write(`try:vscode: code-server stopped; its log:\n${vscode!.log()}\n`);
      void stopAll(1);
    }
  });

  const password = registry.password ?? '(not shown: it was kept; run without --keep-demo-password for a new one)';
  process.stdout.write(
    [
      '',
      'Keygate in VS Code is ready.',
      '',
      `  open          ${vscode.workbenchUrl}`,
      `  registry      ${registry.url}`,
      `  sign in as    ${registry.username}`,
      `  password      ${password}`,
      ...(registry.personalPrefix ? [`  personal key  any key starting with ${registry.personalPrefix}`] : []),
      '',
      'In VS Code: the Keygate icon in the activity bar, Sign In, allow it, sign in on the',
      'registry\'s page with the user and password above; then type a personal key in the',
      'sidebar, and start "Keygate: Demo gateway" from "MCP: List Servers".',
      '',
      'Ctrl-C stops code-server and the registry.',
      '',
    ].join('\n'),
  );
}

void main().catch((err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err)));
