import express, { type Request, Router } from 'express';
import { z } from 'zod';
import type { CatalogHolder } from '../catalog/catalog.ts';
import { ForbiddenError, InvalidRequestError, InvalidTokenError, NotFoundError } from '../http/errors.ts';
import type { Principal } from '../inbound/principal.ts';
import { kindFor, type Identities, type Secret } from '../vault/identities.ts';
import { fieldProblems, headerValueProblem } from '../vault/inject.ts';
import { selectionHolds, type Selections } from '../vault/selections.ts';
import { selectable, serverStates, viewIdentity } from '../vault/server-state.ts';

// Self-service: a person's servers and their state, their identities, and
// which identity serves which per-user server. Secrets go in, never out:
// responses say which fields are set, never what they hold.

export interface MeDeps {
  catalog: CatalogHolder;
  identities: Identities;
  selections: Selections;
  publicUrl: string;
}

function caller(req: Request): Principal {
  if (!req.principal) throw new InvalidTokenError('sign in to use your servers and identities');
  if (req.principal.isClient) throw new ForbiddenError('a client acting as itself has no servers or identities of its own');
  return req.principal;
}

const label = z.string().trim().min(1).max(100);
const values = z.record(z.string(), z.string().max(8192)).refine((v) => Object.keys(v).length <= 50, 'too many fields');

// One body shape for every kind: `values` for fields, `token` for bearer, `value` for header.
const newIdentity = z.strictObject({
  upstream: z.string(),
  label: label.optional(),
  availability: z.enum(['private', 'global']).default('private'),
  values: values.optional(),
  token: z.string().min(1).max(8192).optional(),
  value: z.string().min(1).max(8192).optional(),
  /** Use it at once for this per-user server. */
  select: z.strictObject({ gateway: z.string(), server: z.string() }).optional(),
});

const identityChange = z.strictObject({
  label: label.optional(),
  availability: z.enum(['private', 'global']).optional(),
  values: values.optional(),
  token: z.string().min(1).max(8192).optional(),
  value: z.string().min(1).max(8192).optional(),
});

const selection = z.strictObject({ gateway: z.string(), server: z.string(), identity: z.string() });

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.join('.');
    throw new InvalidRequestError(issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : `${where ? `${where}: ` : ''}${issue.message}`);
  }
  return result.data;
}

/** A value that will travel in a header: refused, naming `field` (never the value), when no header can carry it. */
function headerValue(field: string, value: string): string {
  const problem = headerValueProblem(value);
  if (problem) throw new InvalidRequestError(`${field} ${problem}`);
  return value;
}

/** The secret for an upstream of this credential kind, from a request body; throws with what is wrong. */
function secretFrom(kind: string, body: { values?: Record<string, string> | undefined; token?: string | undefined; value?: string | undefined }, credential: Parameters<typeof fieldProblems>[0]): Secret {
  switch (kind) {
    case 'bearer':
      if (!body.token) throw new InvalidRequestError('token: this upstream takes a bearer token');
      return { kind: 'bearer', token: headerValue('token', body.token) };
    case 'header':
      if (!body.value) throw new InvalidRequestError('value: this upstream takes a header value');
      return { kind: 'header', value: headerValue('value', body.value) };
    case 'fields': {
      const problems = fieldProblems(credential, body.values ?? {});
      if (problems.length) throw new InvalidRequestError(`values: ${problems.join('; ')}`);
      return { kind: 'fields', values: body.values ?? {} };
    }
    default:
      throw new InvalidRequestError('this upstream signs in with OAuth: connect it from its connect page');
  }
}

