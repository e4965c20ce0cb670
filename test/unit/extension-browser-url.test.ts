import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { keepOffEditorPortForwarding } from '../../extension/auth/browser-url.ts';

// code-server's rule for links it routes through /proxy/PORT (workbench.js, 4.139.1).
const editorRewrites = (url: string) => /^(localhost|127\.0\.0\.1|0\.0\.0\.0):(\d+)$/.test(url.replace(/^https?:\/\//, '').split(/[/?#]/)[0]!);

describe('keepOffEditorPortForwarding', () => {
  const callback = 'http://127.0.0.1:8123/stable-53c2f3253bcf32886706fc023e794bbeb253c90f/callback?vscode-reqid=1&vscode-scheme=code-oss&vscode-authority=keygate.keygate&vscode-path=%2Fauth-callback';
  const query = new URLSearchParams({ response_type: 'code', client_id: 'keygate-vscode', redirect_uri: callback, state: 'abc', scope: 'mcp:read mcp:write' }).toString();

  const cases: [string, string][] = [
    [`http://127.0.0.1:41411/oauth/authorize?${query}`, `http://127.0.0.1.:41411/oauth/authorize?${query}`],
    [`http://localhost:8787/oauth/authorize?${query}`, `http://LOCALHOST:8787/oauth/authorize?${query}`],
    [`http://0.0.0.0:8787/oauth/authorize`, `http://0.0.0.0.:8787/oauth/authorize`],
    [`https://localhost:8443/keygate/oauth/authorize?${query}`, `https://LOCALHOST:8443/keygate/oauth/authorize?${query}`],
  ];
  for (const [url, expected] of cases) {
    test(`${url.split('?')[0]} is spelled so the editor leaves it alone, query untouched`, () => {
      assert.ok(editorRewrites(url), 'the editor would have rewritten the original');
      const kept = keepOffEditorPortForwarding(url);
      assert.equal(kept, expected);
      assert.equal(editorRewrites(kept), false);
      // A browser's URL parser reads it as the same origin and the same query.
      assert.equal(new URL(kept).origin, new URL(url).origin);
      assert.equal(new URL(kept).searchParams.get('redirect_uri'), new URL(url).searchParams.get('redirect_uri'));
    });
  }

  const unchanged = [
    `https://keygate.example.com/oauth/authorize?${query}`,
    `http://192.168.1.10:8787/oauth/authorize?${query}`,
    `http://[::1]:8787/oauth/authorize?${query}`,
    'http://localhost/oauth/authorize',
    'http://localhost.example.com:8787/oauth/authorize',
    'http://127.0.0.10:8787/oauth/authorize',
  ];
  for (const url of unchanged) {
    test(`${url.split('?')[0]} is not rewritten by the editor and is returned as is`, () => {
      assert.equal(keepOffEditorPortForwarding(url), url);
    });
  }
});
