import { timingSafeEqual } from 'node:crypto';
import { type Request, type Response, Router } from 'express';
import * as oauth from 'oauth4webapi';
import { AccessDeniedError } from '../../http/errors.ts';
import { sendErrorPage } from '../../http/html.ts';
import { describeRemoteFailure } from '../../inbound/remote-errors.ts';
import type { Logger } from '../../log.ts';
import { type FetchLike, OutboundError } from '../../net/outbound.ts';
import type { Accounts } from '../accounts.ts';
import type { AuthorizationFlow } from '../flow.ts';
import type { Interaction } from '../interaction.ts';
import type { FederatedPolicy } from './policy.ts';
import { type ClaimNames, ProfileError, readProfile } from './profile.ts';
import type { Redeemed, UpstreamIdp, UpstreamRequest } from './upstream.ts';

// GET /oauth/callback: the upstream IdP sends the browser back here. Steps in
// the order they run: find the interaction the state names; check the state
// (constant time) and use it once; the same browser; the IdP's answer (an
// error, RFC 9207 iss, the code exchange, the ID token); who signed in; the
// domain policy; then the registry's own flow continues (consent, code).
//
// What a failure does: a refusal by or of the person (they cancelled at the
// IdP, their domain is not allowed, their account is deactivated) goes back to
// the client as access_denied, so it stops waiting; anything that is not
// theirs to fix (an answer that cannot be trusted or used) is an error page
// that says so, and the details go to the log.

export interface CallbackDeps {
  flow: AuthorizationFlow;
  upstream: UpstreamIdp;
  policy: FederatedPolicy;
  accounts: Accounts;
  fetch: FetchLike;
  log: Logger;
  /** Where the IdP's claims carry groups and roles (oauth_server.federated.claims). */
  claims: ClaimNames;
}

const START_AGAIN = 'Start again from your application.';

