import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidRegistryUrlError } from '../../extension/errors.ts';
import { allowsInsecureRequests, isLoopbackHttp, isWithinRegistry, parseRegistryUrl, registryUrlProblem } from '../../extension/registry-url.ts';

describe('extension registry URL', () => {
  const valid: [string, string][] = [
    ['http://127.0.0.1:8787', 'http://127.0.0.1:8787'],
    ['http://127.0.0.1:8787/', 'http://127.0.0.1:8787'],
    ['  https://Keygate.Example.com  ', 'https://keygate.example.com'],
    ['https://keygate.example.com:443/', 'https://keygate.example.com'],
    ['https://example.com/keygate//', 'https://example.com/keygate'],
    ['http://localhost:8787', 'http://localhost:8787'],
  ];
  for (const [raw, canonical] of valid) {
    test(`"${raw}" is accepted as ${canonical}`, () => {
      assert.equal(parseRegistryUrl(raw), canonical);
      assert.equal(registryUrlProblem(raw), undefined);
    });
  }

  const invalid: [string, RegExp][] = [
    ['', /not a URL/],
    ['keygate.example.com', /not a URL/],
    ['ftp://keygate.example.com', /http:\/\/ or https:\/\//],
    ['javascript:alert(1)', /http:\/\/ or https:\/\//],
    ['https://user:pw@keygate.example.com', /user name or password/],
    ['https://keygate.example.com/?x=1', /query or fragment/],
    ['https://keygate.example.com/#top', /query or fragment/],
  ];
  for (const [raw, message] of invalid) {
    test(`"${raw}" is refused`, () => {
      assert.throws(() => parseRegistryUrl(raw), (err: unknown) => err instanceof InvalidRegistryUrlError && err.code === 'ERR_INVALID_REGISTRY_URL' && message.test(err.message));
      assert.match(registryUrlProblem(raw)!, message);
    });
  }

  test('plain http is allowed for an http registry only; loopback is recognised', () => {
    assert.equal(allowsInsecureRequests('http://127.0.0.1:8787'), true);
    assert.equal(allowsInsecureRequests('https://keygate.example.com'), false);
    assert.equal(isLoopbackHttp('http://localhost:1'), true);
    assert.equal(isLoopbackHttp('http://[::1]:1'), true);
    assert.equal(isLoopbackHttp('http://10.0.0.1:8787'), false);
    assert.equal(isLoopbackHttp('https://127.0.0.1'), false);
  });

  test('only URLs on the registry may receive its tokens', () => {
    const r = 'https://example.com/keygate';
    assert.equal(isWithinRegistry(r, 'https://example.com/keygate/mcp/team'), true);
    assert.equal(isWithinRegistry(r, 'https://example.com/keygate'), true);
    assert.equal(isWithinRegistry(r, 'https://example.com/keygate-evil/mcp/team'), false);
    assert.equal(isWithinRegistry(r, 'https://example.com.evil/keygate/mcp'), false);
    assert.equal(isWithinRegistry(r, 'http://example.com/keygate/mcp/team'), false);
    assert.equal(isWithinRegistry(r, 'https://u:p@example.com/keygate/mcp'), false);
    assert.equal(isWithinRegistry(r, 'not a url'), false);
  });
});
