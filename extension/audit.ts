import type { AuditEntry } from './me-client.ts';

// "Keygate: Show the Audit of My Calls": GET /api/v1/me/audit as plain text
// in a read-only editor. The audit never holds a secret or a tool's
// arguments (server/audit/audit.ts); this only lays it out.

/** "2026-11-23T10:00:02.000Z" → "2026-11-23 10:00:02Z"; anything else as it is. */
const shortTime = (iso: string) => iso.replace(/^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/, '$1 $2Z');

/**
 * Two short lines a call (when and what; where, how it ended, how long), so
 * the list reads in an editor as narrow as the side bar; longer names wrap.
 */
export function formatAudit(registry: string, account: string, entries: readonly AuditEntry[], hasMore: boolean, now = new Date()): string {
  const lines = [`Keygate: the MCP calls of ${account} at ${registry}`, `${entries.length} most recent, newest first (read ${now.toISOString()})`, ''];
  if (!entries.length) {
    lines.push('No calls recorded yet. Start a Keygate gateway in the MCP server list and use its tools.');
    return `${lines.join('\n')}\n`;
  }
  for (const e of entries) {
    const call = [e.method ?? e.http_method ?? '', e.name ?? ''].filter(Boolean).join(' ');
    const where = e.server ? `${e.gateway}/${e.server}` : e.gateway;
    const latency = e.latency_ms === undefined ? [] : [`${Math.round(e.latency_ms)} ms`];
    lines.push(`${shortTime(e.time)}  ${call}`, `    ${[where, e.outcome, String(e.status), ...latency].join(' · ')}`);
  }
  if (hasMore) lines.push('', 'Older calls exist; the registry keeps them (GET /api/v1/me/audit?format=jsonl exports them all).');
  return `${lines.join('\n')}\n`;
}
