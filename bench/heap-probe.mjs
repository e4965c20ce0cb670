// Runs a Node program (argv[2], with the rest of its arguments) in this
// process, under --expose-gc, and answers messages on the IPC channel: "heap"
// with the heap in use after a full collection (how bench/forwarding.ts reads
// the registry's heap after 10k and after 100k calls without a debug
// endpoint); "cpu-start" and "cpu-stop" with a CPU profile of what ran in
// between (bench/profile.ts: the measured calls only, not the start-up).
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';

const [script, ...args] = process.argv.slice(2);
process.argv = [process.argv[0], script, ...args];
let session;
process.on('message', async (message) => {
  if (message === 'heap') {
    globalThis.gc();
    process.send({ heapUsed: process.memoryUsage().heapUsed });
  } else if (message === 'cpu-start') {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    process.send({ started: true });
  } else if (message === 'cpu-stop') {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    process.send({ profile });
  }
});
// The IPC channel must not keep the registry alive after SIGTERM.
process.channel?.unref();
await import(pathToFileURL(script).href);
