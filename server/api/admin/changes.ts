import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { AdminChange, AdminTarget } from '../../audit/audit.ts';
import { KeygateError } from '../../http/errors.ts';
import type { Principal } from '../../inbound/principal.ts';
import { describeClient } from './clients.ts';
import { describeConnection } from './connections.ts';
import type { AdminDeps } from './deps.ts';
import { describeGateway } from './gateways.ts';
import { describeIdentity } from './identities.ts';
import { describeUpstream } from './upstreams.ts';
import { describeUser } from './users.ts';

// Every change made through the admin API (and so through the CLI, which
// calls it) lands in the audit log, from this one place: who (the admin, via
// the CLI or the API), what (an action on a target), when, how it ended, and,
// for a change that took effect, the target as GET shows it just before and
// just after. Those views are the API's own explicit lists of what may be
// shown (an allowlist per kind of record), so a secret is never in them: not a
// client secret, not an identity's credential, not a password hash, not a
// vault ciphertext, and a field added to a record stays out until someone
// decides the API may show it. Nothing of the request body is kept but a
// break-glass reason.
//
// A refused attempt by a signed-in caller is recorded too: `denied` when the
// caller may not make it (401/403: no capability, a deactivated account),
// `failed` for any other refusal (invalid_request, not_found, conflict). An
// anonymous one is not: there is nobody to name, and anyone could fill the log.

type Describe = (deps: AdminDeps, id: string) => Promise<unknown>;

/** The route groups under /admin: the kind of target each changes, and how GET shows one. */
const GROUPS: Readonly<Record<string, { type: AdminTarget['type']; describe: Describe }>> = {
  upstreams: { type: 'upstream', describe: describeUpstream },
  gateways: { type: 'gateway', describe: describeGateway },
  identities: { type: 'identity', describe: describeIdentity },
  users: { type: 'user', describe: describeUser },
  clients: { type: 'client', describe: describeClient },
  connections: { type: 'connection', describe: describeConnection },
};

/** The action of a change route (`create`, `update`, `delete`, `disable`…), or undefined for a read or an unknown route. */
function actionOf(type: AdminTarget['type'], method: string, id: string | undefined, verb: string | undefined): string | undefined {
  if (id === undefined) return method === 'POST' ? 'create' : undefined;
  if (verb === undefined) return method === 'PUT' || method === 'PATCH' ? 'update' : method === 'DELETE' ? 'delete' : undefined;
  if (method !== 'POST') return undefined;
  // People are deactivated and reactivated (the CLI's words); everything else is disabled and enabled.
  if (verb === 'disable') return type === 'user' ? 'deactivate' : 'disable';
  if (verb === 'enable') return type === 'user' ? 'reactivate' : 'enable';
  if (verb === 'secret' && type === 'client') return 'rotate_secret';
  return undefined;
}

interface Change {
  type: AdminTarget['type'];
  action: string;
  id: string | undefined;
  describe: Describe;
  /** What GET showed once the caller was let in (null: nothing there). */
  before?: unknown;
}

/** `/gateways/eng/disable` (below /admin) → the change it makes, or undefined. */
function changeOf(req: Request): Change | undefined {
  let segments: string[];
  try {
    segments = req.path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined; // a malformed escape: no route of ours matches it
  }
  const [group, id, verb, ...rest] = segments;
  const known = group === undefined ? undefined : GROUPS[group];
  const action = known && !rest.length ? actionOf(known.type, req.method, id, verb) : undefined;
  return known && action ? { type: known.type, action, id, describe: known.describe } : undefined;
}

/** The API's error code from an error answer (`{"error": "conflict", …}`). */
function errorCode(body: unknown): string | undefined {
  try {
    const error = (JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : String(body)) as { error?: unknown }).error;
    return typeof error === 'string' && /^[a-z_]{1,64}$/.test(error) ? error : undefined;
  } catch {
    return undefined;
  }
}

/** A create answers with the new record's Location: its last segment is the id (percent-encoded for URL client ids). */
function createdId(res: Response): string | undefined {
  const location = res.get('location');
  const last = location?.split('/').pop();
  try {
    return last ? decodeURIComponent(last) : undefined;
  } catch {
    return undefined;
  }
}

/** Hold the answer until `settle` ran, so the change is in the log by the time the caller sees the answer. */
function beforeAnswer(res: Response, settle: (body: unknown) => Promise<void>, onError: (err: unknown) => void): void {
  const end = res.end.bind(res) as (...args: unknown[]) => Response;
  let held = false;
  res.end = ((...args: unknown[]) => {
    if (held) return end(...args);
    held = true;
    void settle(args[0])
      .catch(onError)
      .finally(() => end(...args));
    return res;
  }) as Response['end'];
}

