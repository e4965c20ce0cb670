import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The server's layers, from the bottom: the catalog (gateways, assignments,
// membership, switches, the one matcher and the one failure type) knows
// nothing of the layers that use it; the vault (identities and credentials)
// sits on the catalog and knows nothing of the gateway (the MCP request path)
// or the API. Read from the import statements of every file.

const server = resolve(dirname(fileURLToPath(import.meta.url)), '../../server');

function importsOf(dir: string): Array<{ file: string; target: string }> {
  const found: Array<{ file: string; target: string }> = [];
  for (const name of readdirSync(join(server, dir), { recursive: true }) as string[]) {
    if (!name.endsWith('.ts')) continue;
    const file = join(server, dir, name);
    for (const match of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      found.push({ file: relative(server, file), target: relative(server, resolve(dirname(file), match[1]!)) });
    }
  }
  return found;
}

const forbidden = (dir: string, layers: string[]) =>
  importsOf(dir)
    .filter(({ target }) => layers.some((layer) => target.startsWith(`${layer}/`)))
    .map(({ file, target }) => `${file} imports ${target}`);

test('the catalog imports none of the layers above it', () => {
  assert.ok(importsOf('catalog').length > 0, 'the catalog has imports to check');
  assert.deepEqual(forbidden('catalog', ['gateway', 'vault', 'api', 'connect', 'audit']), []);
});

test('the vault imports neither the gateway nor the API', () => {
  assert.ok(importsOf('vault').some(({ target }) => target.startsWith('catalog/')), 'the vault reads the catalog');
  assert.deepEqual(forbidden('vault', ['gateway', 'api', 'connect']), []);
});
