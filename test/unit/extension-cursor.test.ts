import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { credentialsEnv, cursorConfig, CursorRegistrar, cursorServerName, TOKEN_ENV, type CursorMcpApi } from '../../extension/mcp/cursor.ts';
import type { GatewayDefinition } from '../../extension/mcp/definitions.ts';

// Cursor: the mcp.json entry "Keygate: Copy Cursor Configuration" writes, and
// the registrar that keeps vscode.cursor.mcp in step with the gateways.

const def = (gatewayId: string, visibility: 'public' | 'private' = 'private'): GatewayDefinition => ({
  gatewayId,
  label: `Keygate: ${gatewayId}`,
  uri: `https://keygate.example.com/mcp/${gatewayId}`,
  version: '00000000',
  visibility,
});

describe('Cursor configuration', () => {
  test('one remote server per gateway whose Authorization header names ${env:KEYGATE_TOKEN}, never a token', () => {
    const config = cursorConfig([def('team'), def('open', 'public')]);
    assert.deepEqual(config, {
      mcpServers: {
        'keygate-team': { url: 'https://keygate.example.com/mcp/team', headers: { Authorization: 'Bearer ${env:KEYGATE_TOKEN}' } },
        'keygate-open': { url: 'https://keygate.example.com/mcp/open' },
      },
    });
    assert.equal(TOKEN_ENV, 'KEYGATE_TOKEN');
    assert.ok(!/eyJ/.test(JSON.stringify(config)));
  });

  test('a gateway with client-held credentials also reads X-Keygate-Credentials from its own variable', () => {
    const config = cursorConfig([def('Demo.Gw')], new Set(['Demo.Gw']));
    assert.deepEqual(config.mcpServers['keygate-demo-gw']!.headers, { Authorization: 'Bearer ${env:KEYGATE_TOKEN}', 'X-Keygate-Credentials': '${env:KEYGATE_CREDENTIALS_DEMO_GW}' });
    assert.equal(credentialsEnv('Demo.Gw'), 'KEYGATE_CREDENTIALS_DEMO_GW');
    assert.equal(cursorServerName('Demo.Gw'), 'keygate-demo-gw');
  });
});

describe('registering with vscode.cursor.mcp', () => {
  function fakeCursor() {
    const calls: string[] = [];
    const servers = new Map<string, { url: string; headers?: Record<string, string> }>();
    const api: CursorMcpApi = {
      registerServer: (c) => {
        calls.push(`register ${c.name}`);
        servers.set(c.name, c.server);
      },
      unregisterServer: (name) => {
        calls.push(`unregister ${name}`);
        servers.delete(name);
      },
    };
    return { api, calls, servers };
  }

  test('each sync registers every gateway with its fresh headers and unregisters the ones that went away', () => {
    const cursor = fakeCursor();
    const registrar = new CursorRegistrar(cursor.api);
    registrar.sync([
      { gatewayId: 'team', url: 'https://k/mcp/team', headers: { Authorization: 'Bearer one' } },
      { gatewayId: 'open', url: 'https://k/mcp/open', headers: {} },
    ]);
    assert.deepEqual(registrar.names, ['keygate-open', 'keygate-team']);
    // A refresh: the new token replaces the old registration.
    registrar.sync([{ gatewayId: 'team', url: 'https://k/mcp/team', headers: { Authorization: 'Bearer two' } }]);
    assert.deepEqual(cursor.servers.get('keygate-team')!.headers, { Authorization: 'Bearer two' });
    assert.equal(cursor.servers.has('keygate-open'), false);
    assert.deepEqual(cursor.calls, ['register keygate-team', 'register keygate-open', 'register keygate-team', 'unregister keygate-open']);
  });

  test('sign-out unregisters everything', () => {
    const cursor = fakeCursor();
    const registrar = new CursorRegistrar(cursor.api);
    registrar.sync([{ gatewayId: 'team', url: 'https://k/mcp/team', headers: { Authorization: 'Bearer one' } }]);
    registrar.clear();
    assert.equal(cursor.servers.size, 0);
    assert.deepEqual(registrar.names, []);
  });
});
