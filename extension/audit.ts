import type { AuditEntry } from './me-client.ts';

// "Keygate: Show the Audit of My Calls": GET /api/v1/me/audit as a plain-text
// table in a read-only editor. The audit never holds a secret or a tool's
// arguments (server/audit/audit.ts); this only lays it out.

const pad = (value: string, width: number) => (value.length >= width ? value : value + ' '.repeat(width - value.length));

export function formatAudit(registry: string, account: string, entries: readonly AuditEntry[], hasMore: boolean, now = new Date()): string {
  const lines = [`Keygate: the MCP calls of ${account} at ${registry}`, `${entries.length} most recent, newest first (read ${now.toISOString()})`, ''];
  if (!entries.length) {
    lines.push('No calls recorded yet. Start a Keygate gateway in the MCP server list and use its tools.');
    return `${lines.join('\n')}\n`;
  }
  const rows = entries.map((e) => [
    e.time,
    e.server ? `${e.gateway}/${e.server}` : e.gateway,
    [e.method ?? e.http_method ?? '', e.name ?? ''].filter(Boolean).join(' '),
    e.outcome,
    String(e.status),
    e.latency_ms === undefined ? '' : `${Math.round(e.latency_ms)} ms`,
  ]);
  const header = ['time', 'gateway/server', 'call', 'outcome', 'status', 'latency'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  lines.push(header.map((h, i) => pad(h, widths[i]!)).join('  ').trimEnd());
  lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) lines.push(r.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd());
  if (hasMore) lines.push('', 'Older calls exist; the registry keeps them (GET /api/v1/me/audit?format=jsonl exports them all).');
  return `${lines.join('\n')}\n`;
}
