import { Router } from 'express';
import { z } from 'zod';
import { id as idSchema } from '../../config/sections/common.ts';
import type { CredentialConfig } from '../../config/sections/upstreams.ts';
import { ForbiddenError, InvalidRequestError, NotFoundError } from '../../http/errors.ts';
import { type Identity, kindFor, ORGANIZATION, type Secret } from '../../vault/identities.ts';
import { fieldProblems, headerValueProblem } from '../../vault/inject.ts';
import { ConflictError, parseInput } from '../http.ts';
import { type AdminDeps, flip, gatewayInputs, noStore, switchBody, switchView } from './deps.ts';

// /api/v1/admin/identities: metadata only. A secret (or a secret field's
// value) is never part of any answer; a person's private identity can be
// disabled or deleted here, never revealed, changed or selected (a gateway's
// shared_identity must be global). Admins create service accounts: global
// identities owned by the organization, which outlive whoever created them.

const secretValue = z
  .string()
  .min(1)
  .max(8192)
  .superRefine((v, ctx) => {
    const problem = headerValueProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const values = z.record(z.string(), z.string().max(8192)).refine((v) => Object.keys(v).length <= 50, 'too many fields');

/** One body for every kind (as the self-service API): `token` (bearer), `value` (header), `values` (fields). */
const newIdentity = z.strictObject({
  id: idSchema.optional(),
  upstream: idSchema,
  label: z.string().trim().min(1).max(100).optional(),
  token: secretValue.optional(),
  value: secretValue.optional(),
  values: values.optional(),
});
const credentialChange = newIdentity.omit({ id: true, upstream: true });

/** Never the secret: an explicit list of what may be shown. */
export function identityView(identity: Identity) {
  return {
    id: identity.id,
    upstream: identity.upstream,
    owner: identity.owner,
    availability: identity.availability,
    ...(identity.label !== undefined && { label: identity.label }),
    kind: identity.kind,
    ...(identity.fields_set !== undefined && { fields_set: identity.fields_set }),
    // Values of non-secret fields (a workspace, a region), and only of identities others may use anyway.
    ...(identity.availability === 'global' && identity.public_values !== undefined && { public_values: identity.public_values }),
    ...(identity.expires_at !== undefined && { expires_at: identity.expires_at }),
    ...(identity.upstream_account !== undefined && { upstream_account: identity.upstream_account }),
    disabled: identity.disabled,
    ...(identity.created_by !== undefined && { created_by: identity.created_by }),
    created_at: identity.created_at,
    updated_at: identity.updated_at,
  };
}

/** The identity as `GET /admin/identities/{id}` answers it (the audit's before and after), or undefined. */
export async function describeIdentity(deps: AdminDeps, id: string) {
  const identity = await deps.identities.records.find(id);
  if (!identity) return undefined;
  const s = await deps.catalog.switches.find(`identity:${identity.id}`);
  return { ...identityView(identity), ...(s && { switch: switchView(s) }) };
}

/** The secret an upstream's credential kind takes, from the body; every problem is a 400 naming the field. */
function secretFor(upstream: { id: string; credential: CredentialConfig }, body: z.infer<typeof credentialChange>): Secret {
  const kind = kindFor(upstream.credential);
  const given = (['token', 'value', 'values'] as const).filter((k) => body[k] !== undefined);
  const wants = kind === 'bearer' ? 'token' : kind === 'header' ? 'value' : kind === 'fields' ? 'values' : undefined;
  if (kind === undefined) throw new InvalidRequestError(`upstream: upstream "${upstream.id}" has credential.type ${upstream.credential.type}: it takes no identity`);
  if (kind === 'oauth') throw new InvalidRequestError(`upstream: upstream "${upstream.id}" uses OAuth: its identities are made by signing in at the upstream (the connect page), not from values`);
  const extra = given.filter((k) => k !== wants);
  if (extra.length) throw new InvalidRequestError(`${extra[0]}: upstream "${upstream.id}" has credential.type ${kind}: send ${wants}`);
  if (kind === 'bearer') {
    if (body.token === undefined) throw new InvalidRequestError(`token: upstream "${upstream.id}" has credential.type bearer: the token is required`);
    return { kind, token: body.token };
  }
  if (kind === 'header') {
    if (body.value === undefined) throw new InvalidRequestError(`value: upstream "${upstream.id}" has credential.type header: the header value is required`);
    return { kind, value: body.value };
  }
  const problems = fieldProblems(upstream.credential, body.values ?? {});
  if (problems.length) throw new InvalidRequestError(`values: ${problems.join('; ')}`);
  return { kind: 'fields', values: body.values ?? {} };
}

/** The identities (metadata only), oldest first, as `GET /admin/identities` lists them. */
export async function listIdentities(deps: AdminDeps, filter: { upstream?: string | undefined; owner?: string | undefined } = {}) {
  const { upstream, owner } = filter;
  const records = deps.identities.records;
  const found = owner !== undefined ? await records.findBy('owner', owner) : upstream !== undefined ? await records.findBy('upstream', upstream) : await records.all();
  const list = found.map(([, i]) => i).filter((i) => (upstream === undefined || i.upstream === upstream) && (owner === undefined || i.owner === owner));
  list.sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id));
  const used = await deps.connections.identitiesLastUsed();
  // When a call last used it (epoch seconds, to the minute across instances: audit/connections.ts), if one ever did
  // (since it was made: a use recorded before is another identity's that had its id).
  return list.map((i) => {
    const lastUsed = used.get(i.id);
    return { ...identityView(i), ...(lastUsed !== undefined && lastUsed >= i.created_at && { last_used: lastUsed }) };
  });
}

