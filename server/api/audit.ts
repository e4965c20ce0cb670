import { type Response, Router } from 'express';
import { z } from 'zod';
import { ADMIN_TARGETS, type AuditFilter, type AuditLog, type AuditSink, isAuditLog } from '../audit/audit.ts';
import { InvalidRequestError, NotFoundError } from '../http/errors.ts';
import { Capabilities } from './capabilities.ts';
import { caller, parseInput } from './http.ts';

// Reading the audit log: GET /api/v1/audit (admins: everyone's MCP requests
// and every admin change, filtered) and GET /api/v1/me/audit (the caller's own
// MCP requests only). JSON
// answers newest first, at most 1000 at a time; `format=jsonl` streams every
// match oldest first as application/x-ndjson, for export.

const JSON_LIMIT = 100;
const JSON_MAX = 1000;

/** ISO 8601, or epoch seconds. */
const time = z.string().transform((value, ctx) => {
  const ms = /^\d{1,12}$/.test(value) ? Number(value) * 1000 : /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 time (2026-07-28T12:00:00Z) or epoch seconds' });
    return z.NEVER;
  }
  return ms;
});

const adminQuery = z.strictObject({
  /** mcp: MCP requests; admin: admin changes; absent: both. */
  kind: z.enum(['mcp', 'admin'], { error: 'expected kind: mcp or admin' }).optional(),
  since: time.optional(),
  until: time.optional(),
  /** The caller's subject (`sub`). */
  user: z.string().min(1).optional(),
  /** The agent that acted for the subject (RFC 8693 `act`). */
  actor: z.string().min(1).optional(),
  gateway: z.string().min(1).optional(),
  /** MCP requests: the server under the gateway. */
  server: z.string().min(1).optional(),
  /** MCP requests: the tool (prompt, resource URI) named. */
  tool: z.string().min(1).optional(),
  /** ok, a failure reason (connection_disabled, identity_missing...), or error for every failure. */
  outcome: z.string().min(1).optional(),
  /** Admin changes: an action (client.create). */
  action: z.string().regex(/^[a-z_]+\.[a-z_]+$/, 'expected an action like gateway.update').optional(),
  /** Admin changes: a target type (gateway), or type:id (gateway:eng). */
  target: z.string().regex(new RegExp(`^(${ADMIN_TARGETS.join('|')})(:.+)?$`), `expected a target: ${ADMIN_TARGETS.join(', ')}, or one of them with :id (gateway:eng)`).optional(),
  limit: z.string().regex(/^\d+$/, 'expected a positive integer').transform(Number).pipe(z.number().int().min(1).max(1_000_000)).optional(),
  format: z.enum(['json', 'jsonl'], { error: 'expected format: json or jsonl' }).default('json'),
});
const ownQuery = adminQuery.omit({ user: true, kind: true, action: true, target: true });

/** Every match oldest first as application/x-ndjson (an export), paced by the socket. */
export async function sendJsonl(res: Response, log: AuditLog, filter: AuditFilter, limit?: number): Promise<void> {
  res.status(200).set({ 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Disposition': 'attachment; filename="keygate-audit.jsonl"' });
  let gone = false;
  res.once('close', () => (gone = true));
  for await (const entry of log.read(filter, { order: 'asc', limit })) {
    if (gone) break;
    if (!res.write(`${JSON.stringify(entry)}\n`)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  res.end();
}

export interface AuditApiDeps {
  audit: AuditSink;
  /** Who may read everyone's entries: the audit_log capability (default: the scope mcp:admin). */
  capabilities?: Capabilities;
}

export function auditRouter(deps: AuditApiDeps): Router {
  const router = Router();

  async function answer(res: Response, query: z.infer<typeof ownQuery>, filter: AuditFilter): Promise<void> {
    const log = deps.audit;
    if (!isAuditLog(log)) throw new NotFoundError('this registry records its audit to a sink that cannot be queried');
    if (query.format === 'jsonl') return sendJsonl(res, log, filter, query.limit);
    const limit = query.limit ?? JSON_LIMIT;
    if (limit > JSON_MAX) throw new InvalidRequestError(`limit: at most ${JSON_MAX} (use format=jsonl to export more)`);
    const entries = [];
    for await (const entry of log.read(filter, { order: 'desc', limit: limit + 1 })) entries.push(entry);
    res.set('Cache-Control', 'no-store').json({ entries: entries.slice(0, limit), has_more: entries.length > limit });
  }

  const capabilities = deps.capabilities ?? new Capabilities(undefined);
  router.get('/audit', capabilities.require('audit_log', 'reading the audit log needs an access token'), async (req, res) => {
    const query = parseInput(adminQuery, req.query, 'query');
    await answer(res, query, { kind: query.kind, since: query.since, until: query.until, subject: query.user, actor: query.actor, gateway: query.gateway, server: query.server, tool: query.tool, outcome: query.outcome, action: query.action, target: query.target });
  });

  router.get('/me/audit', async (req, res) => {
    const me = caller(req, 'sign in to see the audit of your calls');
    const query = parseInput(ownQuery, req.query, 'query');
    // Only the caller's own MCP requests: their subject, as vouched for by the same kind of validator.
    await answer(res, query, { kind: 'mcp', since: query.since, until: query.until, subject: me.subject, provider: me.provider, actor: query.actor, gateway: query.gateway, server: query.server, tool: query.tool, outcome: query.outcome });
  });

  return router;
}
