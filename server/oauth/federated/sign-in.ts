import { sendErrorPage } from '../../http/html.ts';
import { describeRemoteFailure } from '../../inbound/remote-errors.ts';
import type { Logger } from '../../log.ts';
import type { AuthorizationFlow, SignInMethod } from '../flow.ts';
import { UpstreamIdp } from './upstream.ts';

/**
 * The federated SignInMethod: instead of the login form, the browser goes to
 * the upstream IdP with a fresh state (led by the interaction's id), nonce and
 * PKCE verifier, kept in the interaction's `federated` slot until
 * /oauth/callback.
 */
export function upstreamSignIn(flow: AuthorizationFlow, upstream: UpstreamIdp, log: Logger): SignInMethod {
  return {
    async start(_req, res, interaction) {
      const request = UpstreamIdp.newRequest(interaction.id, upstream.preset.protocol === 'oidc');
      let url: URL;
      try {
        url = await upstream.authorizationUrl(request, { forceLogin: interaction.prompt.includes('login') });
      } catch (err) {
        log.warn('the identity provider %s cannot be reached: %s', upstream.preset.issuer, describeRemoteFailure(err));
        return sendErrorPage(res, 502, 'The identity provider cannot be reached', `Keygate could not reach ${new URL(upstream.preset.issuer).host} to sign you in. Try again shortly; if it persists, tell your administrator.`);
      }
      const updated = await flow.deps.interactions.update(interaction.id, { federated: request });
      if (!updated) return sendErrorPage(res, 400, 'This sign-in has expired', 'Start again from your application.');
      res.set('Cache-Control', 'no-store').redirect(303, url.toString());
    },
  };
}
