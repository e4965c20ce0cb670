import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Identity, MyServer } from '../../extension/me-client.ts';
import { buildServer } from '../../extension/sidebar/view-model.ts';
import { renderApp, type UiState } from '../../webview/render.ts';

// The sidebar as drawn (webview/render.ts) for a server whose identity an
// admin disabled: the person reads that an admin disabled it and what the
// next call does, and is not asked to connect again. The DOM here is a
// minimal stand-in (elements, attributes, text): render.ts only builds nodes.

class FakeText {
  constructor(readonly text: string) {}
  get textContent(): string {
    return this.text;
  }
}

class FakeElement {
  readonly attributes = new Map<string, string>();
  readonly children: (FakeElement | FakeText)[] = [];
  className = '';
  value = '';
  checked = false;
  constructor(readonly tagName: string) {}
  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value);
  }
  append(...nodes: (FakeElement | FakeText)[]): void {
    this.children.push(...nodes);
  }
  get textContent(): string {
    return this.children.map((c) => c.textContent).join('');
  }
  /** Every element below this one (depth first) matching `match`. */
  all(match: (e: FakeElement) => boolean): FakeElement[] {
    return this.children.flatMap((c) => (c instanceof FakeElement ? [...(match(c) ? [c] : []), ...c.all(match)] : []));
  }
}

before(() => {
  (globalThis as { document?: unknown }).document = { createElement: (tag: string) => new FakeElement(tag), createTextNode: (text: string) => new FakeText(text) };
});

const mine: Identity = { id: 'mine', label: undefined, upstream: 'tickets', availability: 'private', kind: 'bearer', owner: 'you', fieldsSet: [], publicValues: {}, disabled: true };

/** What /api/v1/me/servers says of a per-user server whose own (default) identity an admin disabled, with a colleague's global identity to choose. */
const disabledByAdmin: MyServer = {
  gateway: { id: 'team', name: 'Team' },
  server: 'tickets',
  upstream: { id: 'tickets', name: 'Tickets', description: undefined },
  scheme: 'per_user',
  storage: 'registry',
  credential: { type: 'bearer', fields: [] },
  state: 'disabled',
  reason: 'an admin disabled your identity for this server: calls are refused until an admin enables it (Keygate does not switch you to another identity by itself)',
  identity: mine,
  choices: [mine, { ...mine, id: 'alices', label: 'Team key', availability: 'global', owner: 'someone else', disabled: false }],
  mcpUrl: 'http://x/mcp/team/tickets',
  connectUrl: 'http://x/connect/team/tickets',
};

function render(s: MyServer): FakeElement {
  const server = buildServer(s, undefined, false);
  const ui: UiState = {
    view: { status: 'ready', registry: 'http://x', account: 'bob', gateways: [{ id: 'team', name: 'Team', servers: [server] }] },
    drafts: new Map(),
    open: new Set(),
    results: new Map(),
    busy: new Set(),
  };
  const root = new FakeElement('body');
  root.append(...(renderApp(ui) as unknown as FakeElement[]));
  return root.all((e) => e.tagName === 'li')[0]!;
}

describe('the sidebar draws a server whose identity an admin disabled', () => {
  test('the state reads "disabled by an admin" with the registry\'s hint; the identity is marked disabled; no connect or credential form, the other identity may be chosen', () => {
    const li = render(disabledByAdmin);
    const badge = li.all((e) => e.attributes.get('data-state') !== undefined)[0]!;
    assert.deepEqual([badge.attributes.get('data-state'), badge.textContent], ['disabled', 'disabled by an admin']);
    assert.match(li.textContent, /an admin disabled your identity for this server: calls are refused until an admin enables it/);
    assert.match(li.all((e) => e.className === 'identity')[0]!.textContent, /^Identity: yours \(private, disabled by an admin\)$/);
    const buttons = li.all((e) => e.tagName === 'button').map((b) => b.textContent);
    assert.ok(!buttons.some((b) => /Connect|Enter Credentials|Change Credentials/.test(b)), `not asked to connect again: ${buttons}`);
    assert.equal(li.all((e) => e.tagName === 'form').length, 0, 'no credential form');
    const offered = li.all((e) => e.tagName === 'option').map((o) => o.textContent);
    assert.ok(offered.some((o) => o.includes('Team key')), `the colleague's global identity is a choice: ${offered}`);
  });

  test('the same server when it needs credentials asks for them (the contrast: a form, not "disabled")', () => {
    const li = render({ ...disabledByAdmin, state: 'needs_credentials', reason: 'fill in your Tickets credentials', identity: undefined, choices: [] });
    assert.equal(li.all((e) => e.attributes.get('data-state') !== undefined)[0]!.attributes.get('data-state'), 'needs_credentials');
    assert.equal(li.all((e) => e.tagName === 'form').length, 1);
    assert.doesNotMatch(li.textContent, /disabled by an admin/);
  });
});