function sameState(expected: string, presented: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Find the interaction the state names and take its upstream request, once. */
async function takeUpstreamRequest(flow: AuthorizationFlow, state: string): Promise<{ interaction: Interaction; request: UpstreamRequest } | undefined> {
  const id = state.split('.', 1)[0]!;
  let taken: { interaction: Interaction; request: UpstreamRequest } | undefined;
  if (!(await flow.deps.interactions.find(id))) return undefined;
  await flow.deps.interactions.records.update(id, (current) => {
    if (!current?.federated || !sameState(current.federated.state, state)) return current;
    taken = { interaction: current, request: current.federated };
    return { ...current, federated: undefined };
  });
  return taken;
}

/** The IdP could not be reached: refused by the outbound guard, a connection error, a timeout. */
function isNetworkFailure(err: unknown): err is Error {
  if (err instanceof OutboundError) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return err instanceof Error && ((typeof code === 'string' && /^E[A-Z]+$/.test(code)) || err.name === 'AbortError' || err.name === 'TimeoutError');
}

export function callbackRouter(deps: CallbackDeps): Router {
  const { flow, upstream, policy, log } = deps;
  const router = Router();
  const provider = upstream.preset.provider;

  router.get('/callback', async (req: Request, res: Response) => {
    const params = new URLSearchParams(req.url.slice(req.url.indexOf('?') + 1 || req.url.length));
    res.set('Cache-Control', 'no-store');

    // 1-2. RFC 6749 §10.12: the state binds this answer to a sign-in in progress, once.
    const states = params.getAll('state');
    const taken = states.length === 1 ? await takeUpstreamRequest(flow, states[0]!) : undefined;
    if (!taken) {
      log.warn('federated callback refused: its state does not match a sign-in in progress');
      return sendErrorPage(res, 400, 'This sign-in cannot be completed', `The identity provider's answer does not match a sign-in in progress here (missing, unknown, expired or already used state). ${START_AGAIN}`);
    }
    const { interaction, request } = taken;
    const client = await flow.deps.clients.find(interaction.client_id);
    if (!client) return sendErrorPage(res, 400, 'This sign-in cannot be completed', `The application that started it is no longer registered. ${START_AGAIN}`);

    // 3. The browser that started the sign-in (its binding cookie; the CSRF token is not in play here).
    if (flow.deps.interactions.checkForm(req, interaction, interaction.csrf) === 'browser') {
      return sendErrorPage(res, 403, 'This sign-in cannot be completed', `It was started in another browser. ${START_AGAIN}`);
    }

    // 4. The IdP's answer.
    let redeemed: Redeemed;
    try {
      redeemed = await upstream.redeem(params, request);
    } catch (err) {
      return answerFailure(err);
    }

    // 5. Who signed in.
    let person;
    try {
      person = await readProfile(upstream.preset, redeemed, deps.fetch, deps.claims);
    } catch (err) {
      if (!(err instanceof ProfileError)) throw err;
      log.warn('federated sign-in at %s: %s', provider, err.message);
      return sendErrorPage(res, 502, 'Your account could not be read', `Keygate could not read who you are from the identity provider: ${err.message}. ${START_AGAIN}`);
    }

    // 6. allowed_domains: a verified address of an allowed domain.
    const refusal = policy.refusal(person);
    if (refusal) {
      log.info('federated sign-in at %s refused: %s', provider, refusal);
      return flow.fail(res, interaction, new AccessDeniedError(refusal));
    }

    // 7. The registry's account (default and admin scopes), unless an admin deactivated it.
    const account = await deps.accounts.remember(policy.account(person));
    if (account.disabled) {
      log.info('federated sign-in at %s refused: account %s is deactivated', provider, account.sub);
      return flow.fail(res, interaction, new AccessDeniedError('this account is deactivated here'));
    }
    await flow.signedIn(req, res, interaction, client, account);

    function answerFailure(err: unknown): void | Promise<void> {
      if (err instanceof oauth.AuthorizationResponseError) {
        // RFC 6749 §4.1.2.1: the person (or the IdP's policy for them) refused: tell the client.
        if (['access_denied', 'login_required', 'consent_required', 'interaction_required', 'account_selection_required'].includes(err.error)) {
          log.info('federated sign-in at %s: the identity provider answered %s', provider, err.error);
          return flow.fail(res, interaction, new AccessDeniedError(`the identity provider refused the sign-in${err.error_description ? `: ${err.error_description}` : ` (${err.error})`}`));
        }
        log.warn('federated sign-in at %s: the identity provider answered %s %s', provider, err.error, err.error_description ?? '');
        return sendErrorPage(res, 502, 'The identity provider refused the sign-in', `It answered "${err.error}"${err.error_description ? `: ${err.error_description}` : ''}. This is a setup problem: tell your administrator.`);
      }
      // The token endpoint refused the code or the registry's credentials (GitHub says so in a 200 body).
      const body = err instanceof oauth.OperationProcessingError ? (err.cause as { body?: { error?: unknown; error_description?: unknown } } | undefined)?.body : undefined;
      if (err instanceof oauth.ResponseBodyError || err instanceof oauth.WWWAuthenticateChallengeError || typeof body?.error === 'string') {
        const what = typeof body?.error === 'string' ? `${body.error}${typeof body.error_description === 'string' ? ` (${body.error_description})` : ''}` : describeRemoteFailure(err);
        log.warn('federated sign-in at %s: the token endpoint refused the code: %s', provider, what);
        return sendErrorPage(res, 502, 'The identity provider did not accept the sign-in', `Exchanging the sign-in code failed: ${what}. ${START_AGAIN}`);
      }
      if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) {
        // state, iss (RFC 9207 mix-up), ID token (signature, iss, aud, exp, nonce...), a malformed response.
        log.warn('federated sign-in at %s: the answer could not be verified: %s', provider, err.message);
        return sendErrorPage(res, 502, 'The identity provider\'s answer could not be verified', `${err.message}. Nothing was signed in. ${START_AGAIN}`);
      }
      if (isNetworkFailure(err)) {
        log.warn('federated sign-in at %s: the identity provider cannot be reached: %s', provider, err.message);
        return sendErrorPage(res, 502, 'The identity provider cannot be reached', `Keygate could not finish the sign-in with ${new URL(upstream.preset.issuer).host}. Try again shortly.`);
      }
      throw err;
    }
  });
  return router;
}
