import { z } from 'zod';

// The audit log: one JSONL file per UTC day under {data dir}/audit/, appended
// in batches, never rewritten. Retention removes whole day files only.

export const auditSection = z.strictObject({
  /** Where the day files go. Defaults to {data dir}/audit. */
  dir: z.string().min(1).optional(),
  /** A day file is deleted once every entry in it is older than this many days (checked at start and daily). Unset: kept forever. */
  retention_days: z.number().int().positive().optional(),
});
export type AuditConfig = z.infer<typeof auditSection>;
