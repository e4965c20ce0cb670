import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The benches' child processes (upstream, registry, lean proxy): started from
// the repository's root, ready once their stdout matches `ready`.

const root = fileURLToPath(new URL('..', import.meta.url));

/** utime + stime of a process (all its threads), in microseconds (USER_HZ is 100 on Linux). */
export function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** BENCH_CONNECTIONS (10 if unset): the benches' connections; anything but a whole number of 1 or more stops the bench (exit 2) before it starts a process. */
export function connectionsFromEnv(): number {
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
  if (!Number.isInteger(connections) || connections < 1) {
    console.error(`BENCH_CONNECTIONS must be a whole number of connections, 1 or more, not ${process.env.BENCH_CONNECTIONS}`);
    process.exit(2);
  }
  return connections;
}

/** Every process a bench started and that still runs: none outlives the bench, even one that stops on an error (a registry that would not start, say). */
const running = new Set<ChildProcess>();
let reaping = false;

export function startProcess(args: string[], env: NodeJS.ProcessEnv, ready: RegExp, options: { ipc?: boolean } = {}): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? (['ipc'] as const) : [])] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!reaping) {
    reaping = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGTERM');
    });
  }
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = ready.exec(out);
      if (match) resolve({ child, match });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${err}`)));
  });
}

/** The heap in use after a full collection, of a process started through bench/heap-probe.mjs (with `ipc`). */
export function heapUsed(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve((m as { heapUsed: number }).heapUsed));
    child.send('heap');
  });
}

/** Ask a process started through bench/heap-probe.mjs (with `ipc`) to profile its CPU while `during` runs; answers the V8 CPU profile. */
export async function cpuProfile<T>(child: ChildProcess, during: () => Promise<T>): Promise<{ result: T; profile: unknown }> {
  const reply = <M>(message: string) =>
    new Promise<M>((resolve) => {
      child.once('message', (m) => resolve(m as M));
      child.send(message);
    });
  await reply('cpu-start');
  const result = await during();
  const { profile } = await reply<{ profile: unknown }>('cpu-stop');
  return { result, profile };
}

/** Send a message to a process started through bench/heap-probe.mjs (with `ipc`) and answer its reply. */
export function ask<M>(child: ChildProcess, message: string): Promise<M> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as M));
    child.send(message);
  });
}
