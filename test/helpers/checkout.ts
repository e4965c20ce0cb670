import { cpSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

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
 * without touching this one.
 */
export function copyCheckout(): Checkout {
  const root = mkdtempSync(join(tmpdir(), 'keygate-checkout-'));
  cpSync(join(ROOT, 'server'), join(root, 'server'), { recursive: true });
  for (const file of ['package.json', 'tsconfig.json']) cpSync(join(ROOT, file), join(root, file));
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(root, 'node_modules'), 'dir');
  return { root, bin: join(root, 'server', 'bin', 'keygate-registry.mjs'), close: () => rmSync(root, { recursive: true, force: true }) };
}
