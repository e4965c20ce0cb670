import type { z } from 'zod';
import type { Principal } from '../inbound/principal.ts';
import type { Accounts } from '../oauth/accounts.ts';
import type { Collection } from '../store/index.ts';
import type { Gateway, switchSchema } from './catalog.ts';
import { CODES, type GatewayFailure } from './failure.ts';

/**
 * Break-glass checks on the request path that depend on who is calling: a
 * deactivated user, a disabled connection (one user's use of one gateway from
 * one client). Synchronous over in-memory state kept current by store change
 * listeners, so a switch takes effect on the next request.
 */
export interface AccessChecks {
  check(principal: Principal | undefined, gateway: Gateway): GatewayFailure | undefined;
}

export const allowAll: AccessChecks = { check: () => undefined };

/** A connection: one user's use of one gateway from one client. Its store id (and switch id after `connection:`). */
export function connectionKey(sub: string, gateway: string, clientId: string | undefined): string {
  return `${sub}\n${gateway}\n${clientId ?? ''}`;
}

export function parseConnectionKey(key: string): { sub: string; gateway: string; clientId: string | undefined } | undefined {
  const parts = key.split('\n');
  if (parts.length !== 3 || !parts[0] || !parts[1]) return undefined;
  return { sub: parts[0], gateway: parts[1], clientId: parts[2] || undefined };
}

export interface BreakGlassDeps {
  accounts: Accounts;
  /** Builtin users come from the configuration; they have a store record only once signed in or switched. */
  builtinUsernames: readonly string[];
  switches: Collection<typeof switchSchema, 'switches'>;
}

/**
 * The switches that follow the caller: accounts (deactivated users) and
 * connections. Loaded at start, then refreshed record by record as the store
 * reports changes; `settled()` resolves once every reported change is applied
 * (the admin API waits for it, so its answer means "in effect").
 */
export class BreakGlass implements AccessChecks {
  private readonly disabledUsers = new Set<string>();
  private readonly disabledConnections = new Set<string>();
  private readonly disabledClients = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private readonly unsubscribe: (() => void)[];

  constructor(private readonly deps: BreakGlassDeps) {
    this.unsubscribe = [
      deps.accounts.records.onChange((sub) => this.enqueue(() => this.refreshUser(sub))),
      deps.switches.onChange((id) => {
        if (id.startsWith('connection:')) this.enqueue(() => this.refreshConnection(id));
        if (id.startsWith('client:')) this.enqueue(() => this.refreshClient(id));
      }),
      // Changes may have been missed (Store.onReset): everything again.
      deps.switches.onReset(() => this.enqueue(() => this.load())),
    ];
  }

  /** Everything from the store (at start, and again after a reset): switches enabled meanwhile are dropped. */
  async load(): Promise<void> {
    const subs = new Set([...this.deps.builtinUsernames, ...(await this.deps.accounts.records.all()).map(([id]) => id)]);
    for (const sub of subs) await this.refreshUser(sub);
    const switches = await this.deps.switches.all();
    this.disabledConnections.clear();
    this.disabledClients.clear();
    for (const [id, s] of switches) {
      if (id.startsWith('connection:') && s.disabled) this.disabledConnections.add(id.slice('connection:'.length));
      if (id.startsWith('client:') && s.disabled) this.disabledClients.add(id.slice('client:'.length));
    }
  }

  /** Every change reported so far is in effect. */
  settled(): Promise<void> {
    return this.queue;
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch(() => undefined);
  }

  private async refreshUser(sub: string): Promise<void> {
    const account = await this.deps.accounts.find(sub);
    if (account?.disabled) this.disabledUsers.add(sub);
    else this.disabledUsers.delete(sub);
  }

  private async refreshConnection(switchId: string): Promise<void> {
    const key = switchId.slice('connection:'.length);
    const s = await this.deps.switches.find(switchId);
    if (s?.disabled) this.disabledConnections.add(key);
    else this.disabledConnections.delete(key);
  }

  private async refreshClient(switchId: string): Promise<void> {
    const s = await this.deps.switches.find(switchId);
    if (s?.disabled) this.disabledClients.add(switchId.slice('client:'.length));
    else this.disabledClients.delete(switchId.slice('client:'.length));
  }

  /** A token the registry issued to a client an admin disabled (tokens of other issuers name other clients). */
  clientDisabled(principal: Principal | undefined): boolean {
    return principal?.clientId !== undefined && principal.provider === 'registry' && this.disabledClients.size > 0 && this.disabledClients.has(principal.clientId);
  }

  /** A deactivated user of the registry's own accounts (tokens of other issuers name other people). */
  userDisabled(principal: Principal | undefined): boolean {
    return principal !== undefined && principal.provider === 'registry' && this.disabledUsers.has(principal.subject);
  }

  connectionDisabled(principal: Principal | undefined, gateway: string): boolean {
    return principal !== undefined && this.disabledConnections.size > 0 && this.disabledConnections.has(connectionKey(principal.subject, gateway, principal.clientId));
  }

  check(principal: Principal | undefined, gateway: Gateway): GatewayFailure | undefined {
    if (this.userDisabled(principal)) {
      return { status: 403, code: CODES.forbidden, step: 'inbound', reason: 'user_disabled', message: 'your account is deactivated; ask an admin' };
    }
    if (this.clientDisabled(principal)) {
      return { status: 403, code: CODES.forbidden, step: 'inbound', reason: 'client_disabled', message: `the client "${principal!.clientId}" is disabled by an admin` };
    }
    if (this.connectionDisabled(principal, gateway.id)) {
      return { status: 403, code: CODES.forbidden, step: 'gateway', reason: 'connection_disabled', message: `this client's connection to gateway "${gateway.id}" is disabled by an admin` };
    }
    return undefined;
  }

  close(): void {
    for (const off of this.unsubscribe) off();
  }
}

export type Switch = z.infer<typeof switchSchema>;
