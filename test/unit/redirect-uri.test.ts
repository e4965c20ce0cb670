import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redirectUriMatches, redirectUriProblem } from '../../server/oauth/redirect-uri.ts';

test('registration: https anywhere, http on loopback, private-use schemes; never executable or local schemes, in any spelling', () => {
  const allowed = ['https://app.example.com/cb', 'http://127.0.0.1/cb', 'http://[::1]:8080/cb', 'http://localhost:33418/', 'vscode://keygate.keygate/auth-callback', 'cursor://anysphere.cursor-mcp/oauth/callback', 'com.example.app:/oauth2redirect'];
  for (const uri of allowed) assert.equal(redirectUriProblem(uri), undefined, uri);
  const refused = [
    'javascript:alert(1)',
    'JAVASCRIPT:alert(1)',
    'JaVaScRiPt:alert(1)',
    ' javascript:alert(1)',
    'javascript :alert(1)',
    'java\nscript:alert(1)',
    'java\u0000script:alert(1)',
    '\u2028javascript:alert(1)',
    'data:text/html,<script>',
    'file:///etc/passwd',
    'vbscript:x',
    'blob:https://x/y',
    'http://app.example.com/cb',
    'https://app.example.com/cb#fragment',
    'https://user:pw@app.example.com/cb',
    'relative/path',
    '',
  ];
  for (const uri of refused) assert.notEqual(redirectUriProblem(uri), undefined, JSON.stringify(uri));
});

test('matching: exact, except a loopback port (RFC 8252 §7.3); path, query and host must still match', () => {
  assert.ok(redirectUriMatches('https://a.example/cb', 'https://a.example/cb'));
  assert.ok(!redirectUriMatches('https://a.example/cb', 'https://a.example/cb/'));
  assert.ok(!redirectUriMatches('https://a.example/cb', 'https://a.example:8443/cb'));
  assert.ok(!redirectUriMatches('https://a.example/cb', 'https://A.example/cb'), 'exact string comparison');
  assert.ok(redirectUriMatches('http://127.0.0.1/cb', 'http://127.0.0.1:5555/cb'));
  assert.ok(redirectUriMatches('http://127.0.0.1:1/cb', 'http://127.0.0.1:5555/cb'));
  assert.ok(!redirectUriMatches('http://127.0.0.1/cb', 'http://127.0.0.1:5555/other'));
  assert.ok(!redirectUriMatches('http://127.0.0.1/cb', 'http://localhost:5555/cb'));
  assert.ok(!redirectUriMatches('http://127.0.0.1/cb?a=1', 'http://127.0.0.1:5555/cb?a=2'));
  assert.ok(!redirectUriMatches('http://127.0.0.1/cb', 'http://127.0.0.1.attacker.example:5555/cb'));
});
