import { readFileSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Adapter } from 'lowdb';
import { z } from 'zod';
import { StoreError } from '../store.ts';

// The file lowdb reads and writes. A write goes to a temporary file in the
// same directory, is flushed to disk (fsync), then renamed over the old file,
// and the directory is flushed: after a crash at any point the file holds the
// old state or the new one, never a mix. A file that cannot be read or parsed
// stops start-up with a StoreError and is never overwritten.

const entry = z.object({ payload: z.unknown(), expires_at: z.number().optional() });
export const fileSchema = z.object({
  version: z.literal(1),
  collections: z.record(z.string(), z.record(z.string(), entry)),
});
export type StoreFile = z.infer<typeof fileSchema>;

export class AtomicJsonFile implements Adapter<StoreFile> {
  private sequence = 0;

  constructor(readonly file: string) {}

  async read(): Promise<StoreFile | null> {
    return this.load();
  }

  /** read(), synchronously: what is on disk now. */
  load(): StoreFile | null {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      throw new StoreError('ERR_STORE_UNREADABLE', `cannot read the store file ${this.file} (${code}); fix its permissions and start again`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new StoreError(
        'ERR_STORE_CORRUPT',
        `the store file ${this.file} is not valid JSON (${(err as Error).message}); it was left untouched: restore it from a backup or move it aside to start empty`,
        { cause: err },
      );
    }
    const result = fileSchema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new StoreError(
        'ERR_STORE_CORRUPT',
        `the store file ${this.file} is not a Keygate store (${issue?.path.join('.') || 'top level'}: ${issue?.message}); it was left untouched: restore it from a backup or move it aside to start empty`,
      );
    }
    return result.data;
  }

  async write(data: StoreFile): Promise<void> {
    // The state as it is when the write is asked for (changes made meanwhile wait for the next write).
    const text = JSON.stringify(data);
    const dir = dirname(this.file);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = join(dir, `.${basename(this.file)}.${process.pid}.${++this.sequence}.tmp`);
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.file);
    } catch (err) {
      // A full disk: the half-written temporary file must not keep the space it took.
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    // Make the rename itself durable.
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }
}
