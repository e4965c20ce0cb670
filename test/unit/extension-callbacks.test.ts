import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthCallbacks } from '../../extension/auth/callbacks.ts';
import { SignInCancelledError, SignInTimeoutError } from '../../extension/errors.ts';
import { Logger } from '../../extension/log.ts';
import { RecordingSink } from './extension-fakes.ts';

// The UriHandler's side of sign-in: a redirect goes to the sign-in that sent its state, or nowhere.

function setup() {
  const sink = new RecordingSink();
  return { sink, callbacks: new AuthCallbacks(new Logger(sink)) };
}

describe('extension sign-in redirects (UriHandler)', () => {
  test('a redirect reaches the sign-in waiting for its state, with its parameters', async () => {
    const { callbacks } = setup();
    const waiting = callbacks.expect('state-a', { timeoutMs: 5_000 });
    assert.equal(callbacks.handleUri('/auth-callback', 'code=abc&state=state-a&iss=http://127.0.0.1:8787'), true);
    const params = await waiting;
    assert.equal(params.get('code'), 'abc');
    assert.equal(params.get('iss'), 'http://127.0.0.1:8787');
    assert.equal(callbacks.pending, 0);
  });

  test('a redirect with an unknown or missing state is dropped; the sign-in keeps waiting', async () => {
    const { callbacks, sink } = setup();
    const waiting = callbacks.expect('state-a', { timeoutMs: 5_000 });
    assert.equal(callbacks.handleUri('/auth-callback', 'code=evil&state=state-b'), false);
    assert.equal(callbacks.handleUri('/auth-callback', 'code=evil'), false);
    assert.equal(callbacks.pending, 1);
    assert.ok(sink.lines.some((l) => l.includes('no sign-in is waiting for')));
    callbacks.deliver(new URLSearchParams({ code: 'good', state: 'state-a' }));
    assert.equal((await waiting).get('code'), 'good');
  });

  test('only the /auth-callback path is handled', () => {
    const { callbacks } = setup();
    void callbacks.expect('s', { timeoutMs: 50 }).catch(() => {});
    assert.equal(callbacks.handleUri('/something-else', 'state=s&code=x'), false);
    assert.equal(callbacks.pending, 1);
  });

  test('each of two concurrent sign-ins gets its own redirect', async () => {
    const { callbacks } = setup();
    const a = callbacks.expect('a', { timeoutMs: 5_000 });
    const b = callbacks.expect('b', { timeoutMs: 5_000 });
    callbacks.handleUri('/auth-callback', 'state=b&code=for-b');
    callbacks.handleUri('/auth-callback', 'state=a&code=for-a');
    assert.equal((await a).get('code'), 'for-a');
    assert.equal((await b).get('code'), 'for-b');
  });

  test('waiting ends with SignInTimeoutError after the timeout, and with SignInCancelledError on abort', async () => {
    const { callbacks } = setup();
    await assert.rejects(callbacks.expect('t', { timeoutMs: 20 }), SignInTimeoutError);
    const controller = new AbortController();
    const waiting = callbacks.expect('c', { timeoutMs: 5_000, signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, SignInCancelledError);
    assert.equal(callbacks.pending, 0);
    assert.equal(callbacks.handleUri('/auth-callback', 'state=c&code=late'), false, 'a late redirect finds nobody');
  });
});
