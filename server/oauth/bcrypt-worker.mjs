// A worker thread of server/oauth/bcrypt-pool.ts: compares a password with a
// bcrypt hash, or hashes one, off the registry's event loop. Plain JavaScript: a worker
// thread does not inherit tsx's loader.
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

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
