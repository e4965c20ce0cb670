import { z } from 'zod';
import { Collection, type Store } from '../store/index.ts';
import type { BuiltinUsers } from './users.ts';

// Who can sign in: builtin users come from the configuration; users signed in
// through a federated identity provider are remembered in the store (so a
// refresh can check they still exist and are still allowed in).

export interface Account {
  /** The `sub` of the registry's tokens. */
  sub: string;
  username: string;
  name?: string | undefined;
  email?: string | undefined;
  scopes: string[];
  groups: string[];
  /** Builtin users' configured roles; a federated person's from the IdP's roles claim (federated.claims.roles_claim). */
  roles?: string[] | undefined;
  provider: string;
  disabled: boolean;
}

export const accountSchema = z.object({
  sub: z.string(),
  username: z.string(),
  name: z.string().optional(),
  email: z.string().optional(),
  scopes: z.array(z.string()),
  groups: z.array(z.string()),
  roles: z.array(z.string()).optional(),
  provider: z.string(),
  disabled: z.boolean(),
  /** Epoch seconds of the last sign-in. */
  last_login: z.number(),
});

export class Accounts {
  readonly records: Collection<typeof accountSchema, 'accounts'>;

  constructor(
    private readonly builtin: BuiltinUsers,
    store: Store,
  ) {
    this.records = new Collection(store, 'accounts', accountSchema);
  }

  /** The account behind a `sub`, or undefined when it is gone. Builtin users are matched by username. */
  async find(sub: string): Promise<Account | undefined> {
    const user = this.builtin.get(sub);
    if (user) {
      const overlay = await this.records.find(sub);
      return { sub, username: user.username, name: user.name, email: user.email, scopes: user.scopes, groups: user.groups, roles: user.roles, provider: 'builtin', disabled: overlay?.disabled ?? false };
    }
    const stored = await this.records.find(sub);
    return stored && { sub: stored.sub, username: stored.username, name: stored.name, email: stored.email, scopes: stored.scopes, groups: stored.groups, roles: stored.roles, provider: stored.provider, disabled: stored.disabled };
  }

  /** Remember an account signed in elsewhere (federated), keeping an admin's `disabled`. */
  async remember(account: Omit<Account, 'disabled'>): Promise<Account> {
    const now = Math.floor(Date.now() / 1000);
    const saved = await this.records.update(account.sub, (current) => ({ ...account, disabled: current?.disabled ?? false, last_login: now }));
    return { ...account, disabled: saved!.disabled };
  }
}
