import { type Request, Router } from 'express';
import { gateway as gatewaySchema, type GatewayInput } from '../../config/sections/upstreams.ts';
import { InvalidRequestError, NotFoundError } from '../../http/errors.ts';
import { ConflictError, epoch, parseInput } from '../http.ts';
import { type AdminDeps, flip, gatewayInputs, noStore, type Source, type StoredGateway, switchBody, switchView } from './deps.ts';
import { requireReferences, sharedIdentityProblems } from './references.ts';

// /api/v1/admin/gateways: named sets of upstream assignments, each with its
// identity scheme (shared with a global identity, or per_user), storage and
// tool filter, and who may use a private gateway (members). The body is the
// configuration's own `gateways[]` entry. Config-defined gateways are
// read-only here; break-glass switches work on both.

function view(deps: AdminDeps, input: StoredGateway, source: Source) {
  const current = deps.catalog.current.gateways.get(input.id);
  return {
    id: input.id,
    name: input.name ?? input.id,
    ...(input.description !== undefined && { description: input.description }),
    visibility: input.visibility,
    ...(input.members !== undefined && { members: input.members }),
    servers: input.servers.map((s) => ({ ...s, name: s.name ?? s.upstream, mcp_url: deps.resources.endpoint(`/mcp/${input.id}/${s.name ?? s.upstream}`) })),
    mcp_url: deps.resources.endpoint(`/mcp/${input.id}`),
    source,
    disabled: current?.disabled ?? false,
    ...(input.created_at !== undefined && { created_at: input.created_at }),
    ...(input.updated_at !== undefined && { updated_at: input.updated_at }),
  };
}

async function find(deps: AdminDeps, id: string) {
  const found = (await gatewayInputs(deps)).find((g) => g.input.id === id);
  if (!found) throw new NotFoundError(`there is no gateway "${id}"`);
  return found;
}

/** The gateway as `GET /admin/gateways/{id}` answers it (the audit's before and after), or undefined. */
export async function describeGateway(deps: AdminDeps, id: string) {
  const found = (await gatewayInputs(deps)).find((g) => g.input.id === id);
  if (!found) return undefined;
  const s = await deps.catalog.switches.find(`gateway:${found.input.id}`);
  return { ...view(deps, found.input, found.source), ...(s && { switch: switchView(s) }) };
}

function editable(found: { source: Source }, id: string): void {
  if (found.source === 'config') throw new ConflictError(`gateway "${id}" is defined in the configuration file and is read-only here; change the file (break-glass disable/enable works)`);
}

function bodyFor(req: Request<{ id: string }>): unknown {
  const body = (req.body ?? {}) as Record<string, unknown>;
  if (body.id !== undefined && body.id !== req.params.id) throw new InvalidRequestError(`id: the id is "${req.params.id}" (the URL's) and cannot be changed`);
  return { ...body, id: req.params.id };
}

/** Every reference of the gateway holds (upstreams, names, schemes, shared identities). */
async function validate(deps: AdminDeps, input: GatewayInput): Promise<void> {
  await requireReferences(deps, { gateways: (all) => [...all.filter((g) => g.id !== input.id), input], gateway: input.id });
  const problems = await sharedIdentityProblems(deps, input);
  if (problems.length) throw new InvalidRequestError(problems.join('; '));
}

/** Every gateway, as `GET /admin/gateways` lists them. */
export async function listGateways(deps: AdminDeps) {
  return (await gatewayInputs(deps)).map((g) => view(deps, g.input, g.source));
}

/** Break-glass (config-defined gateways too): effective on the next request; nothing is deleted. */
export async function switchGateway(deps: AdminDeps, id: string, disabled: boolean, by: string, reason: string | undefined) {
  const found = await find(deps, id);
  const s = await flip(deps, `gateway:${found.input.id}`, disabled, by, reason);
  await deps.catalog.reload();
  return { ...view(deps, found.input, found.source), switch: switchView(s) };
}

export function gatewayRoutes(deps: AdminDeps): Router {
  const router = Router();

  router.get('/gateways', async (_req, res) => {
    res.set(noStore).json({ gateways: await listGateways(deps) });
  });

  router.get('/gateways/:id', async (req, res) => {
    const gateway = await describeGateway(deps, req.params.id);
    if (!gateway) throw new NotFoundError(`there is no gateway "${req.params.id}"`);
    res.set(noStore).json(gateway);
  });

  router.post('/gateways', async (req, res) => {
    const input = parseInput(gatewaySchema, req.body);
    if ((await gatewayInputs(deps)).some((g) => g.input.id === input.id)) throw new ConflictError(`there is already a gateway "${input.id}"`);
    await validate(deps, input);
    const now = epoch();
    await deps.catalog.gatewayRecords.upsert(input.id, { ...input, created_at: now, updated_at: now });
    await deps.catalog.reload();
    res.status(201).set(noStore).location(`${req.baseUrl}/gateways/${input.id}`).json(view(deps, (await find(deps, input.id)).input, 'api'));
  });

  router.put('/gateways/:id', async (req, res) => {
    const found = await find(deps, req.params.id);
    editable(found, req.params.id);
    const input = parseInput(gatewaySchema, bodyFor(req));
    await validate(deps, input);
    await deps.catalog.gatewayRecords.upsert(input.id, { ...input, created_at: found.input.created_at ?? epoch(), updated_at: epoch() });
    await deps.catalog.reload();
    res.set(noStore).json(view(deps, (await find(deps, input.id)).input, 'api'));
  });

  router.delete('/gateways/:id', async (req, res) => {
    const found = await find(deps, req.params.id);
    editable(found, req.params.id);
    await deps.catalog.gatewayRecords.destroy(found.input.id);
    await deps.catalog.reload();
    res.status(204).end();
  });

  // Break-glass: effective on the next request; nothing is deleted.
  for (const action of ['disable', 'enable'] as const) {
    router.post(`/gateways/:id/${action}`, async (req, res) => {
      await find(deps, req.params.id);
      const { reason } = parseInput(switchBody, req.body);
      res.set(noStore).json(await switchGateway(deps, req.params.id, action === 'disable', req.principal!.subject, reason));
    });
  }

  return router;
}
