import { parseForms } from './form.ts';

// The admin console over plain HTTP, as a browser with JavaScript off: a
// cookie jar, the sign-in through the registry's login page, and the forms
// of a page read back with their CSRF tokens.

export class CookieJar {
  private readonly cookies = new Map<string, string>();

  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1);
      if (/max-age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', this.header());
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.take(res);
    return res;
  }
}

export interface ConsoleBrowser {
  jar: CookieJar;
  get(path: string): Promise<Response>;
  /** POST a form of the console (fields urlencoded), with the browser's Origin header. */
  post(path: string, fields: Record<string, string>, headers?: Record<string, string>): Promise<Response>;
  /** The CSRF token on a console page. */
  csrf(): Promise<string>;
}

/** Sign in to /admin through the registry's login page; the jar then holds the single sign-on cookie. */
export async function signInToConsole(base: string, user: { username: string; password: string }): Promise<ConsoleBrowser> {
  const jar = new CookieJar();
  let res = await jar.fetch(`${base}/admin`);
  if (res.status !== 303) throw new Error(`/admin answered ${res.status}, not a redirect to sign in`);
  res = await jar.fetch(res.headers.get('location')!);
  const login = parseForms(await res.text(), res.url)[0];
  if (!login) throw new Error('no login form');
  const body = new URLSearchParams(login.fields);
  body.set('username', user.username);
  body.set('password', user.password);
  res = await jar.fetch(login.action, { method: 'POST', body, headers: { origin: new URL(base).origin } });
  // Back to /admin/signed-in, then to /admin.
  for (let hops = 0; res.status === 303 && hops < 5; hops++) {
    const next = new URL(res.headers.get('location')!, base);
    if (next.pathname === '/admin') break;
    res = await jar.fetch(next);
  }
  if (res.status !== 303 || new URL(res.headers.get('location')!, base).pathname !== '/admin') throw new Error(`sign-in did not come back to /admin (HTTP ${res.status}): ${await res.text()}`);
  const browser: ConsoleBrowser = {
    jar,
    get: (path) => jar.fetch(`${base}${path}`),
    post: (path, fields, headers = {}) => jar.fetch(`${base}${path}`, { method: 'POST', body: new URLSearchParams(fields), headers: { origin: new URL(base).origin, ...headers } }),
    async csrf() {
      const html = await (await browser.get('/admin')).text();
      const token = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
      if (!token) throw new Error('no CSRF token on /admin');
      return token;
    },
  };
  return browser;
}
