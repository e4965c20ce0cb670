import { z } from 'zod';
import { ADMIN_TARGETS, type AdminChange, type AuditEntry, type AuditFilter, type AuditLog } from '../audit/audit.ts';
import { type Html, html } from '../http/html.ts';

// The console's audit pages: MCP requests filtered by person, gateway,
// server, tool, outcome and time (a GET form: the query string is the view,
// so it can be bookmarked), their JSONL export, a chart of calls and refusals
// per gateway over time, and the admin changes from the same trail.

/** How many rows a page shows (newest first); the export has every match. */
export const ROWS = 200;
/** How many matching requests the chart counts (the newest). */
const CHART_MAX = 50_000;
const STEPS = [1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400].map((s) => s * 1000);
const MAX_BUCKETS = 48;

/** An empty form field is no filter. */
const field = (schema: z.ZodType<string>) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
const text = field(z.string().trim().min(1).max(200));
/** A datetime-local value (taken as UTC), ISO 8601, or epoch seconds. */
const time = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z
    .string()
    .transform((value, ctx) => {
      const ms = /^\d{1,12}$/.test(value) ? Number(value) * 1000 : /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value) ? Date.parse(`${value}Z`) : /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
      if (Number.isNaN(ms)) {
        ctx.addIssue({ code: 'custom', message: 'expected a time like 2026-07-28T12:00 (UTC)' });
        return z.NEVER;
      }
      return ms;
    })
    .optional(),
);

export const requestQuery = z.strictObject({ user: text, gateway: text, server: text, tool: text, outcome: text, since: time, until: time });
export const changeQuery = z.strictObject({
  user: text,
  action: field(z.string().regex(/^[a-z_]+\.[a-z_]+$/, 'expected an action like gateway.disable')),
  target: field(z.string().regex(new RegExp(`^(${ADMIN_TARGETS.join('|')})(:.+)?$`), `expected a target: ${ADMIN_TARGETS.join(', ')}, or one with :id (gateway:eng)`)),
  since: time,
  until: time,
});
export type RequestQuery = z.infer<typeof requestQuery>;
export type ChangeQuery = z.infer<typeof changeQuery>;

export const requestFilter = (q: RequestQuery): AuditFilter => ({ kind: 'mcp', subject: q.user, gateway: q.gateway, server: q.server, tool: q.tool, outcome: q.outcome, since: q.since, until: q.until });
export const changeFilter = (q: ChangeQuery): AuditFilter => ({ kind: 'admin', subject: q.user, action: q.action, target: q.target, since: q.since, until: q.until });

/** The first `limit` matches, newest first. */
export async function newest<T>(log: AuditLog, filter: AuditFilter, limit: number): Promise<T[]> {
  const out: T[] = [];
  for await (const entry of log.read(filter, { order: 'desc', limit })) out.push(entry as T);
  return out;
}

export interface Chart {
  labels: string[];
  series: { label: string; kind: 'calls' | 'refusals'; values: number[] }[];
  totals: { gateway: string; calls: number; refusals: number }[];
  from?: string;
  to?: string;
}

/** Calls and refusals (every outcome but ok) per gateway, in at most MAX_BUCKETS steps over the range. */
export async function chartOf(log: AuditLog, filter: AuditFilter): Promise<Chart> {
  const entries = (await newest<AuditEntry>(log, filter, CHART_MAX)).reverse();
  const times = entries.map((e) => Date.parse(e.time));
  const start = filter.since ?? times[0];
  const end = filter.until ?? times.at(-1);
  if (start === undefined || end === undefined || !entries.length) return { labels: [], series: [], totals: [] };
  const step = STEPS.find((s) => (end - start) / s < MAX_BUCKETS) ?? STEPS.at(-1)!;
  const first = Math.floor(start / step) * step;
  const count = Math.min(Math.floor((end - first) / step) + 1, MAX_BUCKETS * 4);
  const gateways = [...new Set(entries.map((e) => e.gateway))].sort();
  const calls = new Map(gateways.map((g) => [g, new Array<number>(count).fill(0)]));
  const refusals = new Map(gateways.map((g) => [g, new Array<number>(count).fill(0)]));
  entries.forEach((e, i) => {
    const bucket = Math.floor((times[i]! - first) / step);
    if (bucket < 0 || bucket >= count) return;
    calls.get(e.gateway)![bucket]! += 1;
    if (e.outcome !== 'ok') refusals.get(e.gateway)![bucket]! += 1;
  });
  // Days for day steps, minutes for minute steps, seconds below.
  const [from, to] = step >= 86_400_000 ? [0, 10] : step >= 60_000 ? [5, 16] : [11, 19];
  const label = (ms: number) => new Date(ms).toISOString().slice(from, to).replace('T', ' ');
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return {
    labels: Array.from({ length: count }, (_, i) => label(first + i * step)),
    series: gateways.flatMap((g) => [
      { label: `${g} calls`, kind: 'calls' as const, values: calls.get(g)! },
      { label: `${g} refusals`, kind: 'refusals' as const, values: refusals.get(g)! },
    ]),
    totals: gateways.map((g) => ({ gateway: g, calls: sum(calls.get(g)!), refusals: sum(refusals.get(g)!) })),
    from: new Date(first).toISOString().slice(0, 19).replace('T', ' '),
    to: new Date(first + count * step).toISOString().slice(0, 19).replace('T', ' '),
  };
}