/** Break-glass: the flag lives on the identity (the resolver reads it on every call); the switch records who and why. */
export async function switchIdentity(deps: AdminDeps, id: string, disabled: boolean, by: string, reason: string | undefined) {
  const next = await deps.identities.update(id, (current) => current && { ...current, disabled });
  if (!next) throw new NotFoundError(`there is no identity "${id}"`);
  const s = await flip(deps, `identity:${next.id}`, disabled, by, reason);
  return { ...identityView(next), switch: switchView(s) };
}

export function identityRoutes(deps: AdminDeps): Router {
  const router = Router();
  const { identities } = deps;

  async function find(id: string): Promise<Identity> {
    const identity = await identities.records.find(id);
    if (!identity) throw new NotFoundError(`there is no identity "${id}"`);
    return identity;
  }

  function upstreamOf(id: string) {
    const upstream = deps.catalog.current.upstreams.get(id);
    if (!upstream) throw new InvalidRequestError(`upstream: no upstream with id "${id}"`);
    return upstream;
  }

  /** Only the organization's own identities, and not those the configuration file seeds at every start. */
  function organizationOwned(identity: Identity): void {
    if (identity.created_by === 'config') throw new ConflictError(`identity "${identity.id}" is seeded from the configuration file and is read-only here; change the file (disable/enable works)`);
    if (identity.owner !== ORGANIZATION) throw new ForbiddenError(`identity "${identity.id}" belongs to a person; an admin may disable or delete it, never change its credential`);
  }

  router.get('/identities', async (req, res) => {
    const { upstream, owner } = parseInput(z.strictObject({ upstream: z.string().optional(), owner: z.string().optional() }), req.query, 'query');
    res.set(noStore).json({ identities: await listIdentities(deps, { upstream, owner }) });
  });

  router.get('/identities/:id', async (req, res) => {
    const identity = await describeIdentity(deps, req.params.id);
    if (!identity) throw new NotFoundError(`there is no identity "${req.params.id}"`);
    res.set(noStore).json(identity);
  });

  // A service account: global, owned by the organization, created_by the admin.
  router.post('/identities', async (req, res) => {
    const body = parseInput(newIdentity, req.body);
    const upstream = upstreamOf(body.upstream);
    const secret = secretFor(upstream, body);
    if (body.id !== undefined && (await identities.records.find(body.id))) throw new ConflictError(`there is already an identity "${body.id}"`);
    const identity = await identities.put(
      { ...(body.id !== undefined && { id: body.id }), upstream: upstream.id, owner: ORGANIZATION, availability: 'global', label: body.label, secret, created_by: req.principal!.subject },
      upstream.credential,
    );
    res.status(201).set(noStore).location(`${req.baseUrl}/identities/${identity.id}`).json(identityView(identity));
  });

  // Rotate a service account's credential (or relabel it).
  router.put('/identities/:id', async (req, res) => {
    const identity = await find(req.params.id);
    organizationOwned(identity);
    const body = parseInput(credentialChange, req.body);
    const upstream = upstreamOf(identity.upstream);
    const secret = secretFor(upstream, body);
    const next = await identities.put(
      { id: identity.id, upstream: identity.upstream, owner: identity.owner, availability: identity.availability, label: body.label ?? identity.label, secret, disabled: identity.disabled },
      upstream.credential,
    );
    res.set(noStore).json(identityView(next));
  });

  router.delete('/identities/:id', async (req, res) => {
    const identity = await find(req.params.id);
    if (identity.created_by === 'config') throw new ConflictError(`identity "${identity.id}" is seeded from the configuration file and would come back at the next start; remove it from the file (disable works)`);
    const users = (await gatewayInputs(deps)).flatMap((g) => g.input.servers.filter((s) => s.shared_identity === identity.id).map((s) => `/mcp/${g.input.id}/${s.name ?? s.upstream}`));
    if (users.length) throw new ConflictError(`identity "${identity.id}" is the shared identity of ${users.join(', ')}; choose another there first (or disable it)`);
    await identities.destroy(identity.id);
    res.status(204).end();
  });

  for (const action of ['disable', 'enable'] as const) {
    router.post(`/identities/:id/${action}`, async (req, res) => {
      await find(req.params.id);
      const { reason } = parseInput(switchBody, req.body);
      res.set(noStore).json(await switchIdentity(deps, req.params.id, action === 'disable', req.principal!.subject, reason));
    });
  }

  return router;
}
