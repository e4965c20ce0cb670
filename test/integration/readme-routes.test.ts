import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFixture, type Fixture } from '../helpers/fixture.ts';

// The README's table "What the registry serves" against a running registry:
// every path it lists is served (answered by its route, whatever the status
// without a token), so the table cannot drift from the server again.

const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

interface Listed {
  row: string;
  /** The row's description says the path exists only in federated mode (this registry is builtin). */
  federatedOnly: boolean;
  methods: string[];
  path: string;
}

/** The table's rows as (methods, path) pairs: "`GET`, `POST /a`; `DELETE /a/{id}`" gives GET+POST /a and DELETE /a/{id}. */
function listedRoutes(): Listed[] {
  const section = readme.slice(readme.indexOf('## What the registry serves'));
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  assert.ok(rows.length >= 10, 'the README has the table');
  return rows.flatMap((row) => {
    const [first = '', what = ''] = row.replace(/^\| /, '').split(' | ');
    const federatedOnly = /federated mode/.test(what);
    return first.split(';').flatMap((group) => {
      const tokens = [...group.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
      const methods: string[] = [];
      const paths: string[] = [];
      for (const token of tokens) {
        const m = /^(GET|POST|PUT|PATCH|DELETE)\b\s*(.*)$/.exec(token);
        if (m) {
          methods.push(m[1]!);
          if (m[2]) paths.push(m[2]);
        } else paths.push(token);
      }
      return paths.map((path) => ({ row: first, federatedOnly, methods, path }));
    });
  });
}

/** Concrete paths: optional parts with and without, placeholders filled in. */
function concrete(path: string): string[] {
  const optional = /\[([^[\]]*(?:\[[^[\]]*\])?[^[\]]*)\]/.exec(path);
  if (optional) return [...concrete(path.replace(optional[0], '')), ...concrete(path.replace(optional[0], optional[1]!))];
  return [path.replace('{gateway}', 'team').replace('{server}', 'demo').replace('{id}', 'no-such-identity').replace('…', 'users')];
}

let f: Fixture;
before(async () => {
  f = await startFixture();
});
after(() => f?.close());

describe('README: What the registry serves', () => {
  test('every listed path is served by a route of its own (never the catch-all "nothing at")', async () => {
    const checked: string[] = [];
    for (const listed of listedRoutes()) {
      for (const path of concrete(listed.path)) {
        const methods = listed.methods.length ? listed.methods : ['GET', 'POST'];
        const answers: { method: string; status: number; body: string }[] = [];
        for (const method of methods) {
          assert.ok((METHODS as readonly string[]).includes(method), `${listed.row}: ${method}`);
          const res = await fetch(`${f.registry.url}${path}`, {
            method,
            redirect: 'manual',
            headers: { accept: 'application/json, text/event-stream, text/html', 'content-type': 'application/json' },
            ...(method !== 'GET' && method !== 'DELETE' && { body: '{}' }),
          });
          answers.push({ method, status: res.status, body: await res.text() });
        }
        const served = answers.filter((a) => !(a.status === 404 && a.body.includes('"error":"not_found"') && a.body.includes('nothing at')));
        // A row without methods is served by at least one of GET and POST; a row that names them, by each.
        if (listed.federatedOnly) assert.equal(served.length, 0, `${path} is said to be served in federated mode only`);
        else if (listed.methods.length) assert.equal(served.length, answers.length, `${path} (${listed.row}): ${JSON.stringify(answers.map((a) => [a.method, a.status]))}`);
        else assert.ok(served.length > 0, `${path} (${listed.row}) is not served: ${JSON.stringify(answers.map((a) => [a.method, a.status]))}`);
        checked.push(`${methods.join('/')} ${path}`);
      }
    }
    assert.ok(checked.some((c) => c.endsWith(' /api/v1/me/servers')) && checked.some((c) => c.endsWith(' /mcp/team')), checked.join('\n'));
  });

  test('the check can fail: a path the registry does not serve is the catch-all 404', async () => {
    const res = await fetch(`${f.registry.url}/api/v1/me/nothing-here`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /nothing at GET \/api\/v1\/me\/nothing-here/);
  });
});
