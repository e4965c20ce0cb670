import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatAudit } from '../../extension/audit.ts';
import { Backoff, CONNECT_POLL_BACKOFF, Timer, UNREACHABLE_BACKOFF } from '../../extension/sidebar/schedule.ts';
import { statusItem } from '../../extension/status.ts';
import type { ViewModel } from '../../webview/protocol.ts';
import { FakeScheduler } from './extension-fakes.ts';

// Time (backoff, the one-pending-run timer) on a fake clock; the status-bar
// item and the audit view, both derived from data.

describe('backoff and timer', () => {
  test('registry down: 1, 2, 4, 8 seconds, then every 15; reset starts over', () => {
    const b = new Backoff(UNREACHABLE_BACKOFF);
    assert.deepEqual(Array.from({ length: 7 }, () => b.next()), [1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    b.reset();
    assert.equal(b.next(), 1000);
  });

  test('a browser connect: 2, 3, 4.5 … seconds, at most 30', () => {
    const b = new Backoff(CONNECT_POLL_BACKOFF);
    assert.deepEqual(Array.from({ length: 9 }, () => b.next()), [2000, 3000, 4500, 6750, 10125, 15188, 22781, 30000, 30000]);
  });

  test('one pending run: scheduling again replaces it; dueAt says when', () => {
    const clock = new FakeScheduler();
    const timer = new Timer(clock);
    const ran: string[] = [];
    timer.schedule(5000, () => ran.push('first'));
    const due = timer.schedule(1000, () => ran.push('second'));
    assert.equal(due, clock.ms + 1000);
    assert.deepEqual(clock.pending, [1000]);
    clock.advance(10_000);
    assert.deepEqual(ran, ['second']);
    assert.equal(timer.dueAt, undefined);
    timer.schedule(1000, () => ran.push('cancelled'));
    timer.cancel();
    clock.advance(10_000);
    assert.deepEqual(ran, ['second']);
  });
});

describe('status-bar item', () => {
  const view = (over: Partial<ViewModel>): ViewModel => ({ registry: 'https://keygate.example.com', status: 'ready', gateways: [], ...over });
  const cases: [string, ViewModel, string, string][] = [
    ['signed out', view({ status: 'signed_out' }), '$(key) Keygate: Sign In', 'keygate.signIn'],
    ['session ended', view({ status: 'session_ended' }), '$(key) Keygate: Sign In', 'keygate.signIn'],
    ['registry down', view({ status: 'registry_unreachable', account: 'alice' }), '$(debug-disconnect) Keygate: offline', 'keygate.openSidebar'],
    ['signed in', view({ account: 'alice' }), '$(key) alice', 'keygate.openSidebar'],
    ['no registry', view({ status: 'no_registry', registry: undefined }), '$(key) Keygate: no registry', 'keygate.selectRegistry'],
  ];
  for (const [name, v, text, command] of cases) {
    test(name, () => {
      const item = statusItem(v);
      assert.equal(item.text, text);
      assert.equal(item.command, command);
    });
  }

  test('signed in with servers waiting for the person: counted', () => {
    const s = { gateway: 'g', server: 's', upstreamName: 'U', scheme: 'per_user', storage: 'registry', input: 'fields', fields: [], choices: [], actions: [], pending: false } as const;
    const item = statusItem(view({ account: 'alice', gateways: [{ id: 'g', name: 'G', servers: [{ ...s, state: 'needs_credentials' }, { ...s, server: 't', state: 'ready' }] }] }));
    assert.equal(item.text, '$(key) alice $(warning) 1');
    assert.match(item.tooltip, /1 server\(s\) need you to connect/);
  });
});

describe('audit view', () => {
  test('a table of the calls, newest first, and what to do when there are none', () => {
    const text = formatAudit(
      'http://127.0.0.1:8787',
      'alice',
      [
        { time: '2026-11-23T10:00:02.000Z', gateway: 'demo', server: 'personal', method: 'tools/call', name: 'echo', outcome: 'ok', status: 200, latency_ms: 12.4 },
        { time: '2026-11-23T10:00:01.000Z', gateway: 'demo', server: null, method: 'tools/list', outcome: 'identity_missing', status: 200, latency_ms: 3 },
      ],
      true,
      new Date('2026-11-23T10:01:00Z'),
    );
    assert.deepEqual(text.split('\n').slice(3, 7), [
      '2026-11-23 10:00:02Z  tools/call echo',
      '    demo/personal · ok · 200 · 12 ms',
      '2026-11-23 10:00:01Z  tools/list',
      '    demo · identity_missing · 200 · 3 ms',
    ]);
    // Short enough for an editor beside the side bar.
    assert.ok(text.split('\n').slice(3, 7).every((l) => l.length <= 40));
    assert.match(text, /Older calls exist/);
    assert.match(formatAudit('http://r', 'alice', [], false), /No calls recorded yet/);
  });
});
