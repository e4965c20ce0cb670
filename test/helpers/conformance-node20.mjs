// Loaded with `node --import` before the conformance CLI
// (@modelcontextprotocol/conformance 0.1.x, which declares Node >= 22): its
// bundle imports `globSync` from node:fs (Node 22) for its tier-check command
// only. On Node 20 that import fails at link time, so the CLI's imports of
// `fs` resolve to node:fs plus a globSync that says it needs Node 22. The
// server mode we run never calls it.
import { register } from 'node:module';

const fs = `export * from 'node:fs'; export { default } from 'node:fs'; export function globSync() { throw new Error('globSync needs Node 22 (conformance tier-check)'); }`;
const hooks = `
const shim = ${JSON.stringify(`data:text/javascript,${encodeURIComponent(fs)}`)};
export async function resolve(specifier, context, next) {
  if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL?.includes('/@modelcontextprotocol/conformance/')) return { url: shim, shortCircuit: true };
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
