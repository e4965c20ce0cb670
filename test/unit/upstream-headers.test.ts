import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildUpstreamHeaders } from '../../server/gateway/upstream-transport.ts';

// What the raw endpoint sends upstream of a client's headers (a flat list, as
// node writes it): the allowed ones, never the caller's token or cookies, and
// a header the upstream credential sets carries the credential's value only,
// whatever the client sent under that name, in any case.

const lines = (list: string[], name: string) => list.filter((_, i) => i % 2 === 1 && list[i - 1]!.toLowerCase() === name);

test("a header the credential sets is the credential's alone, whatever the client sent under its name", () => {
  const client = { 'mcp-upstream-key': 'from-the-client', 'user-agent': 'client-agent', accept: 'application/json', authorization: 'Bearer caller-token', cookie: 'a=b', 'x-other': 'no' };
  const list = buildUpstreamHeaders(client, { 'Mcp-Upstream-Key': 'the-credential', 'User-Agent': 'keygate-credential' }, undefined, true);
  assert.deepEqual(lines(list, 'mcp-upstream-key'), ['the-credential']);
  assert.deepEqual(lines(list, 'user-agent'), ['keygate-credential']);
  assert.deepEqual(lines(list, 'accept'), ['application/json']);
  for (const name of ['authorization', 'cookie', 'x-other']) assert.deepEqual(lines(list, name), [], name);
});

test('the caller token never goes upstream; the credential does, once; the session id is the one given', () => {
  const list = buildUpstreamHeaders({ authorization: 'Bearer caller-token', 'mcp-session-id': 'wrapped-by-keygate', 'mcp-method': 'tools/call' }, { authorization: 'Bearer upstream-key' }, 'upstream-session', false);
  assert.deepEqual(lines(list, 'authorization'), ['Bearer upstream-key']);
  assert.deepEqual(lines(list, 'mcp-session-id'), ['upstream-session']);
  assert.deepEqual(lines(list, 'mcp-method'), [], 'not mirrored: the body says what is called');
});
