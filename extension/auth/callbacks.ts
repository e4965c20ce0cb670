import { SignInCancelledError, SignInTimeoutError } from '../errors.ts';
import type { Logger } from '../log.ts';

// The redirect back from the registry reaches the extension through its one
// UriHandler (VS Code allows one per extension). Each sign-in waits here for
// the redirect carrying its own `state`; a redirect nobody is waiting for
// (a stale tab, a forged link) is dropped, never handed to another sign-in.

/** The path of the redirect URI: `${uriScheme}://keygate.keygate/auth-callback`. */
export const CALLBACK_PATH = '/auth-callback';

interface Waiter {
  resolve(params: URLSearchParams): void;
}

export class AuthCallbacks {
  private readonly waiting = new Map<string, Waiter>();

  constructor(private readonly log: Logger) {}

  /**
   * Wait for the redirect whose state is `state`. Rejects with
   * SignInTimeoutError after `timeoutMs`, SignInCancelledError on `signal`.
   * Register before sending the user away, so a fast redirect is not missed.
   */
  expect(state: string, options: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<URLSearchParams> {
    return new Promise<URLSearchParams>((resolve, reject) => {
      const { signal } = options;
      const finish = () => {
        this.waiting.delete(state);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        finish();
        reject(new SignInCancelledError('sign-in was cancelled'));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new SignInTimeoutError(`no answer from the browser within ${Math.round(options.timeoutMs / 1000)} seconds`));
      }, options.timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(state, {
        resolve: (params) => {
          finish();
          resolve(params);
        },
      });
    });
  }

  /** Hand a redirect's query to the sign-in that sent its state. Returns whether one was waiting. */
  deliver(params: URLSearchParams): boolean {
    const state = params.get('state');
    const waiter = state === null ? undefined : this.waiting.get(state);
    if (!waiter) {
      this.log.warn('ignored a sign-in redirect that no sign-in is waiting for (unknown or missing state)');
      return false;
    }
    waiter.resolve(params);
    return true;
  }

  /** A redirect as the UriHandler sees it: only our path counts. */
  handleUri(path: string, query: string): boolean {
    if (path !== CALLBACK_PATH) {
      this.log.warn(`ignored a link to ${path}: the extension only handles ${CALLBACK_PATH}`);
      return false;
    }
    return this.deliver(new URLSearchParams(query));
  }

  get pending(): number {
    return this.waiting.size;
  }
}
