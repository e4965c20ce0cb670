import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { classifyAddress } from '../net/outbound.ts';
import { Collection, type Store } from '../store/index.ts';

// Throttling over sliding windows: in this process's memory (one instance),
// or in the store when instances share it (storage.type postgres), so
// attempts spread over several instances add up to the same limits.
//
// Login: failed sign-ins are counted per (username, address), per address and
// per username. The same rules apply to usernames that do not exist, so the
// answer never tells them apart.
// Registration (RFC 7591): registrations are counted per address.

export interface ThrottleRule {
  max: number;
  windowSeconds: number;
}

export interface ThrottleRules {
  perUserAndAddress: ThrottleRule;
  perAddress: ThrottleRule;
  perUser: ThrottleRule;
}

export const DEFAULT_THROTTLE: ThrottleRules = {
  perUserAndAddress: { max: 5, windowSeconds: 900 },
  perAddress: { max: 30, windowSeconds: 900 },
  perUser: { max: 50, windowSeconds: 900 },
};

const MAX_KEYS = 100_000;

/** Where events are counted: this process (SlidingWindow) or the shared store (StoreWindow). */
export interface EventWindow {
  /** Seconds until one more event fits under the rule, or 0 when it does now. */
  retryAfter(key: string, rule: ThrottleRule): number | Promise<number>;
  record(key: string, rule: ThrottleRule): void | Promise<void>;
  forget(key: string): void | Promise<void>;
}

/** Seconds until one more event fits, given the events in the window (oldest first). */
function wait(recent: number[], rule: ThrottleRule, now: number): number {
  return recent.length >= rule.max ? Math.max(1, Math.ceil(recent[recent.length - rule.max]! + rule.windowSeconds - now)) : 0;
}

/** When events happened, per key, for as long as a rule looks back. */
export class SlidingWindow implements EventWindow {
  private readonly events = new Map<string, number[]>();

  constructor(private readonly now: () => number = () => Date.now() / 1000) {}

  private recent(key: string, rule: ThrottleRule): number[] {
    const since = this.now() - rule.windowSeconds;
    const list = (this.events.get(key) ?? []).filter((t) => t > since);
    if (list.length) this.events.set(key, list);
    else this.events.delete(key);
    return list;
  }

  /** Seconds until one more event fits under the rule, or 0 when it does now. */
  retryAfter(key: string, rule: ThrottleRule): number {
    return wait(this.recent(key, rule), rule, this.now());
  }

  record(key: string): void {
    if (this.events.size > MAX_KEYS) this.events.clear(); // bounded memory under a flood
    this.events.set(key, [...(this.events.get(key) ?? []), this.now()]);
  }

  forget(key: string): void {
    this.events.delete(key);
  }
}

const eventsSchema = z.object({ events: z.array(z.number()) });

/**
 * A sliding window in the store, for instances that share it: one record per
 * key (its id a hash of the key, so no username or address is stored), holding
 * the latest events (at most the rule's max, all that the answer needs) and
 * expiring when the newest leaves the window. Recording is one atomic update.
 */
export class StoreWindow implements EventWindow {
  private readonly records: Collection<typeof eventsSchema, 'throttles'>;

  constructor(
    store: Store,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {
    this.records = new Collection(store, 'throttles', eventsSchema);
  }

  private id(key: string): string {
    return createHash('sha256').update(key).digest('base64url');
  }

  async retryAfter(key: string, rule: ThrottleRule): Promise<number> {
    const now = this.now();
    const events = (await this.records.find(this.id(key)))?.events.filter((t) => t > now - rule.windowSeconds) ?? [];
    return wait(events, rule, now);
  }

  async record(key: string, rule: ThrottleRule): Promise<void> {
    const now = this.now();
    await this.records.update(
      this.id(key),
      (current) => ({ events: [...(current?.events.filter((t) => t > now - rule.windowSeconds) ?? []), now].slice(-rule.max) }),
      Math.ceil(now + rule.windowSeconds),
    );
  }

  async forget(key: string): Promise<void> {
    await this.records.destroy(this.id(key));
  }
}

export class LoginThrottle {
  private readonly failures: EventWindow;

  constructor(
    private readonly rules: ThrottleRules = DEFAULT_THROTTLE,
    now?: () => number,
    /** Where failures are counted (default: this process). */
    window?: EventWindow,
  ) {
    this.failures = window ?? new SlidingWindow(now);
  }

  private keys(username: string, address: string): [string, ThrottleRule][] {
    const user = username.toLowerCase();
    return [
      [`ua\n${user}\n${address}`, this.rules.perUserAndAddress],
      [`a\n${address}`, this.rules.perAddress],
      [`u\n${user}`, this.rules.perUser],
    ];
  }

  /** Seconds to wait before another attempt, or 0 when one is allowed now. */
  async retryAfter(username: string, address: string): Promise<number> {
    return Math.max(...(await Promise.all(this.keys(username, address).map(([key, rule]) => this.failures.retryAfter(key, rule)))));
  }

  async fail(username: string, address: string): Promise<void> {
    await Promise.all(this.keys(username, address).map(([key, rule]) => this.failures.record(key, rule)));
  }

  /** A successful sign-in clears that user's count from that address. */
  async succeed(username: string, address: string): Promise<void> {
    await this.failures.forget(this.keys(username, address)[0]![0]);
  }
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is; any other as is. */
const unmapped = (address: string) => /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;

/** 127.0.0.0/8, ::1, or an IPv4-mapped loopback address: a caller on this machine (or a proxy on it). */
export function isLoopback(address: string | undefined): boolean {
  const ip = address && unmapped(address);
  return !!ip && isIP(ip) !== 0 && classifyAddress(ip) === 'loopback';
}

/**
 * The key a per-address limit counts under: an IPv4 address (IPv4-mapped IPv6
 * included) as is; an IPv6 address by its /64, the block one subscriber gets
 * (RFC 6177), so rotating through it is no escape.
 */
export function addressKey(raw: string | undefined): string {
  if (!raw) return 'unknown';
  const address = unmapped(raw);
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
