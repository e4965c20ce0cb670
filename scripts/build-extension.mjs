// Bundles the VS Code extension: extension/extension.ts → dist/extension.cjs.
// CommonJS because package.json is "type": "module" and VS Code loads a main
// ending in .cjs as CommonJS; `vscode` is provided by the extension host.
// And the sidebar webview beside it: webview/main.ts → dist/webview.js (an
// IIFE for the browser, minified) and webview/sidebar.css → dist/webview.css.
// Warnings fail the build, like errors.
// Usage: node scripts/build-extension.mjs [--outfile PATH]   (tests bundle elsewhere;
// the webview files go next to the extension bundle)
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = process.argv.indexOf('--outfile');
const outfile = at >= 0 ? process.argv[at + 1] : 'dist/extension.cjs';
if (!outfile) {
  console.error('build-extension: --outfile needs a path');
  process.exit(2);
}

const common = { absWorkingDir: root, bundle: true, sourcemap: false, logLevel: 'silent', metafile: true };
const outdir = dirname(outfile);
const bundles = [
  { ...common, entryPoints: ['extension/extension.ts'], outfile, format: 'cjs', platform: 'node', target: 'node20', external: ['vscode'], minify: false },
  // The webview runs in VS Code's Chromium (VS Code 1.101+): ES2022 is safe.
  { ...common, entryPoints: ['webview/main.ts'], outfile: join(outdir, 'webview.js'), format: 'iife', platform: 'browser', target: 'es2022', minify: true },
  { ...common, entryPoints: ['webview/sidebar.css'], outfile: join(outdir, 'webview.css'), minify: true },
];

for (const options of bundles) {
  const result = await build(options).catch((err) => {
    for (const e of err.errors ?? []) console.error(`error: ${e.text}${e.location ? ` (${e.location.file}:${e.location.line})` : ''}`);
    if (!err.errors) console.error(err);
    process.exit(1);
  });
  if (result.warnings.length) {
    for (const w of result.warnings) console.error(`warning: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);
    console.error(`build-extension: ${result.warnings.length} warning(s); failing`);
    process.exit(1);
  }
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.log(`built ${options.outfile} (${Math.round(bytes / 1024)} KB)`);
}
