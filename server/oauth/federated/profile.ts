import * as oauth from 'oauth4webapi';
import { z } from 'zod';
import { requestOptions } from '../../net/authorization-server.ts';
import { readClaim, stringList } from '../../inbound/claims.ts';
import type { FetchLike } from '../../net/outbound.ts';
import type { Preset } from './presets.ts';
import type { Redeemed } from './upstream.ts';

// Who signed in at the upstream IdP: from the validated ID token (plus
// UserInfo when the token leaves out email or name, as OIDC Core §5.4 allows),
// or from the user API of a plain OAuth 2 provider (GitHub's /user and
// /user/emails, Atlassian's /me). An email counts only when the IdP says it is
// verified.

export interface UpstreamUser {
  /** The IdP's stable id for the person (OIDC sub, GitHub numeric id, Atlassian account_id). */
  sub: string;
  username: string;
  name: string | undefined;
  /** Only a verified address; undefined otherwise. */
  email: string | undefined;
  /** An address the IdP gave but did not vouch for (shown in messages, never trusted). */
  unverifiedEmail: string | undefined;
  groups: string[];
  roles: string[];
}

/** Where the groups and roles are in the IdP's claims (oauth_server.federated.claims). */
export interface ClaimNames {
  groups_claim: string;
  roles_claim?: string | undefined;
}

/** A failure reading the person from the IdP: what went wrong, in words for the error page. */
export class ProfileError extends Error {
  readonly code = 'ERR_FEDERATED_PROFILE';
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length ? v : undefined);

// Documents from another server: lenient (unknown keys ignored), but typed.
const githubUser = z.looseObject({ id: z.number(), login: z.string(), name: z.string().nullish(), email: z.string().nullish() });
const githubEmails = z.array(z.looseObject({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));
const atlassianMe = z.looseObject({ account_id: z.string(), email: z.string().optional(), name: z.string().optional(), nickname: z.string().optional(), email_verified: z.boolean().optional() });

function fromClaims(claims: Record<string, unknown>, names: ClaimNames): UpstreamUser {
  const sub = str(claims.sub);
  if (!sub) throw new ProfileError('the identity provider named no subject (sub)');
  const email = str(claims.email);
  // OIDC Core §5.1: email_verified true means the IdP took steps to verify it; anything else is not verified.
  const verified = claims.email_verified === true;
  return {
    sub,
    username: str(claims.preferred_username) ?? (verified ? email : undefined) ?? sub,
    name: str(claims.name),
    email: verified ? email : undefined,
    unverifiedEmail: verified ? undefined : email,
    groups: stringList(readClaim(claims, names.groups_claim)),
    roles: names.roles_claim === undefined ? [] : stringList(readClaim(claims, names.roles_claim)),
  };
}

// GitHub's REST API wants its media type, a version and a User-Agent.
const GITHUB_HEADERS = { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' };

async function getJson(fetch: FetchLike, url: string, accessToken: string, what: string, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(url, { headers: { accept: 'application/json', 'user-agent': 'keygate', ...headers, authorization: `Bearer ${accessToken}` } });
  if (res.status !== 200) throw new ProfileError(`${what} answered HTTP ${res.status}`);
  return res.json().catch(() => {
    throw new ProfileError(`${what} did not answer JSON`);
  });
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ProfileError(`${what} answered an unexpected document (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? ''})`);
  return parsed.data;
}

export async function readProfile(preset: Preset, redeemed: Redeemed, fetch: FetchLike, names: ClaimNames = { groups_claim: 'groups' }): Promise<UpstreamUser> {
  switch (preset.profile) {
    case 'id_token': {
      const claims: Record<string, unknown> = { ...redeemed.idToken };
      const { as } = redeemed;
      if ((claims.email === undefined || claims.name === undefined) && as.userinfo_endpoint) {
        // OIDC Core §5.3.2: the UserInfo sub must be the ID token's.
        try {
          const response = await oauth.userInfoRequest(as, { client_id: 'keygate' }, redeemed.accessToken, requestOptions(fetch, as.userinfo_endpoint));
          const info = await oauth.processUserInfoResponse(as, { client_id: 'keygate' }, String(claims.sub), response);
          for (const [k, v] of Object.entries(info)) if (claims[k] === undefined) claims[k] = v;
        } catch (err) {
          throw new ProfileError(`the identity provider's UserInfo endpoint could not be used: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      return fromClaims(claims, names);
    }
    case 'github': {
      const user = parse(githubUser, await getJson(fetch, `${preset.userApi}/user`, redeemed.accessToken, 'GitHub\'s /user API', GITHUB_HEADERS), 'GitHub\'s /user API');
      // The primary address, if GitHub has verified it (needs the user:email scope).
      const emails = parse(githubEmails, await getJson(fetch, `${preset.userApi}/user/emails`, redeemed.accessToken, 'GitHub\'s /user/emails API', GITHUB_HEADERS), 'GitHub\'s /user/emails API');
      const primary = emails.find((e) => e.primary);
      return {
        sub: String(user.id),
        username: user.login,
        name: user.name ?? undefined,
        email: primary?.verified ? primary.email : undefined,
        unverifiedEmail: primary && !primary.verified ? primary.email : undefined,
        groups: [],
        roles: [],
      };
    }
    case 'atlassian': {
      const me = parse(atlassianMe, await getJson(fetch, preset.userApi!, redeemed.accessToken, 'Atlassian\'s /me API'), 'Atlassian\'s /me API');
      // Atlassian's /me does not always say; an Atlassian account cannot be used before its address is confirmed.
      const verified = me.email_verified !== false;
      return {
        sub: me.account_id,
        username: me.nickname ?? me.email ?? me.account_id,
        name: me.name,
        email: verified ? me.email : undefined,
        unverifiedEmail: verified ? undefined : me.email,
        groups: [],
        roles: [],
      };
    }
  }
}
