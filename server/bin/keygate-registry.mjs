#!/usr/bin/env node
// The package's bin. It runs the server compiled to plain JavaScript
// (dist/server, made by `npm install` or `npm run build:server`) when that
// build was made from the sources as they are now, and otherwise runs
// server/main.ts through tsx, so it needs no build step and never runs a stale
// build (compiled.mjs).
import { compiledEntry } from './compiled.mjs';

const entry = compiledEntry();
if (entry) {
  await import(entry);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../main.ts');
}
