// Loaded with --import by bench/startup.ts: at exit, appends the CPU time this
// process used (user + system, all threads, in ms) to the file named by
// KEYGATE_BENCH_CPU_FILE. Less at the mercy of the machine's load than the
// wall-clock time.
import { appendFileSync } from 'node:fs';

const file = process.env.KEYGATE_BENCH_CPU_FILE;
if (file) {
  process.on('exit', () => {
    const { user, system } = process.cpuUsage();
    appendFileSync(file, `${(user + system) / 1000}\n`);
  });
}
