import type { FieldView, GatewayView, IdentityView, ServerView } from '../../webview/protocol.ts';
import type { StoredClientCredentials } from '../credentials/client-store.ts';
import type { Identity, MyServer } from '../me-client.ts';

// GET /api/v1/me/servers → what the sidebar shows: gateways in the registry's
// order, each with its servers, each with its scheme, state, the form its
// credential needs (generated from the upstream's field definitions) and the
// actions that fit. Pure. No value of a secret field ever enters the view:
// a field only says whether it is set.

/** `<gateway>/<server>`: one server of one gateway. */
export const serverKey = (gateway: string, server: string) => `${gateway}/${server}`;

export interface ViewInputs {
  servers: readonly MyServer[];
  /** Client-held values (`storage: client` servers) from SecretStorage. */
  clientValues: StoredClientCredentials;
  /** Servers with a browser connect under way. */
  pending: ReadonlySet<string>;
}

export function buildGateways(inputs: ViewInputs): GatewayView[] {
  const gateways = new Map<string, { id: string; name: string; servers: ServerView[] }>();
  for (const s of inputs.servers) {
    let gw = gateways.get(s.gateway.id);
    if (!gw) gateways.set(s.gateway.id, (gw = { id: s.gateway.id, name: s.gateway.name || s.gateway.id, servers: [] }));
    gw.servers.push(buildServer(s, inputs.clientValues[serverKey(s.gateway.id, s.server)], inputs.pending.has(serverKey(s.gateway.id, s.server))));
  }
  return [...gateways.values()];
}

/** The form a per-user credential takes: its fields, a token, or a header value. */
export function formFields(s: MyServer, clientValues: Record<string, string> | undefined): FieldView[] {
  const own = s.identity?.owner === 'you' ? s.identity : undefined;
  switch (s.credential.type) {
    case 'fields':
      return s.credential.fields.map((f) => {
        const set = s.storage === 'client' ? clientValues?.[f.name] !== undefined : (own?.fieldsSet.includes(f.name) ?? false);
        const shown = f.secret ? undefined : s.storage === 'client' ? clientValues?.[f.name] : own?.publicValues[f.name];
        return {
          name: f.name,
          label: f.label || f.name,
          ...(f.description && { description: f.description }),
          ...(f.placeholder && { placeholder: f.placeholder }),
          secret: f.secret,
          required: f.required,
          set,
          ...(shown !== undefined && { value: shown }),
        };
      });
    case 'bearer':
      return [{ name: 'token', label: 'Token', description: `Your ${s.upstream.name} token, sent as a Bearer credential.`, secret: true, required: true, set: own?.kind === 'bearer' }];
    case 'header':
      return [{ name: 'value', label: 'Header value', description: `Your ${s.upstream.name} credential.`, secret: true, required: true, set: own?.kind === 'header' }];
    default:
      return [];
  }
}

function inputOf(s: MyServer): ServerView['input'] {
  if (s.scheme !== 'per_user') return 'none';
  if (s.credential.type === 'oauth') return 'oauth';
  if (['fields', 'bearer', 'header'].includes(s.credential.type)) return 'fields';
  return 'none';
}

function stateOf(s: MyServer, fields: readonly FieldView[]): { state: ServerView['state']; reason: string | undefined } {
  switch (s.state) {
    case 'ready':
    case 'needs_credentials':
    case 'needs_authorization':
    case 'disabled':
      return { state: s.state, reason: s.reason };
    case 'unavailable':
      return { state: 'unavailable', reason: s.reason ?? 'the upstream cannot be reached with the credential it has' };
    case 'client_credentials': {
      // The registry does not hold these: this editor does. Ready once every required field is stored here.
      const missing = fields.filter((f) => f.required && !f.set);
      return missing.length
        ? { state: 'needs_credentials', reason: `fill in ${missing.map((f) => f.label).join(', ')}; kept in this editor's secret storage` }
        : { state: 'ready', reason: "kept in this editor's secret storage and sent with each call" };
    }
    default:
      return { state: 'unavailable', reason: `the registry reports "${s.state}"${s.reason ? `: ${s.reason}` : ''}` };
  }
}

function identityView(i: Identity): IdentityView {
  // One's own identity without a label is just "yours" (the webview says so); others' are named by their kind.
  return { id: i.id, label: i.label || (i.owner === 'you' ? '' : `${i.kind} identity`), availability: i.availability, owner: i.owner, disabled: i.disabled };
}

export function buildServer(s: MyServer, clientValues: Record<string, string> | undefined, pending: boolean): ServerView {
  const fields = formFields(s, clientValues);
  const input = inputOf(s);
  const { state, reason } = stateOf(s, fields);
  const identity = s.storage === 'registry' && s.identity ? identityView(s.identity) : undefined;
  const choices = s.storage === 'registry' ? s.choices.filter((c) => !c.disabled).map(identityView) : [];
  const own = identity?.owner === 'you';

  const actions: ServerView['actions'][number][] = [];
  if (s.scheme === 'per_user' && state !== 'disabled') {
    if (input === 'oauth') actions.push(own ? 'reconnect' : 'connect');
    if (input === 'fields') actions.push('edit');
  }
  if (s.scheme === 'per_user') {
    const stored = s.storage === 'client' ? clientValues !== undefined && Object.keys(clientValues).length > 0 : identity !== undefined;
    if (stored) actions.push('disconnect');
    // Another identity to switch to: more than one choice, or one that is not in use.
    if (choices.some((c) => c.id !== identity?.id)) actions.push('choose');
    if (own && identity) actions.push(identity.availability === 'private' ? 'make_global' : 'make_private');
  }

  return {
    gateway: s.gateway.id,
    server: s.server,
    upstreamName: s.upstream.name || s.upstream.id,
    ...(s.upstream.description && { description: s.upstream.description }),
    scheme: s.scheme,
    storage: s.storage,
    input,
    state,
    ...(reason && { reason }),
    fields,
    ...(identity && { identity }),
    choices,
    actions,
    pending,
  };
}

/** A digest of who serves what: when it changes, MCP clients must pick up new tools and credentials. */
export function identityDigest(servers: readonly MyServer[], clientValues: StoredClientCredentials): string {
  return servers
    .map((s) => `${s.gateway.id}/${s.server}:${s.state}:${s.identity?.id ?? ''}:${s.storage === 'client' ? Object.keys(clientValues[serverKey(s.gateway.id, s.server)] ?? {}).sort().join(',') : ''}`)
    .sort()
    .join('|');
}
