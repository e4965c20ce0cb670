import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../server/bin/keygate-registry.mjs', import.meta.url));

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The URL from "listening on http://...", or undefined if the process exited first. */
  url: Promise<string | undefined>;
  exit: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** Run the real `keygate-registry` bin as a user would. */
export function spawnRegistry(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, KEYGATE_LOG_LEVEL: 'info', ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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
