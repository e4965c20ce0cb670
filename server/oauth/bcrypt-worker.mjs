// A worker thread of server/oauth/bcrypt-pool.ts: compares a password with a
// bcrypt hash, or hashes one, off the registry's event loop. Plain JavaScript: a worker
// thread does not inherit tsx's loader.
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

// This thread only (Linux keeps a nice value per thread): on a machine whose
// cores are busy, the registry's own thread (every MCP call) goes first, and
// a password check takes the CPU time left over.
try {
  const nice = workerData?.nice ?? 0;
  if (nice > 0) setPriority(0, Math.min(19, getPriority(0) + nice));
} catch {
  // Not permitted here (or not supported): the thread runs at the process's priority.
}

parentPort.on('message', ({ id, password, hash, rounds }) => {
  if (rounds !== undefined) return parentPort.postMessage({ id, result: bcrypt.hashSync(password, rounds) });
  let ok = false;
  try {
    ok = bcrypt.compareSync(password, hash);
  } catch {
    // A malformed hash matches nothing (config validation makes this unreachable).
  }
  parentPort.postMessage({ id, result: ok });
});
