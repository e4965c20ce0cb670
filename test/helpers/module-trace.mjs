// Records every module a process loads, one URL per line, in the file named by
// KEYGATE_TEST_MODULE_TRACE: `node --import ./module-trace.mjs …`. A loader hook
// (module.register) sees each module as Node loads it, from the sources through
// tsx or from the compiled build alike; CommonJS files that a package require()s
// inside itself are not seen, its entry point is. Used by startup.test.ts.
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

let file;

export function initialize(data) {
  file = data.file;
}

export async function load(url, context, nextLoad) {
  appendFileSync(file, `${url}\n`);
  return nextLoad(url, context);
}

if (isMainThread && process.env.KEYGATE_TEST_MODULE_TRACE) register(import.meta.url, { data: { file: process.env.KEYGATE_TEST_MODULE_TRACE } });
