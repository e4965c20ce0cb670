import { isIP } from 'node:net';
import { classifyAddress } from '../net/outbound.ts';

// Throttling in this process's memory (a registry behind a load balancer
// counts per instance), over sliding windows.
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

/** When events happened, per key, for as long as a rule looks back. */
export class SlidingWindow {
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
    const list = this.recent(key, rule);
    return list.length >= rule.max ? Math.max(1, Math.ceil(list[list.length - rule.max]! + rule.windowSeconds - this.now())) : 0;
  }

  record(key: string): void {
    if (this.events.size > MAX_KEYS) this.events.clear(); // bounded memory under a flood
    this.events.set(key, [...(this.events.get(key) ?? []), this.now()]);
  }

  forget(key: string): void {
    this.events.delete(key);
  }
}

export class LoginThrottle {
  private readonly failures: SlidingWindow;

  constructor(
    private readonly rules: ThrottleRules = DEFAULT_THROTTLE,
    now?: () => number,
  ) {
    this.failures = new SlidingWindow(now);
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
  retryAfter(username: string, address: string): number {
    return Math.max(...this.keys(username, address).map(([key, rule]) => this.failures.retryAfter(key, rule)));
  }

  fail(username: string, address: string): void {
    for (const [key] of this.keys(username, address)) this.failures.record(key);
  }

  /** A successful sign-in clears that user's count from that address. */
  succeed(username: string, address: string): void {
    this.failures.forget(this.keys(username, address)[0]![0]);
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
