import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gatewayDefinitions, serversVersion } from '../../extension/mcp/definitions.ts';
import { GatewayDefinitionProvider, type SessionSource } from '../../extension/mcp/gateway-provider.ts';
import type { Gateway } from '../../extension/registry-client.ts';
import { RegistryClient } from '../../extension/registry-client.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authHarness } from './extension-fakes.ts';

// Gateways → MCP server definitions, and the provider VS Code calls (list, resolve).

const REGISTRY = 'https://keygate.example.com';
const gw = (id: string, over: Partial<Gateway> = {}): Gateway => ({
  id,
  name: id,
  description: undefined,
  visibility: 'private',
  mcpUrl: `${REGISTRY}/mcp/${id}`,
  servers: [{ name: 'demo', upstream: 'demo', upstreamName: 'Demo', identity: 'shared', mcpUrl: `${REGISTRY}/mcp/${id}/demo` }],
  ...over,
});

describe('extension MCP definitions', () => {
  test('one HTTP definition per gateway: label, the gateway endpoint, a version of its servers', () => {
    const { definitions, skipped } = gatewayDefinitions(REGISTRY, [gw('team', { name: 'Team tools' }), gw('open', { visibility: 'public' })]);
    assert.deepEqual(skipped, []);
    assert.deepEqual(
      definitions.map((d) => [d.gatewayId, d.label, d.uri, d.visibility]),
      [
        ['team', 'Keygate: Team tools', `${REGISTRY}/mcp/team`, 'private'],
        ['open', 'Keygate: open', `${REGISTRY}/mcp/open`, 'public'],
      ],
    );
    assert.match(definitions[0]!.version, /^[0-9a-f]{8}$/);
  });

  test('the version changes when the servers change, not when they are reordered', () => {
    const a = gw('x', { servers: [gw('x').servers[0]!, { ...gw('x').servers[0]!, name: 'other' }] });
    const reordered = gw('x', { servers: [...a.servers].reverse() });
    const changed = gw('x', { servers: [{ ...a.servers[0]!, identity: 'per_user' }, a.servers[1]!] });
    assert.equal(serversVersion(a), serversVersion(reordered));
    assert.notEqual(serversVersion(a), serversVersion(changed));
  });

  test('gateways whose endpoint is not on the registry are skipped (tokens never leave it); duplicates too', () => {
    const { definitions, skipped } = gatewayDefinitions(REGISTRY, [
      gw('team'),
      gw('elsewhere', { mcpUrl: 'https://evil.example/mcp/elsewhere' }),
      gw('team'),
    ]);
    assert.deepEqual(definitions.map((d) => d.gatewayId), ['team']);
    assert.deepEqual(skipped.map((s) => s.gatewayId), ['elsewhere', 'team']);
  });

  test('two gateways with one display name are told apart by id', () => {
    const { definitions } = gatewayDefinitions(REGISTRY, [gw('a', { name: 'Tools' }), gw('b', { name: 'Tools' })]);
    assert.deepEqual(definitions.map((d) => d.label), ['Keygate: Tools (a)', 'Keygate: Tools (b)']);
  });
});

describe('extension MCP provider against the registry', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  /** The provider wired as in activate(), with sessions from the auth provider (VS Code's getSession, minus VS Code). */
  function setup(person = ALICE) {
    const h = authHarness(f.registry.url, person);
    let prompts = 0;
    const sessions: SessionSource = {
      silent: async () => (await h.auth.getSessions([]))[0]?.accessToken,
      interactive: async () => {
        const existing = (await h.auth.getSessions([]))[0];
        if (existing) return existing.accessToken;
        prompts++;
        return (await h.auth.createSession([])).accessToken;
      },
    };
    let registry: string | undefined = f.registry.url;
    const provider = new GatewayDefinitionProvider({ registry: () => registry, client: (url) => new RegistryClient(url), sessions, log: h.log });
    let changes = 0;
    provider.onDidChange(() => changes++);
    h.auth.onDidChangeAccount(() => provider.refresh());
    return { h, provider, prompts: () => prompts, changes: () => changes, setRegistry: (url: string | undefined) => (registry = url) };
  }

  test('signed out: public gateways only, and resolving one needs no sign-in', async () => {
    const { h, provider, prompts } = setup();
    const defs = await provider.provide();
    assert.deepEqual(defs.map((d) => d.label), ['Keygate: open']);
    assert.deepEqual(await provider.resolveHeaders(defs[0]!.uri), {});
    assert.equal(prompts(), 0);
    assert.equal(h.ui.opened.length, 0);
  });

  test('resolving a private gateway signs in (createIfNone) and puts a Bearer token on the definition', async () => {
    const { provider, prompts, changes } = setup();
    await provider.provide();
    const headers = await provider.resolveHeaders(`${f.registry.url}/mcp/team`);
    assert.equal(prompts(), 1);
    assert.match(headers!.Authorization!, /^Bearer eyJ/);
    assert.ok(changes() >= 1, 'signing in asked VS Code to list again');
    const defs = await provider.provide();
    assert.deepEqual(defs.map((d) => d.label).sort(), ['Keygate: open', 'Keygate: team']);

    // The token in the header is accepted by the gateway's endpoint (audience = registry base).
    const token = headers!.Authorization!.slice('Bearer '.length);
    const res = await fetch(`${f.registry.url}/mcp/team`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '0' } } }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const anonymous = await fetch(`${f.registry.url}/mcp/team`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(anonymous.status, 401, 'control: the private gateway does refuse callers without the token');
  });

  test('a public gateway takes the token when signed in; resolving always gets a fresh one', async () => {
    const { h, provider } = setup();
    await h.auth.createSession([]);
    const first = await provider.resolveHeaders(`${f.registry.url}/mcp/open`);
    const stored = (await h.store.get(f.registry.url))!;
    h.clock.ms = stored.expiresAt! - 5_000;
    const second = await provider.resolveHeaders(`${f.registry.url}/mcp/open`);
    assert.match(first!.Authorization!, /^Bearer /);
    assert.notEqual(second!.Authorization, first!.Authorization, 'refreshed before the token expired');
  });

  test('a definition from another registry is not started, and gets no token', async () => {
    const { h, provider, setRegistry } = setup();
    await h.auth.createSession([]);
    assert.equal(await provider.resolveHeaders('https://evil.example/mcp/team'), undefined);
    setRegistry(undefined);
    assert.deepEqual(await provider.provide(), []);
    assert.equal(await provider.resolveHeaders(`${f.registry.url}/mcp/team`), undefined);
  });

  test('an unreachable registry lists nothing and logs why', async () => {
    const { h, provider, setRegistry } = setup();
    setRegistry('http://127.0.0.1:9');
    assert.deepEqual(await provider.provide(), []);
    assert.ok(h.sink.lines.some((l) => l.startsWith('error') && l.includes('could not list the gateways of http://127.0.0.1:9')));
  });
});
