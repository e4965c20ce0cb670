import { constants, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Low } from 'lowdb';
import { MemoryStore } from '../memory-store.ts';
import { StoreError, StoreUnavailableError } from '../store.ts';
import { AtomicJsonFile, type StoreFile } from './atomic-json-file.ts';

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

/**
 * The embedded store: one JSON file, one process. The data lives in memory;
 * every change is applied synchronously (so a read-modify-write cannot
 * interleave with another) and then persisted. Concurrent persists coalesce
 * into one atomic file write. A change is acknowledged once the write that
 * holds it is on disk. When a write fails (a full disk), every change since
 * the last successful write is undone in memory (the file is read back), each
 * of their callers gets a StoreUnavailableError, and onReset listeners reload
 * what they hold: memory never holds what the file does not.
 */
export class LowdbStore extends MemoryStore {
  readonly file: string;
  private readonly db: Low<StoreFile>;
  private readonly adapter: AtomicJsonFile;
  /** Counts rollbacks: a write whose changes were (partly) undone before it ran must fail too. */
  private generation = 0;
  private readonly resetListeners = new Set<() => void>();
  private pending: Promise<void> | null = null;
  private writing: Promise<void> = Promise.resolve();
  private readonly lockFile: string;
  private readonly releaseLock = () => {
    try {
      if (readFileSync(this.lockFile, 'utf8') === String(process.pid)) unlinkSync(this.lockFile);
    } catch {
      // already gone
    }
  };

  private constructor(file: string, options: { sweepIntervalMs?: number }) {
    const adapter = new AtomicJsonFile(file);
    const db = new Low<StoreFile>(adapter, { version: 1, collections: {} });
    super(() => db.data.collections, options);
    this.db = db;
    this.adapter = adapter;
    this.file = file;
    this.lockFile = `${file}.lock`;
  }

  static async open(file: string, options: { sweepIntervalMs?: number } = {}): Promise<LowdbStore> {
    const store = new LowdbStore(file, options);
    store.lock();
    store.removeStaleTempFiles();
    try {
      await store.db.read();
    } catch (err) {
      await MemoryStore.prototype.close.call(store);
      store.unlock();
      throw err;
    }
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

  protected override persist(): Promise<void> {
    if (this.pending) return this.pending;
    const generation = this.generation;
    const run = async () => {
      await this.writing.catch(() => undefined);
      this.pending = null;
      if (this.generation !== generation) {
        // The write before failed and undid some of the changes waiting here: undo the others too.
        this.rollback();
        throw new StoreUnavailableError(`the store file ${this.file} could not be written; the changes since its last successful write were undone`);
      }
      this.writing = this.db.write().catch((err: NodeJS.ErrnoException) => {
        this.rollback();
        throw new StoreUnavailableError(`cannot write the store file ${this.file} (${err.code ?? err.message}); the changes since its last successful write were undone`, { cause: err });
      });
      await this.writing;
    };
    this.pending = run();
    return this.pending;
  }

  /** Back to what the file holds: the last state on disk. */
  private rollback(): void {
    this.generation++;
    try {
      this.db.data = this.adapter.load() ?? { version: 1, collections: {} };
    } catch {
      return; // unreadable now: keep memory as it is (start-up will say why)
    }
    for (const listener of this.resetListeners) listener();
  }

  /** Called after a failed write was undone: caches built from onChange reload. */
  override onReset(listener: () => void): () => void {
    this.resetListeners.add(listener);
    return () => this.resetListeners.delete(listener);
  }

  override async healthy(): Promise<boolean> {
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

  override async close(): Promise<void> {
    await super.close();
    await this.pending?.catch(() => undefined);
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
