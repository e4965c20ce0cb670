// Runs a Node program (argv[2], with the rest of its arguments) in this
// process, under --expose-gc, and answers messages on the IPC channel: "heap"
// with the heap in use after a full collection (how bench/forwarding.ts reads
// the registry's heap after 10k and after 100k calls without a debug
// endpoint); "cpu-start" and "cpu-stop" with a CPU profile of what ran in
// between (bench/profile.ts: the measured calls only, not the start-up);
// "loop-start" and "loop-stop" with the event loop's delay in between (max and
// p99, ms: bench/load.ts and test/integration/sign-in-event-loop.test.ts);
// "handles" with the open sockets, timers and other handles by type (the soak).
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';

// BENCH_V8_FLAGS: V8 flags for the program (say "--trace-opt --trace-deopt"; node refuses most in NODE_OPTIONS).
if (process.env.BENCH_V8_FLAGS) v8.setFlagsFromString(process.env.BENCH_V8_FLAGS);
const [script, ...args] = process.argv.slice(2);
process.argv = [process.argv[0], script, ...args];
let session;
let loop;
process.on('message', async (message) => {
  if (message === 'heap') {
    globalThis.gc();
    const { heapUsed, rss } = process.memoryUsage();
    process.send({ heapUsed, rss });
  } else if (message === 'loop-start') {
    loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    process.send({ started: true });
  } else if (message === 'loop-stop') {
    loop.disable();
    process.send({ maxMs: loop.max / 1e6, p99Ms: loop.percentile(99) / 1e6 });
  } else if (message === 'handles') {
    // Without the probe's own IPC pipe.
    const handles = {};
    for (const h of process._getActiveHandles()) {
      if (h === process.channel) continue;
      const type = h.constructor?.name ?? 'unknown';
      handles[type] = (handles[type] ?? 0) + 1;
    }
    process.send({ handles, timers: process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length });
  } else if (message === 'cpu-start') {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    // Every 100 µs (V8's default is 1 ms: too coarse for calls of a few hundred µs).
    await session.post('Profiler.setSamplingInterval', { interval: Number(process.env.BENCH_SAMPLING_US ?? 100) });
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
