// Runs a Node program (argv[2], with the rest of its arguments) in this
// process, under --expose-gc, and answers "heap" messages on the IPC channel
// with the heap in use after a full collection: how bench/forwarding.ts reads
// the registry's heap after 10k and after 100k calls without a debug endpoint.
import { pathToFileURL } from 'node:url';

const [script, ...args] = process.argv.slice(2);
process.argv = [process.argv[0], script, ...args];
process.on('message', (message) => {
  if (message !== 'heap') return;
  globalThis.gc();
  process.send({ heapUsed: process.memoryUsage().heapUsed });
});
// The IPC channel must not keep the registry alive after SIGTERM.
process.channel?.unref();
await import(pathToFileURL(script).href);
