import { matchesPrincipal, namesAnyone, type PrincipalMatch } from './principal-match.ts';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { type CredentialConfig, gateway as gatewaySchema, type GatewayInput, upstream as upstreamSchema, type UpstreamInput, upstreamEnvKey } from '../config/sections/upstreams.ts';
import type { Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import { UpstreamConnections } from '../net/upstream-connections.ts';
import { Collection, type Store } from '../store/index.ts';
import { compilePolicies, type PolicyRule } from './tool-policy.ts';
import { DEFAULT_SCOPE_POLICY, type ScopePolicy } from './scopes.ts';

// The gateways, their assignments and the upstreams they reach, as the
// request path needs them: from the configuration file and from the admin API
// (the store), with the break-glass switches applied. A snapshot is rebuilt
// whenever one of those records changes; requests read the current snapshot.

export interface Upstream {
  id: string;
  name: string;
  description: string | undefined;
  url: URL;
  credential: CredentialConfig;
  /** The upstream's own env-backed credential value, for shared assignments without a shared_identity. */
  envSecret: string | undefined;
  timeoutMs: number;
  /** Its pooled connections (one pool per origin, kept across catalog rebuilds). */
  connections: UpstreamConnections;
  disabled: boolean;
  source: 'config' | 'api';
}

export interface ToolFilter {
  allow: RegExp[] | undefined;
  deny: RegExp[];
}

export interface Assignment {
  gateway: string;
  /** The path segment: /mcp/{gateway}/{name}. */
  name: string;
  /** What /mcp/{gateway} puts before its tool and prompt names (`<prefix>__<name>`); "" for none. */
  prefix: string;
  upstream: Upstream;
  identity: 'shared' | 'per_user';
  sharedIdentity: string | undefined;
  storage: 'registry' | 'client';
  tools: ToolFilter | undefined;
  /** Allow/deny rules by caller (tool-policy.ts); undefined when the assignment has none. */
  policies: PolicyRule[] | undefined;
}

/** Who may use a private gateway: anyone matching one key (principal-match.ts); naming nobody, anyone signed in. */
export type Members = PrincipalMatch;

export interface Gateway {
  id: string;
  name: string;
  description: string | undefined;
  visibility: 'public' | 'private';
  members: Members | undefined;
  /** Which scope each MCP method needs of a caller's token. */
  scopes: ScopePolicy;
  servers: Map<string, Assignment>;
  disabled: boolean;
  source: 'config' | 'api';
}

/** A break-glass switch: `gateway:team`, `upstream:linear`, `connection:...`. */
export const switchSchema = z.object({ disabled: z.boolean(), by: z.string().optional(), at: z.number(), reason: z.string().optional() });
const storedUpstream = upstreamSchema.extend({ created_at: z.number().optional(), updated_at: z.number().optional() });
const storedGateway = gatewaySchema.extend({ created_at: z.number().optional(), updated_at: z.number().optional() });

/** Glob (`*` any run, `?` one character) → an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Does an assignment expose this upstream tool? */
export function toolAllowed(filter: ToolFilter | undefined, tool: string): boolean {
  if (!filter) return true;
  if (filter.deny.some((r) => r.test(tool))) return false;
  return filter.allow === undefined || filter.allow.some((r) => r.test(tool));
}

/** May this caller use the gateway? Public: anyone. Private: signed in, and matching a membership rule if there are any. */
export function mayUse(gateway: Gateway, principal: Principal | undefined): boolean {
  if (gateway.visibility === 'public') return true;
  if (!principal) return false;
  return !namesAnyone(gateway.members) || matchesPrincipal(gateway.members!, principal, 'any_key');
}

export class Catalog {
  constructor(
    readonly upstreams: Map<string, Upstream>,
    readonly gateways: Map<string, Gateway>,
  ) {}

  has(gateway: string, server?: string): boolean {
    const gw = this.gateways.get(gateway);
    return gw !== undefined && (server === undefined || gw.servers.has(server));
  }
}

// The pooled connections to each upstream. A Node upstream (20 and later)
// accepts one new connection per turn of its event loop: under load a turn
// serves every busy connection first, so a burst of new connections waits in
// its accept queue for seconds (docs/performance.md, "Sign-in under load").
// Hence a pool that does not shrink while it is used: every idle connection
// is kept (up to the most there may be), and used in turn (FIFO, so none goes
// idle while calls flow), rather than closing all but 64 after a burst and
// opening them again at the next one. An idle connection is closed after
// UPSTREAM_IDLE_MS (or 1 s before the Keep-Alive timeout the upstream
// announces, if shorter), before the common 5 s of servers that close idle
// connections: a call is never written to a connection the upstream is
// closing (an SSE answer announces no timeout, which left such a connection
// open until the upstream closed it, and a call sent on it then was reset).
const UPSTREAM_SOCKETS = 256;
const UPSTREAM_IDLE_MS = 4000;

/**
 * Keeps the current catalog: built at start from the configuration and the
 * store, rebuilt when an upstream, gateway or switch record changes. Pools of
 * connections survive rebuilds as long as the upstream's origin does.
 */
export class CatalogHolder {
  private snapshot: Catalog = new Catalog(new Map(), new Map());
  private readonly pools = new Map<string, UpstreamConnections>();
  readonly upstreamRecords: Collection<typeof storedUpstream, 'upstreams'>;
  readonly gatewayRecords: Collection<typeof storedGateway, 'gateways'>;
  readonly switches: Collection<typeof switchSchema, 'switches'>;
  private reloading: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: Config,
    store: Store,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {
    this.upstreamRecords = new Collection(store, 'upstreams', storedUpstream);
    this.gatewayRecords = new Collection(store, 'gateways', storedGateway);
    this.switches = new Collection(store, 'switches', switchSchema);
    for (const records of [this.upstreamRecords, this.gatewayRecords, this.switches]) records.onChange(() => void this.reload());
    // Changes may have been missed (Store.onReset): rebuild.
    this.switches.onReset(() => void this.reload());
  }

  get current(): Catalog {
    return this.snapshot;
  }

  /** Rebuild now (also what the admin API awaits, so its change is in effect when it answers). */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.build()).catch((err: unknown) => this.log.error('catalog reload failed: %s', (err as Error).message));
    return this.reloading;
  }

  /** Every reload asked for so far is done (the snapshot reflects every change reported until now). */
  settled(): Promise<void> {
    return this.reloading;
  }

  private connectionsTo(url: URL): UpstreamConnections {
    const key = url.origin;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new UpstreamConnections(new URL(key), { max: UPSTREAM_SOCKETS, idleMs: UPSTREAM_IDLE_MS });
      this.pools.set(key, pool);
    }
    return pool;
  }

  private async build(): Promise<void> {
    const switches = new Map((await this.switches.all()).map(([id, s]) => [id, s.disabled]));
    const upstreamInputs: [UpstreamInput, 'config' | 'api'][] = [
      ...this.config.upstreams.map((u) => [u, 'config'] as [UpstreamInput, 'config']),
      ...(await this.upstreamRecords.all()).map(([, u]) => u).filter((u) => !this.config.upstreams.some((c) => c.id === u.id)).map((u) => [u, 'api'] as [UpstreamInput, 'api']),
    ];
    const upstreams = new Map<string, Upstream>();
    for (const [up, source] of upstreamInputs) {
      const envName = upstreamEnvKey(up.credential);
      const url = new URL(up.url);
      upstreams.set(up.id, {
        id: up.id,
        name: up.name ?? up.id,
        description: up.description,
        url,
        credential: up.credential,
        envSecret: envName === undefined ? undefined : this.env[envName],
        timeoutMs: up.timeout * 1000,
        connections: this.connectionsTo(url),
        disabled: switches.get(`upstream:${up.id}`) === true,
        source,
      });
    }
    const gatewayInputs: [GatewayInput, 'config' | 'api'][] = [
      ...this.config.gateways.map((g) => [g, 'config'] as [GatewayInput, 'config']),
      ...(await this.gatewayRecords.all()).map(([, g]) => g).filter((g) => !this.config.gateways.some((c) => c.id === g.id)).map((g) => [g, 'api'] as [GatewayInput, 'api']),
    ];
    const gateways = new Map<string, Gateway>();
    for (const [gw, source] of gatewayInputs) {
      const servers = new Map<string, Assignment>();
      for (const a of gw.servers) {
        const upstream = upstreams.get(a.upstream);
        if (!upstream) {
          this.log.warn('gateway %s assigns upstream %s, which does not exist: left out', gw.id, a.upstream);
          continue;
        }
        const name = a.name ?? a.upstream;
        servers.set(name, {
          gateway: gw.id,
          name,
          prefix: a.prefix ?? name,
          upstream,
          identity: a.identity,
          sharedIdentity: a.shared_identity,
          storage: a.storage,
          tools: a.tools && { allow: a.tools.allow?.map(globToRegExp), deny: a.tools.deny.map(globToRegExp) },
          policies: compilePolicies(a.policies),
        });
      }
      gateways.set(gw.id, {
        id: gw.id,
        name: gw.name ?? gw.id,
        description: gw.description,
        visibility: gw.visibility,
        members: gw.members && { users: gw.members.users, groups: gw.members.groups, emailDomains: gw.members.email_domains.map((d) => d.toLowerCase()), scopes: gw.members.scopes, roles: gw.members.roles },
        scopes: gw.scopes ?? DEFAULT_SCOPE_POLICY,
        servers,
        disabled: switches.get(`gateway:${gw.id}`) === true,
        source,
      });
    }
    this.snapshot = new Catalog(upstreams, gateways);
  }

  close(): void {
    for (const pool of this.pools.values()) pool.close();
  }
}
