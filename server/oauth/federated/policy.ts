import type { FederatedConfig } from '../../config/sections/federated.ts';
import type { Store } from '../../store/index.ts';
import { type Account, Accounts } from '../accounts.ts';
import type { BuiltinUsers } from '../users.ts';
import type { Preset } from './presets.ts';
import type { UpstreamUser } from './profile.ts';

// Who may sign in through the upstream IdP, and with which registry scopes:
// `allowed_domains` (a verified email in one of them), `default_scopes` for
// everyone, `admin_scopes` for `admin_users`. Applied at sign-in, and again
// whenever the account is looked up (a refresh), so a change of policy takes
// effect without waiting for the person to sign in again.

export class FederatedPolicy {
  private readonly admins: Set<string>;

  constructor(
    private readonly config: FederatedConfig,
    readonly preset: Preset,
  ) {
    this.admins = new Set(config.admin_users.map((u) => u.toLowerCase()));
  }

  /** Why this person may not sign in, or undefined. Only a verified email counts. */
  refusal(person: { email?: string | undefined; unverifiedEmail?: string | undefined }): string | undefined {
    const domains = this.config.allowed_domains;
    if (!domains.length) return undefined;
    const list = domains.join(', ');
    if (!person.email) {
      return person.unverifiedEmail
        ? `sign-in here needs a verified email address of ${list}; the identity provider has not verified this account's address`
        : `sign-in here needs a verified email address of ${list}; the identity provider named none`;
    }
    const domain = person.email.slice(person.email.lastIndexOf('@') + 1).toLowerCase();
    if (!domains.includes(domain)) return `sign-in here is limited to accounts of ${list}`;
    return undefined;
  }

  /**
   * default_scopes, plus admin_scopes for an admin: listed by verified email,
   * or by username where the IdP controls usernames (GitHub logins, Keycloak
   * usernames); elsewhere a username is a claim the person may choose.
   */
  scopes(person: { email?: string | undefined; username: string }): string[] {
    const admin = (person.email !== undefined && this.admins.has(person.email.toLowerCase())) || (this.preset.usernameIsAuthoritative && this.admins.has(person.username.toLowerCase()));
    return [...new Set([...this.config.default_scopes, ...(admin ? this.config.admin_scopes : [])])];
  }

  /** The registry's account for a person of the IdP. */
  account(person: UpstreamUser): Omit<Account, 'disabled'> {
    return {
      sub: `${this.preset.provider}:${person.sub}`,
      username: person.username,
      name: person.name,
      email: person.email,
      scopes: this.scopes({ email: person.email, username: person.username }),
      groups: person.groups,
      roles: person.roles,
      provider: this.preset.provider,
    };
  }
}

/** Accounts whose federated members are held to the current policy each time they are looked up (sign-in, consent, refresh). */
export class FederatedAccounts extends Accounts {
  constructor(
    builtin: BuiltinUsers,
    store: Store,
    private readonly policy: FederatedPolicy,
  ) {
    super(builtin, store);
  }

  override async find(sub: string): Promise<Account | undefined> {
    const account = await super.find(sub);
    if (!account) return undefined;
    // An account of another provider (or of builtin mode, before the switch) has no way in any more.
    if (account.provider !== this.policy.preset.provider) return { ...account, disabled: true };
    return {
      ...account,
      // Stored emails are verified ones: a domain no longer allowed disables the account.
      disabled: account.disabled || this.policy.refusal({ email: account.email }) !== undefined,
      scopes: this.policy.scopes(account),
    };
  }
}
