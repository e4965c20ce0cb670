import { signIn } from '../../extension/auth/sign-in.ts';
import { ALICE } from './fixture.ts';
import { authHarness } from '../unit/extension-fakes.ts';

// Run by test/integration/extension-registry-schemes.test.ts in a process of
// its own, so the environment (NODE_EXTRA_CA_CERTS: which certificates this
// process trusts) is the test's to set: the extension's sign-in against the
// registry at argv[2], then the gateways it offers. Prints one JSON line;
// never a token.

const registry = process.argv[2]!;
const h = authHarness(registry, ALICE);
try {
  const session = await signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log });
  const claims = JSON.parse(Buffer.from(session.accessToken.split('.')[1]!, 'base64url').toString('utf8')) as { iss: string; aud: unknown };
  const gateways = await h.registryClient.gateways(session.accessToken);
  console.log(JSON.stringify({ ok: true, account: session.account.label, iss: claims.iss, aud: claims.aud, gateways: gateways.map((g) => ({ id: g.id, mcpUrl: g.mcpUrl })) }));
} catch (err) {
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  console.log(JSON.stringify({ ok: false, error: e.name, code: e.code, message: e.message, cause: e.cause?.code ?? e.cause?.message }));
}
