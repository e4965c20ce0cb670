import type { Logger } from '../log.ts';
import type { Collection } from '../store/index.ts';
import { type identitySchema, ORGANIZATION } from '../vault/identities.ts';
import type { Selections } from '../vault/selections.ts';
import type { Catalog, CatalogHolder } from '../catalog/catalog.ts';
import type { CallerState } from './merged-caller.ts';

// When what a person may use through a gateway changes at the registry, the
// sessions they hold open are told, as an MCP server tells of its own list
// changes (MCP: `notifications/tools/list_changed`, and the prompts and
// resources ones, which `/mcp/{gateway}` declares): on the standalone stream
// of each 2025 session, and on each 2026-07-28 `subscriptions/listen` stream
// that asked for them. A client that listed a server's placeholder tool
// before its person connected lists again and sees the server's tools.
//
// Changes are learnt from the store (Store.onChange), so a change made
// through any instance reaches the sessions this one holds. Who is told:
//
//   identity, own         its owner, on the gateways that assign its upstream
//   identity, global      everyone on the gateways that assign its upstream
//   selection             its person, on its gateway
//   gateway, its switch   everyone on it
//   upstream, its switch  everyone on the gateways that assign it
//   connection switch     that person, on that gateway
//
// A burst of changes (the connect page writes an identity, then selects it)
// is told once, after the catalog has taken the changes in.

/** Changes closer together than this are one burst, told once. */
const BURST_MS = 50;

/** Who a change concerns: callers on these gateways (every gateway when undefined), of this person (anyone when undefined). */
interface Affected {
  gateways: Set<string> | undefined;
  upstream: string | undefined;
  subject: string | undefined;
}

/** What of an identity decides whose lists it is in: a refreshed token or a new label changes none of it. */
interface IdentityShape {
  owner: string;
  upstream: string;
  availability: 'private' | 'global';
  disabled: boolean;
}

export interface ListChangeDeps {
  identities: Collection<typeof identitySchema, 'identities'>;
  selections: Selections;
  catalog: CatalogHolder;
  /** Tell the callers a change affects. */
  notify: (affects: (caller: CallerState) => boolean) => void;
  log: Logger;
}

export class ListChanges {
  private readonly shapes = new Map<string, IdentityShape>();
  private affected: Affected[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lookups: Promise<void> = Promise.resolve();
  private readonly unsubscribe: (() => void)[];

  constructor(private readonly deps: ListChangeDeps) {
    const { catalog } = deps;
    this.unsubscribe = [
      deps.identities.onChange((id) => {
        this.lookups = this.lookups.then(() => this.identityChanged(id)).catch((err: unknown) => deps.log.warn('list_changed: identity %s: %s', id, (err as Error).message));
      }),
      deps.selections.records.onChange((key) => {
        const [sub, gateway] = key.split('\n');
        if (sub && gateway) this.add({ gateways: new Set([gateway]), upstream: undefined, subject: sub });
      }),
      catalog.gatewayRecords.onChange((id) => this.add({ gateways: new Set([id]), upstream: undefined, subject: undefined })),
      catalog.upstreamRecords.onChange((id) => this.add(this.onUpstream(id, undefined))),
      catalog.switches.onChange((id) => {
        const [kind, rest = ''] = splitOnce(id, ':');
        if (kind === 'gateway') this.add({ gateways: new Set([rest]), upstream: undefined, subject: undefined });
        else if (kind === 'upstream') this.add(this.onUpstream(rest, undefined));
        else if (kind === 'connection') {
          const [sub, gateway] = rest.split('\n');
          if (sub && gateway) this.add({ gateways: new Set([gateway]), upstream: undefined, subject: sub });
        }
        // client: a disabled client is refused whole; its lists do not change.
      }),
      // Changes may have been missed (Store.onReset): learn every identity again and tell every session to list again.
      deps.identities.onReset(() => {
        this.lookups = this.lookups.then(() => this.load()).catch((err: unknown) => deps.log.warn('list_changed: reloading identities: %s', (err as Error).message));
        this.add({ gateways: undefined, upstream: undefined, subject: undefined });
      }),
    ];
  }

  /** What each identity looks like now, so that a later write is told only when it changes whose lists it is in. */
  async load(): Promise<void> {
    const identities = await this.deps.identities.all();
    this.shapes.clear();
    for (const [id, identity] of identities) this.shapes.set(id, shapeOf(identity));
  }

  private async identityChanged(id: string): Promise<void> {
    const found = await this.deps.identities.find(id);
    const now = found && shapeOf(found);
    const was = this.shapes.get(id);
    if (now) this.shapes.set(id, now);
    else this.shapes.delete(id);
    if (now && was && sameShape(now, was)) return;
    if (!now && !was) {
      // Gone before this instance knew what it was: anyone may have used it.
      this.add({ gateways: undefined, upstream: undefined, subject: undefined });
      return;
    }
    for (const shape of [was, now]) {
      if (!shape) continue;
      // A global identity is selectable by anyone (and may serve a shared assignment).
      const subject = shape.availability === 'global' || shape.owner === ORGANIZATION ? undefined : shape.owner;
      this.add(this.onUpstream(shape.upstream, subject));
    }
  }

  /** The gateways that assign an upstream, now (and again once the catalog has taken the change in). */
  private onUpstream(upstream: string, subject: string | undefined): Affected {
    return { gateways: assigning(this.deps.catalog.current, upstream), upstream, subject };
  }

  private add(affected: Affected): void {
    this.affected.push(affected);
    this.timer ??= setTimeout(() => void this.flush(), BURST_MS).unref();
  }

  private async flush(): Promise<void> {
    // Lookups still running belong to this burst; the catalog rebuild too: a client that lists again must see the change.
    await this.lookups;
    await this.deps.catalog.settled();
    this.timer = undefined;
    const burst = this.affected;
    this.affected = [];
    const current = this.deps.catalog.current;
    for (const a of burst) if (a.upstream !== undefined) for (const g of assigning(current, a.upstream)) a.gateways?.add(g);
    try {
      this.deps.notify((caller) => burst.some((a) => (a.gateways === undefined || a.gateways.has(caller.gatewayId)) && (a.subject === undefined || a.subject === caller.subject)));
    } catch (err) {
      this.deps.log.warn('list_changed: telling the sessions failed: %s', (err as Error).message);
    }
  }

  close(): void {
    clearTimeout(this.timer);
    for (const off of this.unsubscribe) off();
  }
}

function shapeOf(identity: IdentityShape): IdentityShape {
  return { owner: identity.owner, upstream: identity.upstream, availability: identity.availability, disabled: identity.disabled };
}

function sameShape(a: IdentityShape, b: IdentityShape): boolean {
  return a.owner === b.owner && a.upstream === b.upstream && a.availability === b.availability && a.disabled === b.disabled;
}

function assigning(catalog: Catalog, upstream: string): Set<string> {
  const gateways = new Set<string>();
  for (const gateway of catalog.gateways.values()) {
    for (const a of gateway.servers.values()) if (a.upstream.id === upstream) gateways.add(gateway.id);
  }
  return gateways;
}

function splitOnce(value: string, separator: string): [string, string | undefined] {
  const at = value.indexOf(separator);
  return at < 0 ? [value, undefined] : [value.slice(0, at), value.slice(at + separator.length)];
}
