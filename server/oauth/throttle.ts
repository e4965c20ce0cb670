// Login throttling: failed sign-ins are counted per (username, address), per
// address and per username, over a sliding window. The same rules apply to
// usernames that do not exist, so the answer never tells them apart.
// Counters live in this process (a registry behind a load balancer counts per
// instance).

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

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly rules: ThrottleRules = DEFAULT_THROTTLE,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  private keys(username: string, address: string): [string, ThrottleRule][] {
    const user = username.toLowerCase();
    return [
      [`ua\n${user}\n${address}`, this.rules.perUserAndAddress],
      [`a\n${address}`, this.rules.perAddress],
      [`u\n${user}`, this.rules.perUser],
    ];
  }

  private recent(key: string, rule: ThrottleRule): number[] {
    const since = this.now() - rule.windowSeconds;
    const list = (this.failures.get(key) ?? []).filter((t) => t > since);
    if (list.length) this.failures.set(key, list);
    else this.failures.delete(key);
    return list;
  }

  /** Seconds to wait before another attempt, or 0 when one is allowed now. */
  retryAfter(username: string, address: string): number {
    let wait = 0;
    for (const [key, rule] of this.keys(username, address)) {
      const list = this.recent(key, rule);
      if (list.length >= rule.max) wait = Math.max(wait, Math.ceil(list[list.length - rule.max]! + rule.windowSeconds - this.now()));
    }
    return wait;
  }

  fail(username: string, address: string): void {
    if (this.failures.size > MAX_KEYS) this.failures.clear(); // bounded memory under a flood
    const t = this.now();
    for (const [key] of this.keys(username, address)) this.failures.set(key, [...(this.failures.get(key) ?? []), t]);
  }

  /** A successful sign-in clears that user's count from that address. */
  succeed(username: string, address: string): void {
    this.failures.delete(this.keys(username, address)[0]![0]);
  }
}
