import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry, type Registry } from '../../server/app.ts';
import { parseConfig } from '../../server/config/load.ts';
import { memoryLogger } from '../../server/log.ts';
import { openStore, type Store } from '../../server/store/index.ts';

export interface TestRegistry {
  url: string;
  registry: Registry;
  store: Store;
  dataDir: string;
  log: ReturnType<typeof memoryLogger>;
  close(): Promise<void>;
}

/**
 * A real registry on a real HTTP port (port 0), built from a configuration
 * object exactly as main.ts builds it, with its own temporary data dir.
 */
export async function startRegistry(raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, options: { dataDir?: string } = {}): Promise<TestRegistry> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'keygate-test-'));
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const log = memoryLogger();
  let store: Store | undefined;
  let registry: Registry;
  let config;
  try {
    config = parseConfig(raw, '(test)', env);
    store = await openStore(config.storage, dataDir);
    // A configured public_url wins (as in main.ts): tests use it to restart a registry "at the same address".
    registry = await createRegistry({ config, publicUrl: config.server.public_url ?? url, dataDir, store, log, env });
  } catch (err) {
    // A registry that refuses to start must not leave its socket (or store lock) behind: the test process would never exit.
    server.close();
    await store?.close();
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  server.on('request', registry.handler);
  return {
    url,
    registry,
    store,
    dataDir,
    log,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await registry.close();
      await store.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
