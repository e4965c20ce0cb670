// npm run build:server: compile server/ into dist/server/ for a fast start (compiled.mjs).
// With --if-possible (the prepare script of `npm install`), a build that cannot
// be made (no esbuild in a production install, a read-only checkout) is a
// warning, not a failed install: the bin then runs the sources through tsx.
import { buildServer, OUT_DIR } from './compiled.mjs';

const ifPossible = process.argv.includes('--if-possible');
try {
  const files = await buildServer();
  console.log(`built ${OUT_DIR} (${files} files)`);
} catch (err) {
  const message = (err.errors ?? []).map((e) => `${e.text}${e.location ? ` (${e.location.file}:${e.location.line})` : ''}`).join('\n') || err.message;
  console.error(`build-server: ${message}`);
  if (!ifPossible) process.exit(1);
  console.error('build-server: keygate-registry will run the TypeScript sources through tsx (slower to start)');
}
