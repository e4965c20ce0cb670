import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readClientCredentials } from '../../server/gateway/client-credentials.ts';
import { Keychain } from '../../extension/auth/keychain.ts';
import { ClientCredentialStore, encodeClientCredentials } from '../../extension/credentials/client-store.ts';
import { GatewayDefinitionProvider } from '../../extension/mcp/gateway-provider.ts';
import { Logger } from '../../extension/log.ts';
import { RegistryClient } from '../../extension/registry-client.ts';
import { PERSONAL_PREFIX, startSidebarRegistry, type SidebarRegistry } from '../helpers/sidebar-registry.ts';
import { MemorySecretStore, RecordingSink } from './extension-fakes.ts';

// Client-held credentials (`storage: client`): kept in SecretStorage, sent as
// X-Keygate-Credentials on the gateway's definition, read by the real gateway.

let r: SidebarRegistry;
before(async () => {
  r = await startSidebarRegistry();
});
after(async () => {
  await r?.close();
});

function store() {
  const sink = new RecordingSink();
  const log = new Logger(sink);
  const secrets = new MemorySecretStore();
  return { sink, log, secrets, values: new ClientCredentialStore(new Keychain(secrets, log), log) };
}

describe('client-held credentials', () => {
  test('the header is base64url(JSON {server: {field: value}}) of that gateway\'s servers only, as the registry reads it', () => {
    const stored = { 'team/client': { api_key: 'k1' }, 'other/client': { api_key: 'k2' }, 'team/more': { a: 'b' } };
    const header = encodeClientCredentials(stored, 'team')!;
    assert.match(header, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(JSON.parse(Buffer.from(header, 'base64url').toString('utf8')), { client: { api_key: 'k1' }, more: { a: 'b' } });
    assert.deepEqual(readClientCredentials({ 'x-keygate-credentials': header }, 'client'), { api_key: 'k1' });
    assert.equal(encodeClientCredentials(stored, 'none'), undefined);
  });

  test('values live in SecretStorage under one key per registry; typed values merge; another window hears of changes', async () => {
    const s = store();
    const heard: string[] = [];
    s.values.onDidChange((registry) => heard.push(registry));
    await s.values.merge(r.registry.url, 'team', 'client', { api_key: 'one', team: 'red' });
    await s.values.merge(r.registry.url, 'team', 'client', { api_key: 'two-secret-value' });
    assert.deepEqual(await s.values.get(r.registry.url, 'team', 'client'), { api_key: 'two-secret-value', team: 'red' });
    assert.deepEqual([...s.secrets.values.keys()], [`keygate:client-credentials:${r.registry.url}`]);
    assert.deepEqual(heard, [r.registry.url, r.registry.url]);
    // The values are secrets: the log scrubs them.
    s.log.info('oops two-secret-value');
    assert.equal(s.sink.lines.at(-1), 'info oops [redacted]');
    await s.values.remove(r.registry.url, 'team', 'client');
    assert.equal(s.secrets.values.size, 0);
  });

  test('resolveMcpServerDefinition adds them to the gateway, and the gateway injects them upstream', async () => {
    const s = store();
    const key = `${PERSONAL_PREFIX}client-${Date.now()}`;
    await s.values.merge(r.registry.url, 'team', 'client', { api_key: key });
    const token = await r.token();
    const provider = new GatewayDefinitionProvider({
      registry: () => r.registry.url,
      client: (url) => new RegistryClient(url),
      sessions: { silent: async () => token, interactive: async () => token },
      clientCredentials: (url, gw) => s.values.header(url, gw),
      log: s.log,
    });
    const [team] = await provider.provide();
    const headers = (await provider.resolveHeaders(team!.uri))!;
    assert.equal(headers.Authorization, `Bearer ${token}`);
    assert.deepEqual(readClientCredentials({ 'x-keygate-credentials': headers['X-Keygate-Credentials'] }, 'client'), { api_key: key });
    const res = await fetch(`${r.registry.url}/mcp/team/client`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whoami' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const seen = r.upstream.seen.at(-1)!;
    assert.equal(seen.authorization, `Bearer ${key}`);
    assert.ok(!seen.headerNames.includes('x-keygate-credentials'), 'the header itself never goes upstream');
  });

  test('a token or identity change bumps every definition\'s version and tells VS Code', async () => {
    const s = store();
    const token = await r.token();
    const provider = new GatewayDefinitionProvider({
      registry: () => r.registry.url,
      client: (url) => new RegistryClient(url),
      sessions: { silent: async () => token, interactive: async () => token },
      log: s.log,
    });
    let fired = 0;
    provider.onDidChange(() => fired++);
    const [before] = await provider.provide();
    provider.bump();
    const [after] = await provider.provide();
    assert.equal(fired, 1);
    assert.notEqual(after!.version, before!.version);
    assert.ok(after!.version.startsWith(before!.version), 'the servers digest stays; the generation is added');
    // Listing silently (Cursor) never asks to sign in.
    const silent = new GatewayDefinitionProvider({
      registry: () => r.registry.url,
      client: (url) => new RegistryClient(url),
      sessions: { silent: async () => undefined, interactive: async () => assert.fail('must not prompt') },
      log: s.log,
    });
    await silent.provide();
    assert.equal(await silent.resolveHeaders(`${r.registry.url}/mcp/team`, { interactive: false }), undefined);
  });
});
