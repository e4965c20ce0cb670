import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fieldProblem, formProblems, typedValues } from '../../webview/fields.ts';
import { parseMessage, toExtension, toWebview, type FieldView, type ViewModel } from '../../webview/protocol.ts';
import { contentSecurityPolicy, newNonce, sidebarHtml } from '../../extension/sidebar/html.ts';

// The webview boundary: the messages both ways (zod, on both sides), the
// inline validation generated from field definitions, and the page shell's
// Content Security Policy.

const field = (over: Partial<FieldView> = {}): FieldView => ({ name: 'api_key', label: 'API key', secret: true, required: true, set: false, ...over });

describe('credential form validation from field definitions', () => {
  const cases: [string, FieldView, string | undefined, string | undefined][] = [
    ['a required field left empty', field(), '', 'API key is required.'],
    ['a required field that is already set may stay empty (keeps the stored value)', field({ set: true }), '', undefined],
    ['an optional field left empty', field({ required: false }), undefined, undefined],
    ['a value', field(), 'sk-123', undefined],
    ['a line break (header injection)', field(), 'a\r\nX-Evil: 1', 'API key must be one line without control characters.'],
    ['a NUL', field(), 'a\u0000b', 'API key must be one line without control characters.'],
    ['too long', field(), 'x'.repeat(8193), 'API key is longer than 8192 characters.'],
    ['no label: the name is used', field({ label: '' }), '', 'api_key is required.'],
  ];
  for (const [name, f, value, problem] of cases) {
    test(name, () => assert.equal(fieldProblem(f, value), problem));
  }

  test('a whole form: every problem by field, unknown fields refused, empty inputs left out of what is sent', () => {
    const fields = [field(), field({ name: 'team', label: 'Team', secret: false, required: false })];
    assert.deepEqual(formProblems(fields, { team: 'x' }), { api_key: 'API key is required.' });
    assert.deepEqual(formProblems(fields, { api_key: 'k', extra: 'x' }), { extra: 'There is no field extra.' });
    assert.deepEqual(formProblems(fields, { api_key: 'k', team: '' }), {});
    assert.deepEqual(typedValues({ api_key: 'k', team: '' }), { api_key: 'k' });
  });
});

describe('sidebar messages', () => {
  const view: ViewModel = {
    registry: 'http://127.0.0.1:8787',
    account: 'alice',
    status: 'ready',
    gateways: [
      {
        id: 'demo',
        name: 'Demo',
        servers: [
          {
            gateway: 'demo',
            server: 'personal',
            upstreamName: 'Demo',
            scheme: 'per_user',
            storage: 'registry',
            input: 'fields',
            state: 'needs_credentials',
            fields: [field()],
            choices: [],
            actions: ['edit'],
            pending: false,
          },
        ],
      },
    ],
  };

  test('what the extension sends parses in the webview', () => {
    assert.ok(parseMessage(toWebview, { type: 'view', view }).ok);
    assert.ok(parseMessage(toWebview, { type: 'result', gateway: 'demo', server: 'personal', ok: true, message: 'Saved.' }).ok);
    assert.ok(parseMessage(toWebview, { type: 'reveal', gateway: 'demo', server: 'personal' }).ok);
  });

  test('a view with an unknown state or action is refused, naming where', () => {
    const bad = structuredClone(view) as any;
    bad.gateways[0].servers[0].state = 'pwned';
    const parsed = parseMessage(toWebview, { type: 'view', view: bad });
    assert.equal(parsed.ok, false);
    assert.match((parsed as { problem: string }).problem, /^view\.gateways\.0\.servers\.0\.state:/);
  });

  const good: unknown[] = [
    { type: 'ready' },
    { type: 'signIn' },
    { type: 'selectRegistry' },
    { type: 'refresh' },
    { type: 'saveCredentials', gateway: 'demo', server: 'personal', values: { api_key: 'k' }, availability: 'private' },
    { type: 'connect', gateway: 'demo', server: 'oauth' },
    { type: 'disconnect', gateway: 'demo', server: 'oauth' },
    { type: 'chooseIdentity', gateway: 'demo', server: 'personal', identity: 'id-1' },
    { type: 'setAvailability', gateway: 'demo', server: 'personal', identity: 'id-1', availability: 'global' },
  ];
  for (const message of good) {
    test(`the webview may send ${JSON.stringify(message)}`, () => assert.ok(parseMessage(toExtension, message).ok));
  }

  const bad: [string, unknown][] = [
    ['not an object', 'signIn'],
    ['an unknown type', { type: 'runCommand', command: 'workbench.action.terminal.new' }],
    ['a field name that is not one', { type: 'saveCredentials', gateway: 'demo', server: 'p', values: { 'X-Evil': 'v' }, availability: 'private' }],
    ['a value that is not a string', { type: 'saveCredentials', gateway: 'demo', server: 'p', values: { api_key: 1 }, availability: 'private' }],
    ['an availability that is not one', { type: 'saveCredentials', gateway: 'demo', server: 'p', values: {}, availability: 'public' }],
    ['an empty server', { type: 'connect', gateway: 'demo', server: '' }],
    ['a value over 8192 characters', { type: 'saveCredentials', gateway: 'demo', server: 'p', values: { api_key: 'x'.repeat(8193) }, availability: 'private' }],
  ];
  for (const [name, message] of bad) {
    test(`the extension refuses ${name}`, () => assert.equal(parseMessage(toExtension, message).ok, false));
  }
});

describe('the sidebar page shell', () => {
  const inputs = { cspSource: 'https://x.vscode-cdn.net', scriptUri: 'https://x.vscode-cdn.net/dist/webview.js', styleUri: 'https://x.vscode-cdn.net/dist/webview.css', nonce: 'bm9uY2U=' };

  test('a strict CSP: nothing by default, script only with the render\'s nonce, styles and images only from the extension', () => {
    assert.equal(
      contentSecurityPolicy(inputs),
      "default-src 'none'; style-src https://x.vscode-cdn.net; script-src 'nonce-bm9uY2U='; img-src https://x.vscode-cdn.net; font-src https://x.vscode-cdn.net; form-action 'none'; base-uri 'none'",
    );
    assert.ok(!contentSecurityPolicy(inputs).includes('unsafe'));
  });

  test('one external script carrying the nonce, no inline script or style', () => {
    const html = sidebarHtml(inputs);
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 1);
    assert.match(scripts[0]![1]!, /nonce="bm9uY2U=" src="https:\/\/x\.vscode-cdn\.net\/dist\/webview\.js"/);
    assert.equal(scripts[0]![2], '', 'no inline script');
    assert.ok(!/<style|style=/.test(html), 'no inline style');
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;|content="default-src 'none'/);
  });

  test('a fresh nonce per render', () => {
    const nonces = new Set(Array.from({ length: 50 }, () => newNonce()));
    assert.equal(nonces.size, 50);
    for (const n of nonces) assert.match(n, /^[A-Za-z0-9+/]{22}==$/);
  });
});
