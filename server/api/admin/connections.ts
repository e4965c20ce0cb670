import { Router } from 'express';
import { z } from 'zod';
import type { ConnectionRecord } from '../../audit/connections.ts';
import { NotFoundError } from '../../http/errors.ts';
import type { Switch } from '../../catalog/access.ts';
import { parseInput } from '../http.ts';
import { type AdminDeps, flip, noStore, switchBody, switchView } from './deps.ts';

// /api/v1/admin/connections: one user's use of one gateway from one client
// (its OAuth client_id), learnt from the audit stream. Disabling one refuses
// that user's calls to that gateway from that client on the next request,
// while their other clients and gateways keep working. The id in the URL is
// the connection's key (sub, gateway, client_id) in base64url.

export const connectionId = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');
const keyOf = (id: string): string => Buffer.from(id, 'base64url').toString('utf8');

function view(key: string, c: ConnectionRecord, s: Switch | undefined) {
  return {
    id: connectionId(key),
    subject: c.sub,
    ...(c.provider !== undefined && { provider: c.provider }),
    gateway: c.gateway,
    client_id: c.client_id ?? null,
    first_seen: c.first_seen,
    last_seen: c.last_seen,
    disabled: s?.disabled ?? false,
    ...(s && { switch: switchView(s) }),
  };
}

async function lookUp(deps: AdminDeps, id: string): Promise<[string, ConnectionRecord] | undefined> {
  const key = /^[A-Za-z0-9_-]{1,2048}$/.test(id) ? keyOf(id) : '';
  const record = key ? await deps.connections.find(key) : undefined;
  return record && [key, record];
}

/** The connection as `GET /admin/connections/{id}` answers it (the audit's before and after), or undefined. */
export async function describeConnection(deps: AdminDeps, id: string) {
  const found = await lookUp(deps, id);
  return found && view(found[0], found[1], await deps.catalog.switches.find(`connection:${found[0]}`));
}

/** The connections, most recently seen first, as `GET /admin/connections` lists them. */
export async function listConnections(deps: AdminDeps, filter: { user?: string | undefined; gateway?: string | undefined } = {}) {
  const { user, gateway } = filter;
  const switches = new Map((await deps.catalog.switches.all()).filter(([id]) => id.startsWith('connection:')).map(([id, s]) => [id.slice('connection:'.length), s]));
  const list = (await deps.connections.list()).filter(([, c]) => (user === undefined || c.sub === user) && (gateway === undefined || c.gateway === gateway));
  list.sort(([, a], [, b]) => b.last_seen - a.last_seen);
  return list.map(([key, c]) => view(key, c, switches.get(key)));
}

/** Break-glass: that user's calls to that gateway from that client are refused from the next request on. */
export async function switchConnection(deps: AdminDeps, id: string, disabled: boolean, by: string, reason: string | undefined) {
  const found = await lookUp(deps, id);
  if (!found) throw new NotFoundError(`there is no connection "${id}"`);
  const [key, record] = found;
  const s = await flip(deps, `connection:${key}`, disabled, by, reason);
  await deps.breakGlass.settled();
  return view(key, record, s);
}

export function connectionRoutes(deps: AdminDeps): Router {
  const router = Router();

  async function find(id: string): Promise<[string, ConnectionRecord]> {
    const found = await lookUp(deps, id);
    if (!found) throw new NotFoundError(`there is no connection "${id}"`);
    return found;
  }

  router.get('/connections', async (req, res) => {
    const { user, gateway } = parseInput(z.strictObject({ user: z.string().optional(), gateway: z.string().optional() }), req.query, 'query');
    res.set(noStore).json({ connections: await listConnections(deps, { user, gateway }) });
  });

  router.get('/connections/:id', async (req, res) => {
    const connection = await describeConnection(deps, req.params.id);
    if (!connection) throw new NotFoundError(`there is no connection "${req.params.id}"`);
    res.set(noStore).json(connection);
  });

  for (const action of ['disable', 'enable'] as const) {
    router.post(`/connections/:id/${action}`, async (req, res) => {
      await find(req.params.id);
      const { reason } = parseInput(switchBody, req.body);
      res.set(noStore).json(await switchConnection(deps, req.params.id, action === 'disable', req.principal!.subject, reason));
    });
  }

  return router;
}
