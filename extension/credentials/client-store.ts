import * as z from 'zod/mini';
import type { Event } from '../events.ts';
import type { Keychain } from '../auth/keychain.ts';
import type { Logger } from '../log.ts';

// Credential values the person keeps in the editor (`storage: client`
// servers, docs/identities.md): they never reach the registry's store. They
// live in SecretStorage, one entry per registry, as
//   {"<gateway>/<server>": {"<field>": "<value>"}}
// and travel with each MCP request to that gateway in one header,
//   X-Keygate-Credentials: base64url(JSON {"<server>": {"<field>": "<value>"}})
// which the gateway reads and drops before it forwards. Windows share the
// storage; the change event tells each of them.

export const CLIENT_CREDENTIALS_HEADER = 'X-Keygate-Credentials';

const KEY_PREFIX = 'client-credentials:';
const storedSchema = z.record(z.string(), z.record(z.string(), z.string()));
export type StoredClientCredentials = z.infer<typeof storedSchema>;

const slot = (gateway: string, server: string) => `${gateway}/${server}`;

/** The header value for one gateway's client-held servers, or undefined when it has none. */
export function encodeClientCredentials(stored: StoredClientCredentials, gateway: string): string | undefined {
  const forGateway: Record<string, Record<string, string>> = {};
  for (const [key, values] of Object.entries(stored)) {
    const at = key.indexOf('/');
    if (at < 0 || key.slice(0, at) !== gateway) continue;
    forGateway[key.slice(at + 1)] = values;
  }
  if (Object.keys(forGateway).length === 0) return undefined;
  return Buffer.from(JSON.stringify(forGateway), 'utf8').toString('base64url');
}

export class ClientCredentialStore {
  /** The registry whose client-held credentials changed (here or in another window). */
  readonly onDidChange: Event<string>;

  constructor(
    private readonly keychain: Keychain,
    private readonly log: Logger,
  ) {
    this.onDidChange = keychain.under(KEY_PREFIX);
  }

  async all(registry: string): Promise<StoredClientCredentials> {
    const stored = (await this.keychain.get(KEY_PREFIX + registry, storedSchema)) ?? {};
    for (const values of Object.values(stored)) for (const v of Object.values(values)) this.log.addSecret(v);
    return stored;
  }

  async get(registry: string, gateway: string, server: string): Promise<Record<string, string> | undefined> {
    return (await this.all(registry))[slot(gateway, server)];
  }

  /** Store the values for one server: typed values replace, fields left out keep what was stored. */
  async merge(registry: string, gateway: string, server: string, values: Record<string, string>): Promise<void> {
    for (const v of Object.values(values)) this.log.addSecret(v);
    const stored = await this.all(registry);
    stored[slot(gateway, server)] = { ...stored[slot(gateway, server)], ...values };
    await this.keychain.set(KEY_PREFIX + registry, stored);
  }

  async remove(registry: string, gateway: string, server: string): Promise<void> {
    const stored = await this.all(registry);
    if (!(slot(gateway, server) in stored)) return;
    delete stored[slot(gateway, server)];
    if (Object.keys(stored).length) await this.keychain.set(KEY_PREFIX + registry, stored);
    else await this.keychain.delete(KEY_PREFIX + registry);
  }

  /** The X-Keygate-Credentials value for a gateway, or undefined. */
  async header(registry: string, gateway: string): Promise<string | undefined> {
    return encodeClientCredentials(await this.all(registry), gateway);
  }
}
