import * as vscode from 'vscode';
import type { Logger } from '../log.ts';
import { CursorRegistrar, type CursorMcpApi } from '../mcp/cursor.ts';
import type { GatewayDefinitionProvider } from '../mcp/gateway-provider.ts';

// VS Code adapter for Cursor: `vscode.cursor.mcp` exists only inside Cursor,
// so it is feature-detected; elsewhere this does nothing.

export function cursorMcpApi(): CursorMcpApi | undefined {
  const api = (vscode as unknown as { cursor?: { mcp?: Partial<CursorMcpApi> } }).cursor?.mcp;
  return typeof api?.registerServer === 'function' && typeof api.unregisterServer === 'function' ? (api as CursorMcpApi) : undefined;
}

/** Register the gateways with Cursor now and whenever they (or their tokens) change; unregister on sign-out. */
export function registerWithCursor(api: CursorMcpApi, gateways: GatewayDefinitionProvider, signedIn: () => Promise<boolean>, log: Logger): vscode.Disposable {
  const registrar = new CursorRegistrar(api);
  let running = Promise.resolve();
  const sync = () => {
    running = running.then(async () => {
      try {
        if (!(await signedIn())) {
          registrar.clear();
          return;
        }
        const servers = [];
        for (const d of await gateways.provide()) {
          // Silent: Cursor registration never prompts; a gateway that needs a sign-in waits for one.
          const headers = await gateways.resolveHeaders(d.uri, { interactive: false });
          if (headers) servers.push({ gatewayId: d.gatewayId, url: d.uri, headers });
        }
        registrar.sync(servers);
        log.info(`registered ${registrar.names.length} gateway(s) with Cursor`);
      } catch (err) {
        log.warn('could not register the gateways with Cursor', err);
      }
    });
  };
  const subscription = gateways.onDidChange(sync);
  sync();
  return new vscode.Disposable(() => {
    subscription.dispose();
    registrar.clear();
  });
}
