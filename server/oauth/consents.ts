import { z } from 'zod';
import { Collection, type Store } from '../store/index.ts';
import { epoch } from './grants.ts';
import { ResourceSpace } from './resource.ts';

// What a person has allowed a client: remembered so the consent page is shown
// again only when the client asks for more.

const consentSchema = z.object({ scopes: z.array(z.string()), resources: z.array(z.string()), granted_at: z.number() });

export class Consents {
  private readonly records: Collection<typeof consentSchema>;

  constructor(store: Store) {
    this.records = new Collection(store, 'consents', consentSchema);
  }

  private key(sub: string, clientId: string): string {
    return `${sub}\n${clientId}`;
  }

  async covers(sub: string, clientId: string, scopes: string[], resources: string[]): Promise<boolean> {
    const consent = await this.records.find(this.key(sub, clientId));
    if (!consent) return false;
    return scopes.every((s) => consent.scopes.includes(s)) && ResourceSpace.narrows(consent.resources, resources);
  }

  async remember(sub: string, clientId: string, scopes: string[], resources: string[]): Promise<void> {
    await this.records.update(this.key(sub, clientId), (current) => ({
      scopes: [...new Set([...(current?.scopes ?? []), ...scopes])],
      resources: [...new Set([...(current?.resources ?? []), ...resources])],
      granted_at: epoch(),
    }));
  }

}
