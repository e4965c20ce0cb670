import { type Request, Router } from 'express';
import { upstream as upstreamSchema } from '../../config/sections/upstreams.ts';
import { InvalidRequestError, NotFoundError } from '../../http/errors.ts';
import { ConflictError, epoch, parseInput } from '../http.ts';
import { type AdminDeps, flip, gatewayInputs, noStore, type Source, type StoredUpstream, switchBody, switchView, upstreamInputs } from './deps.ts';
import { requireReferences } from './references.ts';

// /api/v1/admin/upstreams: the MCP servers Keygate forwards to. Those from
// the configuration file are shown but read-only here (change the file);
// break-glass switches work on both. The body is the configuration's own
// `upstreams[]` entry, validated by the same schema.

function view(deps: AdminDeps, input: StoredUpstream, source: Source) {
  const current = deps.catalog.current.upstreams.get(input.id);
  return {
    id: input.id,
    name: input.name ?? input.id,
    ...(input.description !== undefined && { description: input.description }),
    url: input.url,
    // Only *_env names: the values stay in the registry's environment.
    credential: input.credential,
    timeout: input.timeout,
    source,
    disabled: current?.disabled ?? false,
    ...(input.created_at !== undefined && { created_at: input.created_at }),
    ...(input.updated_at !== undefined && { updated_at: input.updated_at }),
  };
}

async function find(deps: AdminDeps, id: string) {
  const found = (await upstreamInputs(deps)).find((u) => u.input.id === id);
  if (!found) throw new NotFoundError(`there is no upstream "${id}"`);
  return found;
}

/** The upstream as `GET /admin/upstreams/{id}` answers it (the audit's before and after), or undefined. */
export async function describeUpstream(deps: AdminDeps, id: string) {
  const found = (await upstreamInputs(deps)).find((u) => u.input.id === id);
  if (!found) return undefined;
  const s = await deps.catalog.switches.find(`upstream:${found.input.id}`);
  return { ...view(deps, found.input, found.source), ...(s && { switch: switchView(s) }) };
}

function editable(found: { source: Source }, id: string): void {
  if (found.source === 'config') throw new ConflictError(`upstream "${id}" is defined in the configuration file and is read-only here; change the file (break-glass disable/enable works)`);
}

/** The body of a PUT: the id is the URL's. */
function bodyFor(req: Request<{ id: string }>): unknown {
  const body = (req.body ?? {}) as Record<string, unknown>;
  if (body.id !== undefined && body.id !== req.params.id) throw new InvalidRequestError(`id: the id is "${req.params.id}" (the URL's) and cannot be changed`);
  return { ...body, id: req.params.id };
}

/** Every upstream, as `GET /admin/upstreams` lists them. */
export async function listUpstreams(deps: AdminDeps) {
  return (await upstreamInputs(deps)).map((u) => view(deps, u.input, u.source));
}

/** Break-glass (config-defined upstreams too): effective on the next request; nothing is deleted. */
export async function switchUpstream(deps: AdminDeps, id: string, disabled: boolean, by: string, reason: string | undefined) {
  const found = await find(deps, id);
  const s = await flip(deps, `upstream:${found.input.id}`, disabled, by, reason);
  await deps.catalog.reload();
  return { ...view(deps, found.input, found.source), switch: switchView(s) };
}

export function upstreamRoutes(deps: AdminDeps): Router {
  const router = Router();

  router.get('/upstreams', async (_req, res) => {
    res.set(noStore).json({ upstreams: await listUpstreams(deps) });
  });

  router.get('/upstreams/:id', async (req, res) => {
    const upstream = await describeUpstream(deps, req.params.id);
    if (!upstream) throw new NotFoundError(`there is no upstream "${req.params.id}"`);
    res.set(noStore).json(upstream);
  });

  router.post('/upstreams', async (req, res) => {
    const input = parseInput(upstreamSchema, req.body);
    if ((await upstreamInputs(deps)).some((u) => u.input.id === input.id)) throw new ConflictError(`there is already an upstream "${input.id}"`);
    const now = epoch();
    await deps.catalog.upstreamRecords.upsert(input.id, { ...input, created_at: now, updated_at: now });
    await deps.catalog.reload();
    res.status(201).set(noStore).location(`${req.baseUrl}/upstreams/${input.id}`).json(view(deps, (await find(deps, input.id)).input, 'api'));
  });

  router.put('/upstreams/:id', async (req, res) => {
    const found = await find(deps, req.params.id);
    editable(found, req.params.id);
    const input = parseInput(upstreamSchema, bodyFor(req));
    await requireReferences(deps, { upstreams: (all) => all.map((u) => (u.id === input.id ? input : u)) });
    await deps.catalog.upstreamRecords.upsert(input.id, { ...input, created_at: found.input.created_at ?? epoch(), updated_at: epoch() });
    await deps.catalog.reload();
    res.set(noStore).json(view(deps, (await find(deps, input.id)).input, 'api'));
  });

  router.delete('/upstreams/:id', async (req, res) => {
    const found = await find(deps, req.params.id);
    editable(found, req.params.id);
    const users = (await gatewayInputs(deps)).filter((g) => g.input.servers.some((s) => s.upstream === found.input.id)).map((g) => `"${g.input.id}"`);
    if (users.length) throw new ConflictError(`upstream "${found.input.id}" is assigned on gateway ${users.join(', ')}; remove it there first`);
    await deps.catalog.upstreamRecords.destroy(found.input.id);
    await deps.catalog.reload();
    res.status(204).end();
  });

  // Break-glass: effective on the next request; nothing is deleted.
  for (const action of ['disable', 'enable'] as const) {
    router.post(`/upstreams/:id/${action}`, async (req, res) => {
      await find(deps, req.params.id);
      const { reason } = parseInput(switchBody, req.body);
      res.set(noStore).json(await switchUpstream(deps, req.params.id, action === 'disable', req.principal!.subject, reason));
    });
  }

  return router;
}
