#!/usr/bin/env node
// Runs the test files of the named suites (test/<suite>/**/*.test.ts) with
// node's own test runner through tsx, so results are counted and reported.
// Usage: node scripts/run-tests.mjs unit integration [--only PATTERN]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? new RegExp(args.splice(onlyAt, 2)[1]) : undefined;
const suites = args.length ? args : ['unit', 'integration'];

function collect(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return collect(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const files = suites.flatMap((s) => collect(join(root, 'test', s))).map((f) => relative(root, f)).filter((f) => !only || only.test(f)).sort();
if (files.length === 0) {
  console.error(`no test files in ${suites.map((s) => `test/${s}`).join(', ')}`);
  process.exit(1);
}

const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
