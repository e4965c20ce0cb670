import { type ApiAnswer, enc, readInput, UsageError } from './api.ts';
import { type Column, details, table } from './output.ts';

// What `keygate-registry admin` can do: one table of resources and their
// actions, each a thin wrapper over one admin API route (docs/admin-api.md).

export interface Context {
  call(method: string, path: string, body?: unknown): Promise<ApiAnswer>;
  /** The positionals after the action, already checked against `args`. */
  args: string[];
  options: Record<string, string | boolean | undefined>;
  json: boolean;
  out(text: string): void;
  stdin(): string;
}

export interface Action {
  /** Positional names, shown in the usage (`ID`, `GATEWAY NAME`). */
  args: string[];
  summary: string;
  /** Options this action takes besides --registry, --json and --help. */
  options?: string[];
  run(ctx: Context): Promise<void>;
}

export interface Resource {
  summary: string;
  actions: Record<string, Action>;
}

/** Options that filter a list: each becomes a query parameter of the same name. */
export const FILTERS = ['upstream', 'owner', 'user', 'gateway', 'source', 'since', 'until', 'outcome', 'limit', 'kind', 'action', 'target'] as const;

type Row = Record<string, unknown>;

function query(ctx: Context, names: readonly string[]): string {
  const q = new URLSearchParams();
  for (const n of names) if (typeof ctx.options[n] === 'string') q.set(n, ctx.options[n] as string);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function one(ctx: Context, body: unknown): void {
  ctx.out(ctx.json ? `${JSON.stringify(body, null, 2)}\n` : details(body as Row));
}

const reasonBody = (ctx: Context) => (typeof ctx.options.reason === 'string' ? { reason: ctx.options.reason } : {});

// The actions most resources share, over `/admin/{path}`.
const crud = {
  list: (path: string, key: string, columns: Column[], filters: string[] = [], row: (r: Row) => Row = (r) => r): Action => ({
    args: [],
    summary: `list the ${key}`,
    options: filters,
    async run(ctx) {
      const { body } = await ctx.call('GET', `${path}${query(ctx, filters)}`);
      ctx.out(ctx.json ? `${JSON.stringify(body, null, 2)}\n` : table(((body as Record<string, Row[]>)[key] ?? []).map(row), columns));
    },
  }),
  get: (path: string, what: string, id = 'ID'): Action => ({
    args: [id],
    summary: `show one ${what}`,
    async run(ctx) {
      one(ctx, (await ctx.call('GET', `${path}/${enc(ctx.args[0]!)}`)).body);
    },
  }),
  create: (path: string, what: string, after?: (ctx: Context, body: Row) => void): Action => ({
    args: [],
    summary: `create ${what}; the body comes from --file (YAML or JSON; - for stdin)`,
    options: ['file'],
    async run(ctx) {
      const { body } = await ctx.call('POST', path, await readInput(ctx.options.file as string | undefined, ctx.stdin));
      one(ctx, body);
      after?.(ctx, body as Row);
    },
  }),
  update: (path: string, what: string, method: 'PUT' | 'PATCH' = 'PUT'): Action => ({
    args: ['ID'],
    summary: method === 'PUT' ? `replace ${what} with --file (the whole entry, as for create)` : `change the fields of ${what} given in --file`,
    options: ['file'],
    async run(ctx) {
      one(ctx, (await ctx.call(method, `${path}/${enc(ctx.args[0]!)}`, await readInput(ctx.options.file as string | undefined, ctx.stdin))).body);
    },
  }),
  remove: (path: string, what: string): Action => ({
    args: ['ID'],
    summary: `delete ${what}`,
    async run(ctx) {
      await ctx.call('DELETE', `${path}/${enc(ctx.args[0]!)}`);
      if (!ctx.json) ctx.out(`deleted ${what} "${ctx.args[0]}"\n`);
    },
  }),
  flip: (path: string, action: 'disable' | 'enable', summary: string, id = 'ID'): Action => ({
    args: [id],
    summary,
    options: action === 'disable' ? ['reason'] : [],
    async run(ctx) {
      one(ctx, (await ctx.call('POST', `${path}/${enc(ctx.args[0]!)}/${action}`, reasonBody(ctx))).body);
    },
  }),
};

const disable = (path: string, what: string, id?: string) => crud.flip(path, 'disable', `break-glass: disable ${what} from the next request (--reason TEXT)`, id);
const enable = (path: string, what: string, id?: string) => crud.flip(path, 'enable', `enable ${what} again`, id);

/** A gateway as the API shows it, turned back into a body PUT takes. */
function gatewayBody(view: Row): Row {
  const { mcp_url: _m, source: _s, disabled: _d, created_at: _c, updated_at: _u, switch: _w, ...body } = view;
  return { ...body, servers: (body.servers as Row[]).map(({ mcp_url: _url, ...server }) => server) };
}

function printSecret(ctx: Context, body: Row): void {
  if (!ctx.json && typeof body.client_secret === 'string') ctx.out(`\nclient_secret is shown this once; only its hash is kept. Store it now.\n`);
}

const assignmentColumns: Column[] = ['name', 'upstream', 'identity', 'shared_identity', 'storage', 'mcp_url'];

const AUDIT_FILTERS = ['kind', 'since', 'until', 'user', 'gateway', 'outcome', 'action', 'target'];
const mcpColumns: Column[] = ['time', 'subject', 'gateway', 'server', 'method', 'name', 'outcome', 'status', ['latency_ms', 'ms']];
const adminColumns: Column[] = ['time', 'subject', 'via', 'action', 'target', 'outcome', 'status'];
const isChange = (e: Row) => e.kind === 'admin';
const targetOf = (e: Row) => {
  const t = e.target as { type: string; id?: string };
  return t.id === undefined ? t.type : `${t.type}:${t.id}`;
};

/** MCP requests and admin changes each in their own columns; both kinds in one list as what happened, in a line each. */
function auditTable(entries: Row[]): string {
  if (!entries.some(isChange)) return table(entries, mcpColumns);
  if (entries.every(isChange)) return table(entries.map((e) => ({ ...e, target: targetOf(e) })), adminColumns);
  const what = (e: Row) => (isChange(e) ? [e.action, targetOf(e), `via ${e.via}`] : [e.method ?? e.http_method, e.name, `on ${e.gateway}/${e.server ?? '-'}`]).filter(Boolean).join(' ');
  return table(entries.map((e) => ({ ...e, kind: e.kind ?? 'mcp', what: what(e) })), ['time', 'subject', 'kind', 'what', 'outcome', 'status']);
}

export const RESOURCES: Record<string, Resource> = {
  upstreams: {
    summary: 'the MCP servers Keygate forwards to',
    actions: {
      list: crud.list('/admin/upstreams', 'upstreams', ['id', 'name', 'url', ['credential.type', 'credential'], 'source', 'disabled']),
      get: crud.get('/admin/upstreams', 'upstream'),
      create: crud.create('/admin/upstreams', 'an upstream'),
      update: crud.update('/admin/upstreams', 'an upstream'),
      delete: crud.remove('/admin/upstreams', 'upstream'),
      disable: disable('/admin/upstreams', 'an upstream'),
      enable: enable('/admin/upstreams', 'an upstream'),
    },
  },
  gateways: {
    summary: 'named sets of upstream assignments (one MCP endpoint each)',
    actions: {
      list: crud.list('/admin/gateways', 'gateways', ['id', 'name', 'visibility', 'servers', 'source', 'disabled'], [], (g) => ({ ...g, servers: (g.servers as Row[]).map((s) => s.name) })),
      get: crud.get('/admin/gateways', 'gateway'),
      create: crud.create('/admin/gateways', 'a gateway'),
      update: crud.update('/admin/gateways', 'a gateway'),
      delete: crud.remove('/admin/gateways', 'gateway'),
      disable: disable('/admin/gateways', 'a gateway'),
      enable: enable('/admin/gateways', 'a gateway'),
      assignments: {
        args: ['GATEWAY'],
        summary: "list a gateway's assignments (its servers, with scheme and MCP URL)",
        async run(ctx) {
          const { body } = await ctx.call('GET', `/admin/gateways/${enc(ctx.args[0]!)}`);
          const servers = (body as Row).servers as Row[];
          ctx.out(ctx.json ? `${JSON.stringify(servers, null, 2)}\n` : table(servers, assignmentColumns));
        },
      },
      assign: {
        args: ['GATEWAY'],
        summary: 'add an assignment from --file ({upstream, name, identity, shared_identity, storage, tools}) to a gateway',
        options: ['file'],
        async run(ctx) {
          const server = await readInput(ctx.options.file as string | undefined, ctx.stdin);
          const path = `/admin/gateways/${enc(ctx.args[0]!)}`;
          const body = gatewayBody((await ctx.call('GET', path)).body as Row);
          const { body: updated } = await ctx.call('PUT', path, { ...body, servers: [...(body.servers as Row[]), server] });
          const servers = (updated as Row).servers as Row[];
          ctx.out(ctx.json ? `${JSON.stringify(updated, null, 2)}\n` : table(servers, assignmentColumns));
        },
      },
      unassign: {
        args: ['GATEWAY', 'NAME'],
        summary: 'remove the assignment NAME (its path segment) from a gateway',
        async run(ctx) {
          const [gateway, name] = ctx.args as [string, string];
          const path = `/admin/gateways/${enc(gateway)}`;
          const body = gatewayBody((await ctx.call('GET', path)).body as Row);
          const servers = body.servers as Row[];
          if (!servers.some((s) => s.name === name)) throw new UsageError(`gateway "${gateway}" has no assignment named "${name}" (it has: ${servers.map((s) => s.name).join(', ')})`);
          const { body: updated } = await ctx.call('PUT', path, { ...body, servers: servers.filter((s) => s.name !== name) });
          ctx.out(ctx.json ? `${JSON.stringify(updated, null, 2)}\n` : table((updated as Row).servers as Row[], assignmentColumns));
        },
      },
    },
  },
  identities: {
    summary: "credentials for an upstream: service accounts, and people's identities (metadata only)",
    actions: {
      list: crud.list('/admin/identities', 'identities', ['id', 'upstream', 'owner', 'availability', 'kind', 'label', 'disabled'], ['upstream', 'owner']),
      get: crud.get('/admin/identities', 'identity'),
      create: crud.create('/admin/identities', 'a service account (global identity)'),
      update: crud.update('/admin/identities', "a service account's credential or label"),
      delete: crud.remove('/admin/identities', 'identity'),
      disable: disable('/admin/identities', 'an identity'),
      enable: enable('/admin/identities', 'an identity'),
    },
  },
  users: {
    summary: "the registry's accounts (builtin and federated)",
    actions: {
      list: crud.list('/admin/users', 'users', ['sub', 'username', 'email', 'provider', 'scopes', 'disabled', 'last_login']),
      get: crud.get('/admin/users', 'user', 'SUB'),
      deactivate: disable('/admin/users', 'a user (offboarding: tokens, refresh and browser sessions end)', 'SUB'),
      reactivate: enable('/admin/users', 'a deactivated user', 'SUB'),
    },
  },
  clients: {
    summary: "OAuth clients of the registry's authorization server",
    actions: {
      list: crud.list('/admin/clients', 'clients', ['client_id', 'name', 'source', 'type', 'grant_types', 'scopes', 'resource_server', 'disabled'], ['source']),
      get: crud.get('/admin/clients', 'client'),
      create: crud.create('/admin/clients', 'a client (a confidential one gets its secret, shown once; resource_server: true lets it introspect tokens; token_exchange: {resources, users} lets it act for users)', printSecret),
      update: crud.update('/admin/clients', 'a client (name, redirect_uris, grant_types, scopes, resource_server, token_exchange, disabled)', 'PATCH'),
      secret: {
        args: ['ID'],
        summary: 'make a new secret for a confidential client (the old one stops working; shown once)',
        async run(ctx) {
          const { body } = await ctx.call('POST', `/admin/clients/${enc(ctx.args[0]!)}/secret`, {});
          one(ctx, body);
          printSecret(ctx, body as Row);
        },
      },
      delete: crud.remove('/admin/clients', 'client'),
      disable: disable('/admin/clients', 'a client (its tokens and refresh stop)'),
      enable: enable('/admin/clients', 'a client'),
    },
  },
  connections: {
    summary: "one person's use of one gateway from one client",
    actions: {
      list: crud.list('/admin/connections', 'connections', ['id', 'subject', 'gateway', 'client_id', 'last_seen', 'disabled'], ['user', 'gateway']),
      get: crud.get('/admin/connections', 'connection'),
      disable: disable('/admin/connections', 'a connection'),
      enable: enable('/admin/connections', 'a connection'),
    },
  },
  audit: {
    summary: 'the record of MCP requests and admin changes',
    actions: {
      list: {
        args: [],
        summary: 'the newest entries that match (--kind, --since, --until, --user, --gateway, --outcome, --action, --target, --limit)',
        options: [...AUDIT_FILTERS, 'limit'],
        async run(ctx) {
          const { body } = await ctx.call('GET', `/audit${query(ctx, [...AUDIT_FILTERS, 'limit'])}`);
          if (ctx.json) return ctx.out(`${JSON.stringify(body, null, 2)}\n`);
          const { entries, has_more: more } = body as { entries: Row[]; has_more?: boolean };
          ctx.out(auditTable(entries));
          if (more) ctx.out('(more entries match: narrow with --since/--until or raise --limit)\n');
        },
      },
      export: {
        args: [],
        summary: 'every matching entry, oldest first, as JSON Lines on standard output',
        options: AUDIT_FILTERS,
        async run(ctx) {
          const q = query(ctx, AUDIT_FILTERS);
          ctx.out((await ctx.call('GET', `/audit${q ? `${q}&` : '?'}format=jsonl`)).text);
        },
      },
    },
  },
};
