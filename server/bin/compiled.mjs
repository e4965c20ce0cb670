// The compiled server: every server/**/*.ts turned into plain JavaScript under
// dist/server/ by esbuild, one output file per source file (the same module
// graph, so the lazy imports of main.ts stay lazy), so the bin starts without a
// TypeScript loader. Made by `npm install` (the prepare script) or
// `npm run build:server` (server/bin/build-server.mjs).
//
// A build runs only when it was made from exactly the sources beside it: it
// records a SHA-256 of every file under server/ and of tsconfig.json, and the
// bin computes it again at each start (a few ms). After any edit, pull or
// checkout the hashes differ and the bin runs the sources through tsx
// instead, so a stale build never runs.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCES = join(ROOT, 'server');
export const OUT_DIR = join(ROOT, 'dist', 'server');
const STAMP = 'source-hash';

/** Every file under server/, relative to the root with / separators, sorted. */
function sourceFiles(dir = SOURCES) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else files.push(relative(ROOT, path).split(sep).join('/'));
  }
  return files.sort();
}

/** SHA-256 over the name and bytes of every file a build is made from. */
export function sourceHash() {
  const hash = createHash('sha256');
  for (const file of [...sourceFiles(), 'tsconfig.json']) hash.update(`${file}\0`).update(readFileSync(join(ROOT, file))).update('\0');
  return hash.digest('hex');
}

/** The URL of the compiled main.js when dist/server was built from the sources as they are now; otherwise undefined. */
export function compiledEntry() {
  let recorded;
  try {
    recorded = readFileSync(join(OUT_DIR, STAMP), 'utf8').trim();
  } catch {
    return undefined;
  }
  return recorded === sourceHash() ? pathToFileURL(join(OUT_DIR, 'main.js')).href : undefined;
}

// Each output imports its neighbours as .js, leaves packages to Node, and sees
// import.meta.url as its source file's URL, so paths relative to a module
// (bcrypt-worker.mjs, package.json, assets) resolve as they do under tsx.
const oneFilePerSource = {
  name: 'one-file-per-source',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (args.path.endsWith('.ts')) return { path: args.path.slice(0, -3) + '.js', external: true };
      // Anything else (.mjs, .json, assets) is not compiled: import the source's copy.
      return { path: toImport(relative(dirname(outputOf(args.importer)), join(dirname(args.importer), args.path))), external: true };
    });
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const other = /import\.meta\.(?!url\b)\w+/.exec(text);
      if (other) return { errors: [{ text: `${other[0]} is not supported in server/ (its compiled copy lives in dist/server/): use new URL(…, import.meta.url) (${relative(ROOT, args.path)})` }] };
      const source = toImport(relative(dirname(outputOf(args.path)), args.path));
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(source)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

/** Where a source file's compiled copy goes. */
function outputOf(source) {
  return join(OUT_DIR, relative(SOURCES, source)).replace(/\.ts$/, '.js');
}

function toImport(path) {
  const posix = path.split(sep).join('/');
  return posix.startsWith('.') ? posix : `./${posix}`;
}

/** Compile server/ into dist/server/ (through a temporary directory, so a build is never seen half written); returns the number of files. */
export async function buildServer() {
  const hash = sourceHash(); // before reading: an edit during the build leaves a stamp that no longer matches
  const { build } = await import('esbuild');
  const entryPoints = sourceFiles().filter((f) => f.endsWith('.ts'));
  const tmp = `${OUT_DIR}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints,
      outdir: tmp,
      outbase: 'server',
      bundle: true,
      packages: 'external',
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: true,
      logLevel: 'silent',
      plugins: [oneFilePerSource],
    });
    if (result.warnings.length) throw new Error(result.warnings.map((w) => w.text).join('\n'));
    writeFileSync(join(tmp, STAMP), `${hash}\n`);
    rmSync(OUT_DIR, { recursive: true, force: true });
    renameSync(tmp, OUT_DIR);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return entryPoints.length;
}
