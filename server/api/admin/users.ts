import { Router } from 'express';
import { NotFoundError } from '../../http/errors.ts';
import type { Account } from '../../oauth/accounts.ts';
import { ConflictError, parseInput } from '../http.ts';
import { type AdminDeps, flip, noStore, switchBody, switchView } from './deps.ts';
import type { Switch } from '../../catalog/access.ts';
import type { Principal } from '../../inbound/principal.ts';

// /api/v1/admin/users: the registry's accounts (builtin users from the
// configuration, and people who signed in through the federated identity
// provider). Deactivating one is offboarding: every grant they hold ends
// (their access tokens are refused as revoked from the next request on, on
// every instance; their refresh tokens are gone), and every browser session
// they have at the registry ends. Nothing they own is deleted, and the global
// identities they created keep serving everyone else. Enabling lets them
// sign in again in the browser.

function view(account: Account, lastLogin: number | undefined, s: Switch | undefined) {
  return {
    sub: account.sub,
    username: account.username,
    ...(account.name !== undefined && { name: account.name }),
    ...(account.email !== undefined && { email: account.email }),
    provider: account.provider,
    scopes: account.scopes,
    groups: account.groups,
    disabled: account.disabled,
    ...(lastLogin ? { last_login: lastLogin } : {}),
    ...(s && { switch: switchView(s) }),
  };
}

/** The user as `GET /admin/users/{sub}` answers it (the audit's before and after), or undefined. */
export async function describeUser(deps: AdminDeps, sub: string) {
  const account = await deps.accounts.find(sub);
  if (!account) return undefined;
  const record = await deps.accounts.records.find(sub);
  return view(account, record?.last_login, await deps.catalog.switches.find(`user:${sub}`));
}

/** Every account (builtin users, then people remembered from sign-in), as `GET /admin/users` lists them. */
export async function listUsers(deps: AdminDeps) {
  const builtin = deps.config.oauth_server.builtin.users.map((u) => u.username);
  const subs = [...new Set([...builtin, ...(await deps.accounts.records.all()).map(([sub]) => sub)])];
  const users = [];
  for (const sub of subs) {
    const user = await describeUser(deps, sub);
    if (user) users.push(user);
  }
  return users;
}

/**
 * Deactivate (offboard) or reactivate a person. Deactivating ends every grant
 * they hold and every browser session they have; nobody deactivates themself.
 */
export async function setUserDisabled(deps: AdminDeps, me: Principal, sub: string, disabled: boolean, reason: string | undefined) {
  const account = await deps.accounts.find(sub);
  if (!account) throw new NotFoundError(`there is no user "${sub}"`);
  if (disabled && me.provider === 'registry' && me.subject === account.sub) throw new ConflictError('you cannot deactivate your own account; ask another admin');
  // The flag lives on the account, which sign-in and the token endpoint read; builtin users get the record if they never signed in.
  await deps.accounts.records.update(account.sub, (current) => ({
    ...(current ?? { sub: account.sub, username: account.username, name: account.name, email: account.email, scopes: account.scopes, groups: account.groups, provider: account.provider, last_login: 0 }),
    disabled,
  }));
  await flip(deps, `user:${account.sub}`, disabled, me.subject, reason);
  // Offboarding ends every grant the person holds: their access tokens are refused from the next request on.
  if (disabled) await deps.grants.endUser(account.sub);
  // In effect for the request path before this answers.
  await deps.breakGlass.settled();
  const ended = disabled ? await deps.endBrowserSessions(account.sub) : 0;
  return { ...(await describeUser(deps, account.sub)), ...(disabled && { browser_sessions_ended: ended }) };
}

export function userRoutes(deps: AdminDeps): Router {
  const router = Router();

  async function find(sub: string): Promise<Account> {
    const account = await deps.accounts.find(sub);
    if (!account) throw new NotFoundError(`there is no user "${sub}"`);
    return account;
  }

  router.get('/users', async (_req, res) => {
    res.set(noStore).json({ users: await listUsers(deps) });
  });

  router.get('/users/:sub', async (req, res) => {
    await find(req.params.sub);
    res.set(noStore).json(await describeUser(deps, req.params.sub));
  });

  for (const action of ['disable', 'enable'] as const) {
    router.post(`/users/:sub/${action}`, async (req, res) => {
      await find(req.params.sub);
      const { reason } = parseInput(switchBody, req.body);
      res.set(noStore).json(await setUserDisabled(deps, req.principal!, req.params.sub, action === 'disable', reason));
    });
  }

  return router;
}
