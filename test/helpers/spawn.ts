import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../server/bin/keygate-registry.mjs', import.meta.url));
const PROBE = fileURLToPath(new URL('../../bench/heap-probe.mjs', import.meta.url));

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The URL from "listening on http://...", or undefined if the process exited first. */
  url: Promise<string | undefined>;
  exit: Promise<number | null>;
  stop(): Promise<number | null>;
}

/**
 * Run the real `keygate-registry` bin as a user would; with `probe`, through
 * bench/heap-probe.mjs, which answers on the IPC channel (bench/process.ts ask());
 * `bin` runs another checkout's, `node` options go before it.
 */
export function spawnRegistry(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string, options: { probe?: boolean; bin?: string; node?: string[] } = {}): Spawned {
  const bin = options.bin ?? BIN;
  const argv = [...(options.node ?? []), ...(options.probe ? ['--expose-gc', PROBE, bin, ...args] : [bin, ...args])];
  const stdio = options.probe ? (['ignore', 'pipe', 'pipe', 'ipc'] as const) : (['ignore', 'pipe', 'pipe'] as const);
  const child = spawn(process.execPath, argv, { env: { ...process.env, KEYGATE_LOG_LEVEL: 'info', ...env }, cwd, stdio: [...stdio] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = new Promise<string | undefined>((resolve) => {
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    };
    child.stdout!.on('data', check);
    void exit.then(() => {
      check();
      resolve(undefined);
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    url,
    exit,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exit;
    },
  };
}
