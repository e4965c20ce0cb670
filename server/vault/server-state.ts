import type { CredentialField } from '../config/sections/upstreams.ts';
import { type Assignment, type Catalog, mayUse } from '../catalog/catalog.ts';
import type { Principal } from '../inbound/principal.ts';
import { type Identities, type Identity, ORGANIZATION } from './identities.ts';
import { identityFor, mayServe, type Selections } from './selections.ts';

// What a person sees of each server they can reach: its scheme, what it needs
// from them, and which of their identities serves it. Shared by the
// self-service API (the extension's sidebar) and the connect pages.

export type State = 'ready' | 'needs_credentials' | 'needs_authorization' | 'disabled' | 'unavailable' | 'client_credentials';

/** An identity as its owner (or a selecting user) may see it: never a secret value. */
export interface IdentityView {
  id: string;
  label: string | undefined;
  upstream: string;
  availability: 'private' | 'global';
  kind: Identity['kind'];
  owner: 'you' | 'organization' | 'someone else';
  fields_set: string[] | undefined;
  public_values: Record<string, string> | undefined;
  expires_at: number | undefined;
  upstream_account: string | undefined;
  disabled: boolean;
  updated_at: number;
}

export interface ServerState {
  gateway: { id: string; name: string };
  server: string;
  upstream: { id: string; name: string; description: string | undefined };
  scheme: 'shared' | 'per_user';
  storage: 'registry' | 'client';
  credential: { type: string; fields?: CredentialField[] };
  state: State;
  reason: string | undefined;
  identity: IdentityView | undefined;
  /** The identities this person may choose for this server (per-user registry servers). */
  choices: IdentityView[];
  mcp_url: string;
  connect_url: string;
}

export function viewIdentity(identity: Identity, sub: string): IdentityView {
  return {
    id: identity.id,
    label: identity.label,
    upstream: identity.upstream,
    availability: identity.availability,
    kind: identity.kind,
    owner: identity.owner === sub ? 'you' : identity.owner === ORGANIZATION ? 'organization' : 'someone else',
    fields_set: identity.fields_set,
    public_values: identity.public_values,
    expires_at: identity.expires_at,
    upstream_account: identity.upstream_account,
    disabled: identity.disabled,
    updated_at: identity.updated_at,
  };
}

/** The identities a person may use for an upstream: their own, and global ones. */
export function selectable(all: Identity[], sub: string, upstream: string): Identity[] {
  return all.filter((i) => mayServe(i, sub, upstream)).sort((a, b) => b.updated_at - a.updated_at);
}

export interface StateDeps {
  identities: Identities;
  selections: Selections;
  publicUrl: string;
}

/** The gateway refuses a call whose credential the vault cannot open (identity_unreadable): said the same here. */
const UNREADABLE = 'the stored credential cannot be read (the registry\'s vault key does not open it): an admin must check the vault key';

/** A disabled identity in use: the call is refused (identity_disabled) until an admin enables it; Keygate switches to no other identity by itself. */
const DISABLED = (identity: Identity, sub: string) =>
  identity.owner === sub
    ? 'an admin disabled your identity for this server: calls are refused until an admin enables it (Keygate does not switch you to another identity by itself)'
    : 'an admin disabled the identity you chose for this server: calls are refused until an admin enables it, or you choose another';

export async function serverStates(deps: StateDeps, catalog: Catalog, principal: Principal): Promise<ServerState[]> {
  const all = await deps.identities.visibleTo(principal.subject);
  const states: ServerState[] = [];
  for (const gateway of catalog.gateways.values()) {
    if (!mayUse(gateway, principal)) continue;
    for (const a of gateway.servers.values()) {
      states.push(await stateOf(deps, a, gateway.name, gateway.disabled, principal.subject, all));
    }
  }
  return states;
}

export async function stateOf(deps: StateDeps, a: Assignment, gatewayName: string, gatewayDisabled: boolean, sub: string, all: Identity[]): Promise<ServerState> {
  const c = a.upstream.credential;
  const base = {
    gateway: { id: a.gateway, name: gatewayName },
    server: a.name,
    upstream: { id: a.upstream.id, name: a.upstream.name, description: a.upstream.description },
    scheme: a.identity,
    storage: a.storage,
    credential: { type: c.type, ...(c.type === 'fields' && { fields: c.fields }) },
    mcp_url: `${deps.publicUrl}/mcp/${a.gateway}/${a.name}`,
    connect_url: `${deps.publicUrl}/connect/${a.gateway}/${a.name}`,
  };
  const choices = a.identity === 'per_user' && a.storage === 'registry' ? selectable(all, sub, a.upstream.id) : [];
  const result = (state: State, reason?: string, identity?: Identity): ServerState => ({
    ...base,
    state,
    reason,
    identity: identity && viewIdentity(identity, sub),
    choices: choices.map((i) => viewIdentity(i, sub)),
  });

  if (gatewayDisabled) return result('disabled', 'the gateway is disabled by an admin');
  if (a.upstream.disabled) return result('disabled', 'the upstream is disabled by an admin');
  if (a.identity === 'shared') {
    if (c.type === 'none' || c.type === 'client_credentials' || a.sharedIdentity === undefined) return result(a.upstream.envSecret || c.type !== 'bearer' ? 'ready' : 'unavailable');
    const shared = all.find((i) => i.id === a.sharedIdentity);
    if (!shared || shared.availability !== 'global' || shared.upstream !== a.upstream.id) return result('unavailable', 'the shared identity is missing: an admin must choose one');
    if (shared.disabled) return result('disabled', 'the shared identity is disabled by an admin');
    if (!deps.identities.readable(shared)) return result('unavailable', UNREADABLE);
    return result('ready');
  }
  if (a.storage === 'client') return result('client_credentials', 'your Keygate client keeps these credentials and sends them with each call');
  // The gateway's own rule (identityFor), from the same records: the state is what the next call does.
  const selectedId = await deps.selections.get(sub, a.gateway, a.name);
  const selected = selectedId === undefined ? undefined : all.find((i) => i.id === selectedId);
  const identity = await identityFor(sub, a.upstream.id, selected, () => choices.filter((i) => i.owner === sub));
  const needs = c.type === 'oauth' ? 'needs_authorization' : 'needs_credentials';
  if (!identity) return result(needs, c.type === 'oauth' ? `connect your ${a.upstream.name} account` : `fill in your ${a.upstream.name} credentials`);
  if (identity.disabled) return result('disabled', DISABLED(identity, sub), identity);
  // What the gateway will do: refuse the call (identity_unreadable), so not "ready".
  if (!deps.identities.readable(identity)) return result('unavailable', UNREADABLE, identity);
  // (An OAuth identity past its expiry is still ready: the next call renews it with its refresh token.)
  return result('ready', undefined, identity);
}
