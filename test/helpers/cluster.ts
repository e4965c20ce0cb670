import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnRegistry, type Spawned } from './spawn.ts';

// Several registry processes (the real `keygate-registry` bin, as an admin
// runs it) on one database, behind a small reverse proxy on loopback: the team
// deployment of docs/deployment.md, as the tests start it.
//
// Every instance is told the proxy's URL as `server.public_url`, so a token
// issued through one is for the resource every instance serves. A request
// through the proxy goes to the instance named by its `x-test-instance`
// header (0, 1, ...; the header is not forwarded), or round-robin without
// one (or to the instance routeTo() named). The proxy sets X-Forwarded-For
// (appending the caller's address to what it sent), -Proto and -Host as a
// production proxy does. Each instance has its own data dir: nothing is
// shared but the database.

export interface ClusterInstance {
  /** The instance's own address (bypassing the proxy). */
  url: string;
  process: Spawned;
}

export interface Cluster {
  /** The proxy's URL: the public URL of every instance. */
  url: string;
  /** The config file every instance runs with (for the bin's other commands). */
  configFile: string;
  instances: ClusterInstance[];
  /** Headers that make the proxy send a request to instance i. */
  to(i: number): Record<string, string>;
  /** Send requests that name no instance to instance i (a browser's whole sign-in, say), or round-robin again (undefined). */
  routeTo(i: number | undefined): void;
  /** Stop instance i (SIGTERM) and wait for it to exit. */
  stopInstance(i: number): Promise<void>;
  /** Start instance i again with the same config and data dir. */
  startInstance(i: number): Promise<void>;
  /** The logs of every instance so far (for assertions that a secret never appears). */
  logs(): string;
  close(): Promise<void>;
}

export interface ClusterOptions {
  instances?: number;
  /** Extra arguments for every instance's command line. */
  args?: string[];
  /** Start every instance at the same moment (default: one after the other). */
  together?: boolean;
  /** More environment for instance i (a clock set apart with libfaketime, say). */
  instanceEnv?: (i: number) => NodeJS.ProcessEnv;
  /** Run each instance through bench/heap-probe.mjs (its heap, event loop and handles over IPC: bench/load.ts). */
  probe?: boolean;
}

/** Start `instances` (default 2) registries with this config (its `server.public_url` is set to the proxy's URL) and env. */
/**
 * What most cluster tests configure alike: the store (PostgreSQL unless
 * told), a vault key read from VAULT_KEY, and built-in people, each with the
 * password from <USERNAME>_PASSWORD, mcp:read and mcp:write, and mcp:admin
 * for the `admins`. Spread it into the test's own configuration.
 */
export function builtinTeam(people: { username: string }[], admins: { username: string }[] = [], storage: Record<string, unknown> = { type: 'postgres' }): Record<string, unknown> {
  const user = (p: { username: string }, scopes: string[]) => ({ username: p.username, password_env: `${p.username.toUpperCase()}_PASSWORD`, scopes });
  return {
    storage,
    vault: { key_env: 'VAULT_KEY' },
    oauth_server: { builtin: { users: [...people.map((p) => user(p, ['mcp:read', 'mcp:write'])), ...admins.map((p) => user(p, ['mcp:read', 'mcp:write', 'mcp:admin']))] } },
  };
}

export async function startCluster(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.instances ?? 2;
  const dir = mkdtempSync(join(tmpdir(), 'keygate-cluster-'));
  const targets: (URL | undefined)[] = [];
  let next = 0;
  let routed: number | undefined;

  const proxy: Server = createServer((req, res) => {
    const named = req.headers['x-test-instance'];
    const index = typeof named === 'string' ? Number(named) : (routed ?? next++ % count);
    const target = targets[index];
    if (!target) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`instance ${index} is down`);
      return;
    }
    const headers = { ...req.headers };
    delete headers['x-test-instance'];
    // Appended to what the caller sent, as nginx's $proxy_add_x_forwarded_for does.
    headers['x-forwarded-for'] = [req.headers['x-forwarded-for'], req.socket.remoteAddress ?? '127.0.0.1'].filter(Boolean).join(', ');
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-host'] = req.headers.host ?? '';
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (answer: IncomingMessage) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`instance ${index} is unreachable`);
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  const server = { ...((raw.server as Record<string, unknown> | undefined) ?? {}), public_url: url };
  const configFile = join(dir, 'keygate.yaml');
  writeFileSync(configFile, JSON.stringify({ ...raw, server })); // JSON is YAML

  const instances: ClusterInstance[] = [];
  const past: string[] = [];
  async function start(i: number): Promise<void> {
    const spawned = spawnRegistry(['--config', configFile, '--port', '0', '--data-dir', join(dir, `instance-${i}`), ...(options.args ?? [])], { ...env, ...options.instanceEnv?.(i) }, undefined, { probe: options.probe });
    const address = await spawned.url;
    if (!address) throw new Error(`instance ${i} did not start:\n${spawned.stderr()}\n${spawned.stdout()}`);
    instances[i] = { url: address, process: spawned };
    targets[i] = new URL(address);
  }

  const cluster: Cluster = {
    url,
    configFile,
    instances,
    to: (i) => ({ 'x-test-instance': String(i) }),
    routeTo: (i) => void (routed = i),
    async stopInstance(i) {
      const instance = instances[i];
      targets[i] = undefined;
      if (!instance) return;
      await instance.process.stop();
      past.push(instance.process.stdout(), instance.process.stderr());
    },
    startInstance: start,
    logs: () => [...past, ...instances.flatMap((x) => (x ? [x.process.stdout(), x.process.stderr()] : []))].join('\n'),
    async close() {
      await Promise.all(instances.map((_, i) => cluster.stopInstance(i)));
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    // One after the other: the first applies the migrations (the others would wait on its lock anyway).
    if (options.together) await Promise.all(Array.from({ length: count }, (_, i) => start(i)));
    else for (let i = 0; i < count; i++) await start(i);
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
