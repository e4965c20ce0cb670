import type { AuditRecord } from './audit.ts';

// What both audit logs (the JSONL files, the PostgreSQL table) do with the
// records the request path hands them: `record()` only pushes onto an
// in-memory batch, so no request waits on the disk or the database; the batch
// is written every `interval` ms, or as soon as it holds `maxBatch` records,
// and on flush(). A write that fails keeps its records, oldest first, for a
// retry at most once a second; beyond MAX_BACKLOG the oldest are dropped (and
// counted).

/** Records kept for a retry while writes fail; beyond that the oldest are dropped. */
const MAX_BACKLOG = 100_000;

export abstract class BatchedWriter {
  protected batch: AuditRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dropped = 0;

  constructor(
    private readonly interval: number,
    private readonly maxBatch: number,
  ) {}

  record(entry: AuditRecord): void {
    this.batch.push(entry);
    if (this.batch.length >= this.maxBatch) {
      // Written outside the request that filled the batch.
      this.immediate ??= setImmediate(() => void this.flush());
    } else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.interval);
      this.timer.unref();
    }
  }

  /** Write what has been recorded; resolves once it is written (or the failure is logged and the records kept for a retry). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    const batch = this.batch;
    this.batch = [];
    if (batch.length > 0) this.writing = this.writing.then(() => this.writeOrKeep(batch));
    return this.writing;
  }

  /** Stop the retry timer (at close, after a last flush). */
  protected stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Write one batch whole, or throw (the batch is then kept). */
  protected abstract write(batch: AuditRecord[]): Promise<void>;

  /** A write failed (`count` records kept); `dropped`: records dropped so far, when some just were. */
  protected abstract failed(err: unknown, count: number, dropped: number | undefined): void;

  private async writeOrKeep(batch: AuditRecord[]): Promise<void> {
    try {
      await this.write(batch);
    } catch (err) {
      this.batch = [...batch, ...this.batch];
      let dropped: number | undefined;
      if (this.batch.length > MAX_BACKLOG) {
        const excess = this.batch.length - MAX_BACKLOG;
        this.batch.splice(0, excess);
        dropped = this.dropped += excess;
      }
      this.failed(err, batch.length, dropped);
      if (!this.timer) {
        this.timer = setTimeout(() => void this.flush(), Math.max(this.interval, 1000));
        this.timer.unref();
      }
    }
  }
}
