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
  /** Stop serving (sockets, registry and store closed; the data dir kept): the registry is down. */
  stop(): Promise<void>;
  /** Start again on the same port and data dir, as a restarted process would (new registry, store reopened). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real registry on a real HTTP port (port 0), built from a configuration
 * object exactly as main.ts builds it, with its own temporary data dir.
 */
export async function startRegistry(raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, options: { dataDir?: string } = {}): Promise<TestRegistry> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'keygate-test-'));
  const log = memoryLogger();
  let port = 0;
  let running: { server: Server; registry: Registry; store: Store } | undefined;

  async function open(): Promise<{ server: Server; registry: Registry; store: Store; url: string }> {
    const server: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    port = (server.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}`;
    let store: Store | undefined;
    try {
      const config = parseConfig(raw, '(test)', env);
      store = await openStore(config.storage, dataDir, env);
      // A configured public_url wins (as in main.ts): tests use it to restart a registry "at the same address".
      const registry = await createRegistry({ config, publicUrl: config.server.public_url ?? url, dataDir, store, log, env });
      server.on('request', registry.handler);
      return { server, registry, store, url };
    } catch (err) {
      // A registry that refuses to start must not leave its socket (or store lock) behind: the test process would never exit.
      server.close();
      await store?.close();
      throw err;
    }
  }

  let first;
  try {
    first = await open();
  } catch (err) {
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  running = first;
  const handle: TestRegistry = {
    url: first.url,
    registry: first.registry,
    store: first.store,
    dataDir,
    log,
    async stop() {
      if (!running) return;
      const { server, registry, store } = running;
      running = undefined;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await registry.close();
      await store.close();
    },
    async start() {
      if (running) return;
      const next = await open();
      running = next;
      handle.registry = next.registry;
      handle.store = next.store;
    },
    async close() {
      await handle.stop();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}
