// Readable output for people (a table for lists, "key: value" lines for one
// record); --json prints the API's answer unchanged for machines.

/** Fields holding epoch seconds, shown as ISO 8601 UTC. */
const TIMES = new Set(['created_at', 'updated_at', 'at', 'last_login', 'first_seen', 'last_seen']);

export function cell(key: string, value: unknown): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'number' && TIMES.has(key)) return value > 0 ? new Date(value * 1000).toISOString().replace('.000Z', 'Z') : '-';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value)) return value.length ? value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ') : '-';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** A column: the field, and its header when that differs. */
export type Column = string | [field: string, header: string];

/** Rows under upper-case headers, columns padded to their widest cell. */
export function table(rows: Record<string, unknown>[], columns: Column[]): string {
  if (!rows.length) return '(none)\n';
  const cols = columns.map((c): [string, string] => (typeof c === 'string' ? [c, c] : c));
  const cells = rows.map((r) => cols.map(([field]) => cell(field, pick(r, field)).replace(/\s*\n\s*/g, ' ')));
  const headers = cols.map(([, header]) => header.toUpperCase());
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

/** One record: a line per field, nested lists of objects (a gateway's servers) as indented blocks. */
export function details(record: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  const out: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (Array.isArray(value) && value.length && value.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v))) {
      out.push(`${key}:`);
      for (const item of value as Record<string, unknown>[]) {
        out.push(...Object.entries(item).map(([k, v], i) => `  ${i === 0 ? '- ' : '  '}${k}: ${cell(k, v)}`));
      }
      continue;
    }
    out.push(`${`${key}:`.padEnd(width + 1)} ${cell(key, value)}`);
  }
  return out.join('\n') + '\n';
}

/** `switch.by` → record.switch.by */
function pick(record: Record<string, unknown>, path: string): unknown {
  let value: unknown = record;
  for (const part of path.split('.')) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  return value;
}
