import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

// bcrypt is deliberately slow (about 70 ms per compare at cost 10 in
// bcryptjs). bcryptjs's async API still runs on the event loop, yielding only
// every 100 ms: 50 sign-ins at once would hold every MCP call behind them for
// seconds. The compares run on worker threads instead, leaving one core to the
// event loop; the threads start on the first sign-in and do not keep the
// process alive. The embedded default's first start hashes the demo password
// there too, while the demo upstream starts. On a machine whose cores are all
// busy, a worker thread still took its equal share of a core from the MCP
// calls while sign-ins ran: it runs at a lower priority (nice +NICE, that
// thread only), so the calls go first and the checks take what CPU is left
// (docs/performance.md, "Sign-in under load").

const SIZE = Math.max(1, Math.min(4, availableParallelism() - 1));
/** How much further the workers' nice value goes than the process's (up to 19; higher yields more). Linux only: elsewhere a thread's priority is the whole process's. */
const NICE = process.platform === 'linux' ? 10 : 0;

interface Pending {
  resolve: (result: never) => void;
  reject: (err: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, Pending>;
}

let workers: PoolWorker[] = [];
let nextId = 0;

function spawn(): PoolWorker {
  const worker = new Worker(new URL('./bcrypt-worker.mjs', import.meta.url), { workerData: { nice: NICE } });
  const entry: PoolWorker = { worker, pending: new Map() };
  worker.unref();
  worker.on('message', ({ id, result }: { id: number; result: never }) => {
    const p = entry.pending.get(id);
    entry.pending.delete(id);
    if (entry.pending.size === 0) worker.unref();
    p?.resolve(result);
  });
  const fail = (err: Error) => {
    workers = workers.filter((w) => w !== entry);
    for (const p of entry.pending.values()) p.reject(err);
    entry.pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the bcrypt worker exited (${code})`)));
  return entry;
}

/** A job on a worker thread: the least busy one, started on demand. */
function run<T>(job: { password: string; hash: string } | { password: string; rounds: number }): Promise<T> {
  if (workers.length < SIZE && workers.every((w) => w.pending.size > 0)) workers.push(spawn());
  const entry = workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    entry.pending.set(id, { resolve, reject });
    // Only while a job is under way does the worker keep the process up.
    entry.worker.ref();
    entry.worker.postMessage({ id, ...job });
  });
}

/** bcrypt.compare on a worker thread. */
export function bcryptCompare(password: string, hash: string): Promise<boolean> {
  return run<boolean>({ password, hash });
}

/** bcrypt.hash on a worker thread. */
export function bcryptHash(password: string, rounds: number): Promise<string> {
  return run<string>({ password, rounds });
}
