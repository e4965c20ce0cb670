// Time, behind an interface so the retry and polling logic runs on a fake
// clock in the tests: a Scheduler, an exponential Backoff, and a Timer that
// holds at most one pending run.

export interface Scheduler {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (run, ms) => {
    const handle = setTimeout(run, ms);
    // A pending retry must not keep the extension host (or a test) alive.
    (handle as { unref?: () => void }).unref?.();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface BackoffOptions {
  initialMs: number;
  factor: number;
  maxMs: number;
}

/** Registry down: 1 s, 2 s, 4 s, 8 s, then every 15 s, so its return shows within seconds too. */
export const UNREACHABLE_BACKOFF: BackoffOptions = { initialMs: 1_000, factor: 2, maxMs: 15_000 };
/** Signed in and the registry answering: GET /healthz this often, so an outage shows within seconds even while idle. */
export const HEALTH_INTERVAL_MS = 10_000;
/**
 * Every this many health checks (a minute), the person's servers are read
 * again too: what others change (a colleague's identity turned private, an
 * admin's switch, a new assignment) reaches the sidebar, and through
 * onDidChangeIdentities the MCP servers, without any action of the person.
 */
export const SERVERS_EVERY_CHECKS = 6;
/** Waiting for a browser connect to finish: 2 s, 3 s, 4.5 s … then every 30 s. */
export const CONNECT_POLL_BACKOFF: BackoffOptions = { initialMs: 2_000, factor: 1.5, maxMs: 30_000 };
/** A connect nobody finished is no longer watched after this long (focus still refreshes). */
export const CONNECT_WATCH_MS = 10 * 60_000;

export class Backoff {
  private attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** The delay before the next attempt; each call waits longer, up to the maximum. */
  next(): number {
    const delay = Math.min(this.options.maxMs, this.options.initialMs * this.options.factor ** this.attempt);
    this.attempt++;
    return Math.round(delay);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/** One pending run at a time: scheduling again replaces it. */
export class Timer {
  private handle: unknown;
  private due: number | undefined;

  constructor(private readonly scheduler: Scheduler) {}

  schedule(ms: number, run: () => void): number {
    this.cancel();
    this.due = this.scheduler.now() + ms;
    this.handle = this.scheduler.setTimeout(() => {
      this.handle = undefined;
      this.due = undefined;
      run();
    }, ms);
    return this.due;
  }

  cancel(): void {
    if (this.handle !== undefined) this.scheduler.clearTimeout(this.handle);
    this.handle = undefined;
    this.due = undefined;
  }

  /** When the pending run is due (epoch ms), or undefined. */
  get dueAt(): number | undefined {
    return this.due;
  }
}
