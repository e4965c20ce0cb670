import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../log.ts';
import { type AuditFilter, type AuditLog, type AuditReadOptions, type AuditRecord, matchesFilter } from './audit.ts';
import { BatchedWriter } from './batched.ts';

// The audit log on disk: one JSONL file per UTC day ({dir}/2026-07-28.jsonl),
// opened in append mode only, never rewritten. `record()` only pushes onto an
// in-memory batch; the batch is serialized and appended every FLUSH_INTERVAL_MS,
// or as soon as it holds MAX_BATCH entries, and on close (batched.ts). The
// request path therefore never waits on the disk (and never touches the store).

const FLUSH_INTERVAL_MS = 200;
const MAX_BATCH = 500;
const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;
const DAY_MS = 86_400_000;

export interface FileAuditOptions {
  dir: string;
  log: Logger;
  /** Day files older than this are deleted. Unset: kept forever. */
  retentionDays?: number | undefined;
  flushIntervalMs?: number;
  maxBatch?: number;
}

const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

function entryDay(entry: AuditRecord): string {
  return /^\d{4}-\d{2}-\d{2}T/.test(entry.time) ? entry.time.slice(0, 10) : dayOf(Date.now());
}

/** A line read back: parsed leniently (a torn last line after a crash is skipped, not fatal). */
function parseLine(line: string): AuditRecord | undefined {
  if (line === '') return undefined;
  try {
    const value = JSON.parse(line) as Record<string, unknown> | null;
    if (!value || typeof value.time !== 'string' || typeof value.outcome !== 'string') return undefined;
    const target = value.target as { type?: unknown } | null | undefined;
    if (value.kind === 'admin' ? typeof value.action !== 'string' || typeof target?.type !== 'string' : typeof value.gateway !== 'string') return undefined;
    return value as unknown as AuditRecord;
  } catch {
    return undefined;
  }
}

/**
 * O_APPEND: every write lands at the end. A write the disk refuses part-way
 * (full) is cut back to where it began, so no line is left torn; the entries
 * stay in the batch for the next flush.
 */
async function append(file: string, text: string): Promise<void> {
  const handle = await open(file, 'a', 0o600);
  try {
    const { size } = await handle.stat();
    try {
      await handle.writeFile(text);
    } catch (err) {
      await handle.truncate(size).catch(() => undefined);
      throw err;
    }
  } finally {
    await handle.close();
  }
}

export class FileAudit extends BatchedWriter implements AuditLog {
  private dirReady: Promise<void> | undefined;
  /** Files whose last byte was checked this process (a crash can leave a line without its newline). */
  private readonly tailChecked = new Set<string>();
  private prunedDay: string | undefined;

  constructor(private readonly options: FileAuditOptions) {
    super(options.flushIntervalMs ?? FLUSH_INTERVAL_MS, options.maxBatch ?? MAX_BATCH);
  }

  get dir(): string {
    return this.options.dir;
  }

  async close(): Promise<void> {
    await this.flush();
  }

  private ensureDir(): Promise<void> {
    this.dirReady ??= mkdir(this.options.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    return this.dirReady;
  }

  protected async write(batch: AuditRecord[]): Promise<void> {
    const byDay = new Map<string, string[]>();
    for (const entry of batch) {
      const day = entryDay(entry);
      let lines = byDay.get(day);
      if (!lines) byDay.set(day, (lines = []));
      lines.push(JSON.stringify(entry));
    }
    await this.ensureDir();
    for (const [day, lines] of byDay) {
      const file = join(this.options.dir, `${day}.jsonl`);
      const lead = (await this.needsNewline(file)) ? '\n' : '';
      await append(file, `${lead}${lines.join('\n')}\n`);
    }
    const today = dayOf(Date.now());
    if (this.options.retentionDays !== undefined && this.prunedDay !== today) {
      this.prunedDay = today;
      await this.prune().catch((err: unknown) => this.options.log.error('audit log %s: could not remove old files: %s', this.options.dir, (err as Error).message));
    }
  }

  protected failed(err: unknown, count: number, dropped: number | undefined): void {
    this.dirReady = undefined;
    this.tailChecked.clear(); // a file may have been cut back: look at its last byte again
    this.options.log.error('audit log %s: could not append %d entries: %s', this.options.dir, count, (err as Error).message);
    if (dropped !== undefined) this.options.log.error('audit log %s: %d entries dropped so far (the disk refuses writes)', this.options.dir, dropped);
  }

  private async needsNewline(file: string): Promise<boolean> {
    if (this.tailChecked.has(file)) return false;
    this.tailChecked.add(file);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch {
      return false; // a new file
    }
    try {
      const { size } = await handle.stat();
      if (size === 0) return false;
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      return last[0] !== 0x0a;
    } finally {
      await handle.close();
    }
  }

  /** Delete whole day files past retention (append-only: nothing inside a file is ever removed). */
  async prune(now: number = Date.now()): Promise<string[]> {
    if (this.options.retentionDays === undefined) return [];
    const oldest = dayOf(now - this.options.retentionDays * DAY_MS);
    const removed: string[] = [];
    for (const name of await this.dayFiles()) {
      const day = DAY_FILE.exec(name)![1]!;
      if (day < oldest) {
        await unlink(join(this.options.dir, name)).catch(() => undefined);
        removed.push(name);
      }
    }
    if (removed.length) this.options.log.info('audit log: removed %d day files older than %d days', removed.length, this.options.retentionDays);
    return removed;
  }

  private async dayFiles(): Promise<string[]> {
    try {
      return (await readdir(this.options.dir)).filter((n) => DAY_FILE.test(n)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async *read(filter: AuditFilter, options: AuditReadOptions): AsyncIterable<AuditRecord> {
    await this.flush();
    const first = filter.since === undefined ? undefined : dayOf(filter.since);
    const last = filter.until === undefined ? undefined : dayOf(filter.until);
    let files = (await this.dayFiles()).filter((name) => {
      const day = DAY_FILE.exec(name)![1]!;
      return (first === undefined || day >= first) && (last === undefined || day <= last);
    });
    let left = options.limit ?? Infinity;
    if (left <= 0) return;
    if (options.order === 'desc') files = files.reverse();
    for (const name of files) {
      const path = join(this.options.dir, name);
      if (options.order === 'asc') {
        for await (const entry of this.entriesOf(path, filter)) {
          yield entry;
          if (--left <= 0) return;
        }
      } else {
        // Newest first: the last `left` matches of the day, reversed.
        let kept: AuditRecord[] = [];
        for await (const entry of this.entriesOf(path, filter)) {
          kept.push(entry);
          if (kept.length > 2 * left) kept = kept.slice(-left);
        }
        for (const entry of kept.slice(-left).reverse()) {
          yield entry;
          if (--left <= 0) return;
        }
      }
    }
  }

  private async *entriesOf(path: string, filter: AuditFilter): AsyncIterable<AuditRecord> {
    const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        const entry = parseLine(line);
        if (entry && matchesFilter(entry, filter)) yield entry;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // pruned meanwhile
    } finally {
      lines.close();
    }
  }
}
