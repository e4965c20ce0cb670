import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** What the bin runs from, besides the packages. */
const RUNS_FROM = ['server', 'package.json', 'tsconfig.json'];

export interface Checkout {
  /** The copy's root directory. */
  root: string;
  /** Its server/bin/keygate-registry.mjs. */
  bin: string;
  close(): void;
}

/**
 * A copy of what the bin runs from (server/, package.json, tsconfig.json; the
 * node_modules linked), without dist/: a checkout to build, edit and start in
 * without touching this one. With `rev`, as of that git revision.
 */
export function copyCheckout(rev?: string): Checkout {
  const root = mkdtempSync(join(tmpdir(), 'keygate-checkout-'));
  if (rev) execFileSync('sh', ['-c', `git archive "$0" ${RUNS_FROM.join(' ')} | tar -x -C "$1"`, rev, root], { cwd: ROOT });
  else for (const path of RUNS_FROM) cpSync(join(ROOT, path), join(root, path), { recursive: true });
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(root, 'node_modules'), 'dir');
  return { root, bin: join(root, 'server', 'bin', 'keygate-registry.mjs'), close: () => rmSync(root, { recursive: true, force: true }) };
}
