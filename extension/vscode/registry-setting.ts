import * as vscode from 'vscode';
import { Emitter, type Event } from '../events.ts';
import type { Logger } from '../log.ts';
import { REGISTRY_SETTING } from '../contributions.ts';
import { DEFAULT_REGISTRY_URL, parseRegistryUrl } from '../registry-url.ts';

// VS Code adapter: the keygate.registryUrl setting, read once per change and
// kept in canonical form. An invalid value leaves the extension without a
// registry (signed out, no gateways) and says why, rather than guessing.

const { section: SECTION, key: KEY } = REGISTRY_SETTING;

export interface RegistryChange {
  previous: string | undefined;
  current: string | undefined;
}

export class RegistrySetting implements vscode.Disposable {
  private value: string | undefined;
  private readonly changed = new Emitter<RegistryChange>();
  readonly onDidChange: Event<RegistryChange> = this.changed.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly log: Logger) {
    this.value = this.read();
    this.subscription = vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(`${SECTION}.${KEY}`)) return;
      const previous = this.value;
      this.value = this.read();
      if (previous !== this.value) {
        this.log.info(`registry changed from ${previous ?? '(none)'} to ${this.value ?? '(none)'}`);
        this.changed.fire({ previous, current: this.value });
      }
    });
  }

  /** The canonical registry URL, or undefined while the setting is invalid. */
  get current(): string | undefined {
    return this.value;
  }

  /** The setting as written, for showing it back to the user. */
  get raw(): string {
    return vscode.workspace.getConfiguration(SECTION).get<string>(KEY) ?? DEFAULT_REGISTRY_URL;
  }

  async update(registry: string): Promise<void> {
    await vscode.workspace.getConfiguration(SECTION).update(KEY, registry, vscode.ConfigurationTarget.Global);
  }

  private read(): string | undefined {
    const raw = this.raw;
    try {
      return parseRegistryUrl(raw);
    } catch (err) {
      this.log.error(`keygate.registryUrl is not usable`, err);
      void vscode.window.showErrorMessage(`Keygate: the setting keygate.registryUrl ("${raw}") is not an http(s) URL. Run "Keygate: Select Registry" to fix it.`);
      return undefined;
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
