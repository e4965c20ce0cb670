import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A stand-in for GitHub (a public SaaS identity provider that cannot run
// here), speaking the shapes of GitHub's OAuth app flow and REST API, as a
// GitHub Enterprise Server would at its own URL:
//   GET  /login/oauth/authorize      (a sign-in page: login, password, Cancel)
//   POST /login/oauth/access_token   (JSON with Accept: application/json; errors
//                                     come as 200 {"error": ...}, as GitHub's do)
//   GET  /api/v3/user, /api/v3/user/emails   (Bearer token)
// It checks client_id, client_secret, redirect_uri and PKCE (S256) as GitHub does.

export interface GitHubUser {
  id: number;
  login: string;
  password: string;
  name: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
}

export interface GitHubStandIn {
  url: string;
  clientId: string;
  clientSecret: string;
  /** The callback URL registered for the OAuth app (set once the registry's URL is known). */
  callbackUrl: string;
  users: Map<string, GitHubUser>;
  /** Requests served, as "METHOD /path". */
  seen: string[];
  /** Make /api/v3/user answer this status instead (a GitHub outage). */
  userApiStatus: number | undefined;
  close(): Promise<void>;
}

const page = (title: string, body: string) => `<!doctype html><html><head><title>${title}</title></head><body>${body}</body></html>`;

function signInPage(query: URLSearchParams, error?: string): string {
  const hidden = [...query].map(([k, v]) => `<input type="hidden" name="${k}" value="${v.replace(/"/g, '&quot;')}">`).join('');
  return page(
    'Sign in to GitHub',
    `<h1>Sign in to GitHub</h1>${error ? `<p class="flash-error">${error}</p>` : ''}<form method="post" action="/session">${hidden}<input name="login" type="text"><input name="password" type="password"><button type="submit" name="action" value="login">Sign in</button><button type="submit" name="action" value="cancel">Cancel</button></form>`,
  );
}

async function body(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

export async function startGitHubStandIn(users: GitHubUser[]): Promise<GitHubStandIn> {
  const codes = new Map<string, { login: string; redirectUri: string; challenge: string; scope: string }>();
  const tokens = new Map<string, string>();
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const gh: GitHubStandIn = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clientId: 'Iv1.standin0123456789',
    clientSecret: randomBytes(20).toString('hex'),
    callbackUrl: '',
    users: new Map(users.map((u) => [u.login, u])),
    seen: [],
    userApiStatus: undefined,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const redirect = (res: ServerResponse, to: string, params: Record<string, string>) => {
    const url = new URL(to);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    res.writeHead(302, { location: url.toString() }).end();
  };
  const json = (res: ServerResponse, status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(value));
  const bearer = (req: IncomingMessage) => tokens.get((req.headers.authorization ?? '').replace(/^(Bearer|token) /i, ''));

  server.on('request', async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', gh.url);
    gh.seen.push(`${req.method} ${url.pathname}`);
    const q = url.searchParams;
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      if (q.get('client_id') !== gh.clientId) return void res.writeHead(404).end(page('Not found', '<p>Unknown OAuth app</p>'));
      // GitHub: a redirect_uri that is not the app's callback is sent back as redirect_uri_mismatch.
      if (q.get('redirect_uri') !== gh.callbackUrl) {
        return redirect(res, gh.callbackUrl, { error: 'redirect_uri_mismatch', error_description: 'The redirect_uri MUST match the registered callback URL for this application.', state: q.get('state') ?? '' });
      }
      return void res.writeHead(200, { 'content-type': 'text/html' }).end(signInPage(q));
    }
    if (req.method === 'POST' && url.pathname === '/session') {
      const form = await body(req);
      const to = form.get('redirect_uri')!;
      if (form.get('action') === 'cancel') return redirect(res, to, { error: 'access_denied', error_description: 'The user has denied your application access.', state: form.get('state') ?? '' });
      const user = gh.users.get(form.get('login') ?? '');
      if (!user || user.password !== form.get('password')) {
        const query = new URLSearchParams([...form].filter(([k]) => !['login', 'password', 'action'].includes(k)));
        return void res.writeHead(200, { 'content-type': 'text/html' }).end(signInPage(query, 'Incorrect username or password.'));
      }
      const code = randomBytes(10).toString('hex');
      codes.set(code, { login: user.login, redirectUri: to, challenge: form.get('code_challenge') ?? '', scope: form.get('scope') ?? '' });
      return redirect(res, to, { code, state: form.get('state') ?? '' });
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const form = await body(req);
      const basic = req.headers.authorization?.startsWith('Basic ') ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':').map(decodeURIComponent) : [];
      const clientId = form.get('client_id') ?? basic[0];
      const clientSecret = form.get('client_secret') ?? basic[1];
      // GitHub answers errors with HTTP 200 and an "error" member.
      if (clientId !== gh.clientId || clientSecret !== gh.clientSecret) return json(res, 200, { error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
      const grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      if (!grant || grant.redirectUri !== form.get('redirect_uri') || createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
        return json(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      }
      const token = `gho_${randomBytes(18).toString('hex')}`;
      tokens.set(token, grant.login);
      return json(res, 200, { access_token: token, token_type: 'bearer', scope: grant.scope.replace(/ /g, ',') });
    }
    if (req.method === 'GET' && (url.pathname === '/api/v3/user' || url.pathname === '/api/v3/user/emails')) {
      const login = bearer(req);
      if (!login) return json(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      if (!req.headers['user-agent']) return json(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.' });
      const user = gh.users.get(login)!;
      if (url.pathname === '/api/v3/user') {
        if (gh.userApiStatus) return json(res, gh.userApiStatus, { message: 'Server Error' });
        const publicEmail = user.emails.find((e) => e.primary)?.email ?? null;
        return json(res, 200, { login: user.login, id: user.id, node_id: `U_${user.id}`, type: 'User', site_admin: false, name: user.name, email: publicEmail });
      }
      return json(res, 200, user.emails.map((e) => ({ ...e, visibility: e.primary ? 'public' : null })));
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Not Found' }));
  });
  return gh;
}