export function meRouter(deps: MeDeps): Router {
  const router = Router();
  const json = express.json({ limit: '64kb' });

  router.get('/servers', async (req, res) => {
    const principal = caller(req);
    res.set('Cache-Control', 'no-store').json({ servers: await serverStates(deps, deps.catalog.current, principal) });
  });

  router.get('/identities', async (req, res) => {
    const { subject } = caller(req);
    const all = await deps.identities.visibleTo(subject);
    const mine = all.filter((i) => i.owner === subject);
    const global = all.filter((i) => i.owner !== subject && i.availability === 'global' && !i.disabled);
    res.set('Cache-Control', 'no-store').json({ identities: mine.map((i) => viewIdentity(i, subject)), global: global.map((i) => viewIdentity(i, subject)) });
  });

  router.post('/identities', json, async (req, res) => {
    const { subject } = caller(req);
    const body = parse(newIdentity, req.body);
    const upstream = deps.catalog.current.upstreams.get(body.upstream);
    if (!upstream) throw new InvalidRequestError(`upstream: there is no upstream "${body.upstream}"`);
    const kind = kindFor(upstream.credential);
    if (!kind) throw new InvalidRequestError(`upstream "${upstream.id}" takes no personal credential`);
    const secret = secretFrom(kind, body, upstream.credential);
    const identity = await deps.identities.put({ upstream: upstream.id, owner: subject, availability: body.availability, label: body.label, secret, created_by: subject }, upstream.credential);
    if (body.select) await select(deps, subject, { ...body.select, identity: identity.id });
    res.status(201).set('Cache-Control', 'no-store').json(viewIdentity(identity, subject));
  });

  router.patch('/identities/:id', json, async (req, res) => {
    const { subject } = caller(req);
    const body = parse(identityChange, req.body);
    const current = await deps.identities.records.find(req.params.id!);
    if (!current || current.owner !== subject) throw new NotFoundError('you have no identity with that id');
    const upstream = deps.catalog.current.upstreams.get(current.upstream);
    const newSecret = body.values !== undefined || body.token !== undefined || body.value !== undefined;
    let updated;
    if (newSecret) {
      if (!upstream) throw new InvalidRequestError('the upstream of this identity no longer exists');
      const secret = secretFrom(current.kind, body, upstream.credential);
      updated = await deps.identities.put({ id: current.id, upstream: current.upstream, owner: subject, availability: body.availability ?? current.availability, label: body.label ?? current.label, secret }, upstream.credential);
    } else {
      updated = await deps.identities.update(current.id, (i) => i && { ...i, label: body.label ?? i.label, availability: body.availability ?? i.availability, updated_at: Math.floor(Date.now() / 1000) });
    }
    res.set('Cache-Control', 'no-store').json(viewIdentity(updated!, subject));
  });

  router.delete('/identities/:id', async (req, res) => {
    const { subject } = caller(req);
    const current = await deps.identities.records.find(req.params.id!);
    if (!current || current.owner !== subject) throw new NotFoundError('you have no identity with that id');
    await deps.identities.destroy(current.id);
    res.status(204).end();
  });

  router.put('/selections', json, async (req, res) => {
    const { subject } = caller(req);
    await select(deps, subject, parse(selection, req.body));
    res.status(204).end();
  });

  router.delete('/selections/:gateway/:server', async (req, res) => {
    const { subject } = caller(req);
    await deps.selections.clear(subject, req.params.gateway!, req.params.server!);
    res.status(204).end();
  });

  return router;
}

/** Choose an identity for a per-user server: one's own, or a global one, for that upstream. */
async function select(deps: MeDeps, subject: string, choice: z.infer<typeof selection>): Promise<void> {
  const gateway = deps.catalog.current.gateways.get(choice.gateway);
  const assignment = gateway?.servers.get(choice.server);
  if (!assignment) throw new NotFoundError(`there is no server ${choice.gateway}/${choice.server}`);
  if (assignment.identity !== 'per_user' || assignment.storage !== 'registry') throw new InvalidRequestError(`${choice.gateway}/${choice.server} does not take a personal identity from the registry`);
  const all = await deps.identities.visibleTo(subject);
  const allowed = selectable(all, subject, assignment.upstream.id).some((i) => i.id === choice.identity);
  if (!allowed) throw new ForbiddenError('that identity is not yours, not global, or not for this server');
  await deps.selections.set(subject, choice.gateway, choice.server, choice.identity);
  if (!(await selectionHolds(deps, subject, assignment, choice.identity))) throw new ForbiddenError('that identity is not yours, not global, or not for this server');
}
