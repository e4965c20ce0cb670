import { checkReferences, type GatewayInput, type UpstreamInput } from '../../config/sections/upstreams.ts';
import { InvalidRequestError } from '../../http/errors.ts';
import { type AdminDeps, gatewayInputs, upstreamInputs } from './deps.ts';

// Cross-references, checked as the configuration file is: every change is
// applied to a copy of the current upstreams and gateways, and refused with
// 400 when it introduces a problem that was not there before (a problem an
// unrelated entry already had does not block this change).

type Issue = ReturnType<typeof checkReferences>[number];

export interface Change {
  upstreams?: (current: UpstreamInput[]) => UpstreamInput[];
  gateways?: (current: GatewayInput[]) => GatewayInput[];
  /** The gateway the body describes: its issues are named by body field (servers.0.upstream). */
  gateway?: string;
}

function describe(issue: Issue, gateways: GatewayInput[], subject: string | undefined): string {
  const [section, index, ...rest] = issue.path;
  if (section === 'gateways' && typeof index === 'number') {
    const gw = gateways[index];
    if (gw && gw.id === subject) return `${rest.join('.')}: ${issue.message}`;
    return `gateway "${gw?.id ?? index}" ${rest.join('.')}: ${issue.message}`;
  }
  return `${issue.path.join('.')}: ${issue.message}`;
}

export async function referenceProblems(deps: AdminDeps, change: Change): Promise<string[]> {
  const upstreams = (await upstreamInputs(deps)).map((u) => u.input);
  const gateways = (await gatewayInputs(deps)).map((g) => g.input);
  const key = (i: Issue, gws: GatewayInput[]) => {
    // Gateways are named by id, not index, so an issue is the same before and after.
    const [section, index, ...rest] = i.path;
    const where = section === 'gateways' && typeof index === 'number' ? ['gateways', gws[index]?.id, ...rest] : i.path;
    return JSON.stringify([where, i.message]);
  };
  const before = new Set(checkReferences(upstreams, deps.config.identities, gateways).map((i) => key(i, gateways)));
  const nextUpstreams = change.upstreams ? change.upstreams(upstreams) : upstreams;
  const nextGateways = change.gateways ? change.gateways(gateways) : gateways;
  return checkReferences(nextUpstreams, deps.config.identities, nextGateways)
    .filter((i) => !before.has(key(i, nextGateways)))
    .map((i) => describe(i, nextGateways, change.gateway));
}

/** 400 invalid_request naming the first new problem. */
export async function requireReferences(deps: AdminDeps, change: Change): Promise<void> {
  const problems = await referenceProblems(deps, change);
  if (problems.length) throw new InvalidRequestError(problems.join('; '));
}

/**
 * A shared server's identity must exist, be global and be for the server's
 * upstream: an admin can never point a gateway at a person's private identity.
 */
export async function sharedIdentityProblems(deps: AdminDeps, gateway: GatewayInput): Promise<string[]> {
  const problems: string[] = [];
  for (const [i, server] of gateway.servers.entries()) {
    if (server.shared_identity === undefined) continue;
    const identity = await deps.identities.records.find(server.shared_identity);
    const where = `servers.${i}.shared_identity`;
    if (!identity) problems.push(`${where}: no identity "${server.shared_identity}"`);
    else if (identity.availability !== 'global') problems.push(`${where}: identity "${identity.id}" is private to its owner; a shared server needs a global identity`);
    else if (identity.upstream !== server.upstream) problems.push(`${where}: identity "${identity.id}" is for upstream "${identity.upstream}", not "${server.upstream}"`);
  }
  return problems;
}