const iso = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString().slice(0, 16));
const stamp = (time: string) => time.slice(0, 19).replace('T', ' ');

function input(name: string, label: string, value: string | undefined, type = 'text', hint?: string): Html {
  return html`<div><label for="f-${name}">${label}</label><input type="${type}" id="f-${name}" name="${name}" value="${value ?? ''}"${hint ? html` placeholder="${hint}"` : ''}></div>`;
}

function chartBlock(chart: Chart): Html {
  if (!chart.series.length) return html`<p class="muted">No requests in this view to chart.</p>`;
  const summary = `From ${chart.from} to ${chart.to} UTC: ${chart.totals.map((t) => `${t.gateway} ${t.calls} calls, ${t.refusals} refused`).join('; ')}.`;
  return html`<figure class="card"><figcaption id="chart-summary">Calls and refusals per gateway over time. ${summary}</figcaption>
<div class="chart"><canvas id="audit-chart" role="img" aria-labelledby="chart-summary" data-chart="${JSON.stringify({ labels: chart.labels, series: chart.series })}">
<table><caption>Totals per gateway</caption><thead><tr><th scope="col">Gateway</th><th scope="col">Calls</th><th scope="col">Refusals</th></tr></thead><tbody>${chart.totals.map((t) => html`<tr><td>${t.gateway}</td><td>${t.calls}</td><td>${t.refusals}</td></tr>`)}</tbody></table></canvas></div></figure>`;
}

export function requestsPage(home: string, q: RequestQuery, rawQuery: string, rows: AuditEntry[], chart: Chart): Html {
  return html`<form class="filters card" method="get" action="${home}/audit" role="search" aria-label="Filter the audit log">
${input('user', 'Person (sub)', q.user)}${input('gateway', 'Gateway', q.gateway)}${input('server', 'Server', q.server)}${input('tool', 'Tool', q.tool)}${input('outcome', 'Outcome', q.outcome, 'text', 'ok, error, policy_denied…')}
${input('since', 'From (UTC)', iso(q.since), 'datetime-local')}${input('until', 'To (UTC)', iso(q.until), 'datetime-local')}
<div><button type="submit">Filter</button> <a href="${home}/audit">Clear</a></div></form>
<p><a href="${home}/audit/export${rawQuery ? `?${rawQuery}` : ''}" download>Export this view as JSONL</a> <span class="muted">(every match, oldest first)</span></p>
${chartBlock(chart)}
<h2>Requests <span class="muted">(newest ${ROWS} at most)</span></h2>
${
  rows.length
    ? html`<table><thead><tr><th scope="col">Time (UTC)</th><th scope="col">Person</th><th scope="col">Gateway / server</th><th scope="col">Method</th><th scope="col">Tool</th><th scope="col">Outcome</th><th scope="col">Status</th></tr></thead><tbody>${rows.map(
        (e) =>
          html`<tr><td>${stamp(e.time)}</td><td>${e.subject ?? 'anonymous'}${e.actor ? html`<br><span class="muted">via ${e.actor}</span>` : ''}</td><td>${e.gateway}${e.server ? ` / ${e.server}` : ''}</td><td>${e.method ?? e.http_method}</td><td>${e.name ?? ''}</td><td><span class="badge ${e.outcome === 'ok' ? 'ok' : 'bad'}">${e.outcome}</span>${e.rule ? html` <span class="muted">${e.rule}</span>` : ''}</td><td>${e.status}</td></tr>`,
      )}</tbody></table>`
    : html`<p>No requests match.</p>`
}`;
}

export function changesPage(home: string, q: ChangeQuery, rows: AdminChange[]): Html {
  return html`<form class="filters card" method="get" action="${home}/changes" role="search" aria-label="Filter the admin changes">
${input('user', 'Admin (sub)', q.user)}${input('action', 'Action', q.action, 'text', 'gateway.disable')}${input('target', 'Target', q.target, 'text', 'gateway:team')}
${input('since', 'From (UTC)', iso(q.since), 'datetime-local')}${input('until', 'To (UTC)', iso(q.until), 'datetime-local')}
<div><button type="submit">Filter</button> <a href="${home}/changes">Clear</a></div></form>
${
  rows.length
    ? html`<table><thead><tr><th scope="col">Time (UTC)</th><th scope="col">Admin</th><th scope="col">Via</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Outcome</th><th scope="col">Reason</th><th scope="col">Before / after</th></tr></thead><tbody>${rows.map(
        (c) =>
          html`<tr><td>${stamp(c.time)}</td><td>${c.subject}</td><td>${c.via}</td><td><code>${c.action}</code></td><td><code>${c.target.type}${c.target.id !== undefined ? `:${c.target.id}` : ''}</code></td><td><span class="badge ${c.outcome === 'ok' ? 'ok' : 'bad'}">${c.outcome}</span>${c.error ? html` <span class="muted">${c.error}</span>` : ''}</td><td>${c.reason ?? ''}</td>
<td>${c.outcome === 'ok' ? html`<details><summary>show</summary><pre>${JSON.stringify({ before: c.before, after: c.after }, null, 1)}</pre></details>` : ''}</td></tr>`,
      )}</tbody></table>`
    : html`<p>No changes match.</p>`
}`;
}
