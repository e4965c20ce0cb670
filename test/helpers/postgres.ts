import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

// A real PostgreSQL for the tests, from Debian's `postgresql` package: a new
// cluster made by initdb in a temporary directory, run by `postgres` as this
// test process's own child on a free loopback port (no system service), and
// stopped (and its directory removed) by stop(). halt() and resume() take it
// down and bring it back on the same data and port (a database outage);
// freeze() and thaw() make it hang and go on (a database that stops answering). Password authentication
// (scram-sha-256) is on, so the URL with its password is what the store is
// given, as in production.
//
// PostgreSQL refuses to run as root. When the tests run as root (containers,
// CI), initdb and postgres are started as the unprivileged user `nobody`
// through `setpriv` (util-linux), and the cluster directory is given to it.
//
// If PostgreSQL cannot be started, startPostgres() throws: the tests that
// need it fail, loudly, rather than skip.

const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'];
const USER = 'keygate';

export interface TestPostgres {
  /** A URL for a new, empty database of this cluster (each call makes one). */
  createDatabase(): Promise<string>;
  /** The URL of the cluster's default database. */
  url: string;
  stop(): Promise<void>;
  /** Shut the server down (fast shutdown), keeping its data dir and port: the database is down until resume(). */
  halt(): Promise<void>;
  /** Start it again on the same data dir and port; resolves once it accepts connections. */
  resume(): Promise<void>;
  /** Stop the server and its backends (SIGSTOP): connections stay open and queries wait, as with a database that hangs. */
  freeze(): void;
  /** Let a frozen server go on (SIGCONT). */
  thaw(): void;
}

function binary(name: string): string {
  for (const dir of BIN_DIRS) if (existsSync(join(dir, name))) return join(dir, name);
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  throw new Error(`PostgreSQL's ${name} is not installed (Debian: apt-get install postgresql; .ci/run does it)`);
}

/** Run as `nobody` when we are root: postgres will not run as root. */
function asUnprivileged(command: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, args];
  return ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', command, ...args]];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `durable`: fsync on, as in production (the tests run with it off: faster, and a crash there loses nothing that matters). */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-pg-'));
  const data = join(dir, 'data');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(dir, 'pwfile'), `${password}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const uid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
    chownSync(join(dir, 'pwfile'), uid, gid);
  }

  const [initdb, initArgs] = asUnprivileged(binary('initdb'), ['-D', data, '-U', USER, '--pwfile', join(dir, 'pwfile'), '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync', '--locale=C']);
  const init = spawnSync(initdb, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.error?.message ?? `exit ${init.status}`}): ${init.stderr}`);
  }

  const port = await freePort();
  const [postgres, args] = asUnprivileged(binary('postgres'), [
    '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', `fsync=${options.durable ? 'on' : 'off'}`, '-c', 'max_connections=200',
  ]);
  const url = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  let child: ChildProcess;
  let stderr = '';
  let exited = true;
  // A test process that ends without stop() (a crash, a timeout) must not leave its cluster running.
  const orphaned = () => child.kill('SIGQUIT');

  /** The server and its backends (the processes a freeze stops). */
  const processes = () => [child.pid!, ...spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)];
  const signal = (name: NodeJS.Signals) => {
    if (exited) return;
    for (const pid of processes()) {
      try {
        process.kill(pid, name);
      } catch {
        // a backend that ended meanwhile
      }
    }
  };
  const halt = async () => {
    signal('SIGCONT'); // a frozen server cannot shut down
    if (!exited) {
      child.kill('SIGINT'); // fast shutdown
      await new Promise((resolve) => child.once('exit', resolve));
    }
  };
  const stop = async () => {
    await halt();
    rmSync(dir, { recursive: true, force: true });
  };

  /** Run postgres on the data dir and port; resolves once it accepts a connection (a few hundred ms after start). */
  async function run(): Promise<void> {
    child = spawn(postgres, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    exited = false;
    stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    process.once('exit', orphaned);
    child.once('exit', () => {
      exited = true;
      process.off('exit', orphaned);
    });
    for (let attempt = 0; ; attempt++) {
      if (exited) {
        await stop();
        throw new Error(`postgres exited at start: ${stderr}`);
      }
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => undefined);
        if (attempt > 300) {
          await stop();
          throw new Error(`postgres did not accept connections: ${(err as Error).message}\n${stderr}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  await run();

  let databases = 0;
  return {
    url,
    async createDatabase() {
      const name = `test_${process.pid}_${++databases}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url.replace(/\/postgres$/, `/${name}`);
    },
    stop,
    halt,
    resume: () => (exited ? run() : Promise.resolve()),
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
  };
}
