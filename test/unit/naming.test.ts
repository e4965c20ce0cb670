import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { exposedName, NameBook } from '../../server/gateway/naming.ts';

// Names on the merged endpoint (server/gateway/naming.ts): <prefix>__<name>,
// or the upstream's own name for the one server of a gateway with prefix "".

const plain = { name: 'plain', prefix: '' };
const linear = { name: 'linear', prefix: 'linear' };
const short = { name: 'issues', prefix: 'l' };
const all = [plain, linear, short];

describe('merged names', () => {
  test('a prefix is put before the name; prefix "" keeps it; a name no client may use is cleaned either way, with a digest of the original', () => {
    assert.equal(exposedName('linear', 'create_issue'), 'linear__create_issue');
    assert.equal(exposedName('', 'create_issue'), 'create_issue');
    assert.match(exposedName('', 'créer issue'), /^cr_er_issue-[0-9a-f]{8}$/);
    assert.match(exposedName('linear', 'créer issue'), /^linear__cr_er_issue-[0-9a-f]{8}$/);
    assert.ok(exposedName('', 'x'.repeat(200)).length <= 128);
  });

  test('a name routes by the longest prefix it starts with, else to the unprefixed server', () => {
    const book = new NameBook();
    assert.deepEqual(book.resolve('linear__create_issue', all), { assignment: 'linear', original: 'create_issue' });
    assert.deepEqual(book.resolve('l__list', all), { assignment: 'issues', original: 'list' });
    assert.deepEqual(book.resolve('echo', all), { assignment: 'plain', original: 'echo' });
    assert.equal(book.resolve('echo', [linear, short]), undefined, 'no unprefixed server: an unknown name');
  });

  test("a name of the unprefixed server that reads as another server's is not handed out: that server keeps it", () => {
    const book = new NameBook();
    assert.equal(book.expose(plain, 'linear__create_issue', all), undefined);
    assert.equal(book.expose(linear, 'create_issue', all), 'linear__create_issue');
    assert.equal(book.expose(plain, 'echo', all), 'echo');
    const cleaned = book.expose(plain, 'créer issue', all)!;
    assert.deepEqual(book.resolve(cleaned, all), { assignment: 'plain', original: 'créer issue' }, 'a cleaned name finds its original');
  });
});
