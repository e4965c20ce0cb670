import { constants, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Low } from 'lowdb';
import { StoreError, type Kind, type Store } from '../store.ts';
import { AtomicJsonFile, type StoreFile } from './atomic-json-file.ts';

const now = () => Math.floor(Date.now() / 1000);

/**
 * The embedded store: one JSON file, one process. The data lives in memory;
 * every change is applied synchronously (so a read-modify-write cannot
 * interleave with another) and then persisted. Concurrent persists coalesce
 * into one atomic file write.
 */
/** Locks this process holds, released on exit: one exit listener for them all, however many stores are open. */
const heldLocks = new Set<() => void>();
let releaseOnExit = false;
function holdUntilExit(release: () => void): void {
  heldLocks.add(release);
  if (releaseOnExit) return;
  releaseOnExit = true;
  process.once('exit', () => {
    for (const r of heldLocks) r();
  });
}

export class LowdbStore implements Store {
  private readonly db: Low<StoreFile>;
  private pending: Promise<void> | null = null;
  private writing: Promise<void> = Promise.resolve();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly lockFile: string;
  private readonly releaseLock = () => {
    try {
      if (readFileSync(this.lockFile, 'utf8') === String(process.pid)) unlinkSync(this.lockFile);
    } catch {
      // already gone
    }
  };

  private readonly listeners = new Map<Kind, Set<(id: string) => void>>();

  onChange(kind: Kind, listener: (id: string) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private changed(kind: Kind, id: string): void {
    for (const listener of this.listeners.get(kind) ?? []) listener(id);
  }

  private constructor(readonly file: string) {
    this.db = new Low(new AtomicJsonFile(file), { version: 1, collections: {} });
    this.lockFile = `${file}.lock`;
  }

  static async open(file: string, options: { sweepIntervalMs?: number } = {}): Promise<LowdbStore> {
    const store = new LowdbStore(file);
    store.lock();
    store.removeStaleTempFiles();
    try {
      await store.db.read();
    } catch (err) {
      store.unlock();
      throw err;
    }
    const interval = options.sweepIntervalMs ?? 60_000;
    store.sweeper = setInterval(() => void store.sweep().catch(() => undefined), interval);
    store.sweeper.unref();
    return store;
  }

  /** One process per file: a second registry on the same data dir would lose writes. */
  private lock(): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(this.lockFile, String(process.pid), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(this.lockFile, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new StoreError(
          'ERR_STORE_LOCKED',
          `the store ${this.file} is in use by process ${holder}; stop it, or give this registry its own --data-dir (for several instances use storage.type: postgres)`,
        );
      }
      writeFileSync(this.lockFile, String(process.pid), { mode: 0o600 });
    }
    holdUntilExit(this.releaseLock);
  }

  /** Temp files left by a process killed mid-write: we hold the lock, so none is being written. */
  private removeStaleTempFiles(): void {
    const prefix = `.${basename(this.file)}.`;
    for (const name of readdirSync(dirname(this.file))) {
      if (name.startsWith(prefix) && name.endsWith('.tmp')) unlinkSync(join(dirname(this.file), name));
    }
  }

  private records(kind: Kind): Record<string, { payload: unknown; expires_at?: number }> {
    return (this.db.data.collections[kind] ??= {});
  }

  private live(kind: Kind, id: string): unknown {
    const record = this.records(kind)[id];
    if (!record) return undefined;
    if (record.expires_at !== undefined && record.expires_at <= now()) return undefined;
    return record.payload;
  }

  private persist(): Promise<void> {
    if (this.pending) return this.pending;
    const run = async () => {
      await this.writing.catch(() => undefined);
      this.pending = null;
      this.writing = this.db.write();
      await this.writing;
    };
    this.pending = run();
    return this.pending;
  }

  async find(kind: Kind, id: string): Promise<unknown> {
    return structuredClone(this.live(kind, id));
  }

  async upsert(kind: Kind, id: string, payload: unknown, expiresAt?: number): Promise<void> {
    this.records(kind)[id] = { payload: structuredClone(payload), ...(expiresAt !== undefined && { expires_at: expiresAt }) };
    this.changed(kind, id);
    await this.persist();
  }

  async update(kind: Kind, id: string, fn: (current: unknown) => unknown, expiresAt?: number | null): Promise<unknown> {
    const records = this.records(kind);
    const next = fn(structuredClone(this.live(kind, id)));
    if (next === undefined) {
      delete records[id];
    } else {
      const keep = expiresAt === null ? undefined : (expiresAt ?? records[id]?.expires_at);
      records[id] = { payload: structuredClone(next), ...(keep !== undefined && { expires_at: keep }) };
    }
    this.changed(kind, id);
    await this.persist();
    return next;
  }

  async consume(kind: Kind, id: string): Promise<unknown> {
    const payload = this.live(kind, id);
    if (payload === undefined) return undefined;
    delete this.records(kind)[id];
    this.changed(kind, id);
    await this.persist();
    return payload;
  }

  async destroy(kind: Kind, id: string): Promise<void> {
    const records = this.records(kind);
    if (!(id in records)) return;
    delete records[id];
    this.changed(kind, id);
    await this.persist();
  }

  async list(kind: Kind): Promise<unknown[]> {
    return Object.keys(this.records(kind))
      .map((id) => this.live(kind, id))
      .filter((p) => p !== undefined)
      .map((p) => structuredClone(p));
  }

  async entries(kind: Kind): Promise<[string, unknown][]> {
    return Object.keys(this.records(kind))
      .map((id) => [id, this.live(kind, id)] as [string, unknown])
      .filter(([, p]) => p !== undefined)
      .map(([id, p]) => [id, structuredClone(p)]);
  }

  async destroyWhere(kind: Kind, match: (payload: unknown) => boolean): Promise<number> {
    const records = this.records(kind);
    let removed = 0;
    for (const [id, record] of Object.entries(records)) {
      if (match(record.payload)) {
        delete records[id];
        this.changed(kind, id);
        removed++;
      }
    }
    if (removed) await this.persist();
    return removed;
  }

  /** Drop expired records so the file does not grow without bound. */
  async sweep(): Promise<number> {
    const t = now();
    let removed = 0;
    for (const [kind, records] of Object.entries(this.db.data.collections)) {
      for (const [id, record] of Object.entries(records)) {
        if (record.expires_at !== undefined && record.expires_at <= t) {
          delete records[id];
          this.changed(kind as Kind, id);
          removed++;
        }
      }
    }
    if (removed) await this.persist();
    return removed;
  }

  async healthy(): Promise<boolean> {
    try {
      await access(dirname(this.file), constants.R_OK | constants.W_OK);
      await access(this.file, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.pending;
    await this.writing.catch(() => undefined);
    this.unlock();
  }

  private unlock(): void {
    this.releaseLock();
    heldLocks.delete(this.releaseLock);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
