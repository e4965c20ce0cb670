// The few pieces of VS Code's event model the logic needs, without importing
// 'vscode': an Event is something you subscribe to and get a Disposable back.
// `vscode.Event<T>` and `vscode.Disposable` are structurally compatible with
// these, so the adapters pass them straight through.

export interface Disposable {
  dispose(): unknown;
}

export type Event<T> = (listener: (e: T) => unknown) => Disposable;

export class Emitter<T> implements Disposable {
  private listeners = new Set<(e: T) => unknown>();

  readonly event: Event<T> = (listener) => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };

  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      // One listener's failure must not keep the others from hearing the event.
      try {
        const result = listener(value);
        if (result instanceof Promise) result.catch(reportListenerError);
      } catch (err) {
        reportListenerError(err);
      }
    }
  }

  dispose(): void {
    this.listeners.clear();
  }
}

function reportListenerError(err: unknown): void {
  // The extension host's own log; listeners log their expected failures themselves.
  console.error('Keygate: an event listener failed:', err instanceof Error ? err.message : err);
}