interface Attempt {
  principal: Principal;
  via: AdminChange['via'];
  type: AdminTarget['type'];
  action: string;
  id: string | undefined;
  reason?: string | undefined;
  describe: Describe;
  before?: unknown;
}

/** What GET shows of the target (null: nothing there); undefined when it could not be read (the change is recorded all the same). */
async function snapshot(deps: AdminDeps, attempt: Pick<Attempt, 'type' | 'action' | 'describe'>, id: string | undefined): Promise<unknown> {
  if (id === undefined) return null;
  try {
    return (await attempt.describe(deps, id)) ?? null;
  } catch (err) {
    deps.log.error('audit: could not read %s "%s" for the record of %s: %s', attempt.type, id, attempt.action, (err as Error).message);
    return undefined;
  }
}

/** The audit record of an attempt that ended with this status (and, when refused, this error code). */
async function changeRecord(deps: AdminDeps, a: Attempt, status: number, error: string | undefined): Promise<AdminChange> {
  const p = a.principal;
  const outcome = status < 400 ? 'ok' : status === 401 || status === 403 ? 'denied' : 'failed';
  return {
    kind: 'admin',
    time: new Date().toISOString(),
    request_id: randomUUID(),
    subject: p.subject,
    provider: p.provider,
    client_id: p.clientId,
    ...(p.email !== undefined && { email: p.email }),
    ...(p.actor && { actor: p.actor.subject }),
    ...(p.isClient && { subject_type: 'client' as const }),
    via: a.via,
    action: `${a.type}.${a.action}`,
    target: { type: a.type, ...(a.id !== undefined && { id: a.id }) },
    outcome,
    status,
    ...(outcome === 'ok' ? { ...(a.reason !== undefined && { reason: a.reason }), before: a.before, after: await snapshot(deps, a, a.id) } : { error }),
  };
}

/**
 * A change made elsewhere than the admin API (the web console, calling the
 * same functions), recorded exactly as the API records its own: the target
 * before and after, or the refusal's code (a KeygateError's) and status.
 */
export async function auditedChange<T>(deps: AdminDeps, attempt: Omit<Attempt, 'describe' | 'before'>, change: () => Promise<T>): Promise<T> {
  const group = Object.values(GROUPS).find((g) => g.type === attempt.type)!;
  const a: Attempt = { ...attempt, describe: group.describe };
  try {
    a.before = await snapshot(deps, a, a.id);
    const result = await change();
    deps.audit.record(await changeRecord(deps, a, 200, undefined));
    return result;
  } catch (err) {
    const known = err instanceof KeygateError;
    deps.audit.record(await changeRecord(deps, a, known ? err.status : 500, known ? err.code : 'server_error'));
    throw err;
  }
}

export interface ChangeTrail {
  /** First in the admin router, before the capability check: a refused attempt is recorded too. */
  observe(req: Request, res: Response, next: NextFunction): void;
  /** After the capability check and the body: the target as it was. */
  before(req: Request, res: Response, next: NextFunction): Promise<void>;
}

export function changeTrail(deps: AdminDeps): ChangeTrail {
  const changes = new WeakMap<Request, Change>();

  async function settle(req: Request, res: Response, change: Change, body: unknown): Promise<void> {
    const p = req.principal;
    if (!p) return;
    const id = change.action === 'create' ? (res.statusCode < 400 ? createdId(res) : undefined) : change.id;
    const reason = (req.body as { reason?: unknown } | undefined)?.reason;
    const via = /^keygate-registry-cli\//.test(req.get('user-agent') ?? '') ? 'cli' : 'api';
    deps.audit.record(await changeRecord(deps, { principal: p, via, type: change.type, action: change.action, id, reason: typeof reason === 'string' ? reason : undefined, describe: change.describe, before: change.before }, res.statusCode, errorCode(body)));
  }

  return {
    observe(req, res, next) {
      const change = changeOf(req);
      if (change) {
        changes.set(req, change);
        beforeAnswer(res, (body) => settle(req, res, change, body), (err) => deps.log.error('audit: could not record %s %s: %s', req.method, req.path, (err as Error).message));
      }
      next();
    },
    async before(req, _res, next) {
      const change = changes.get(req);
      if (change) change.before = await snapshot(deps, change, change.id);
      next();
    },
  };
}
