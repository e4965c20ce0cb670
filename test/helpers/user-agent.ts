import { parseForms } from './form.ts';

// A browser without JavaScript, for flows that cross origins (registry ↔
// identity provider): it keeps cookies per host as browsers do (RFC 6265
// cookies ignore the port), follows redirects one hop at a time, and submits
// HTML forms. `follow` stops before a URL the test wants to look at itself
// (the client's redirect URI), so nothing is fetched there.

interface StoredCookie {
  value: string;
  path: string;
}

export class UserAgent {
  private readonly jar = new Map<string, Map<string, StoredCookie>>();
  /** Every URL requested, in order. */
  readonly visited: string[] = [];

  private cookieHeader(url: URL): string | undefined {
    const cookies = this.jar.get(url.hostname);
    if (!cookies) return undefined;
    const pairs = [...cookies].filter(([, c]) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/').map(([name, c]) => `${name}=${c.value}`);
    return pairs.length ? pairs.join('; ') : undefined;
  }

  private keep(url: URL, res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      let path = '/';
      let expired = false;
      for (const attribute of attributes) {
        const [key, val = ''] = attribute.split('=');
        if (key!.toLowerCase() === 'path') path = val;
        if (key!.toLowerCase() === 'max-age' && Number(val) <= 0) expired = true;
        if (key!.toLowerCase() === 'expires' && Date.parse(val) < Date.now()) expired = true;
      }
      const cookies = this.jar.get(url.hostname) ?? new Map<string, StoredCookie>();
      this.jar.set(url.hostname, cookies);
      if (expired) cookies.delete(name);
      else cookies.set(name, { value, path });
    }
  }

  hasCookie(host: string, name: string): boolean {
    return this.jar.get(host)?.has(name) ?? false;
  }

  forget(): void {
    this.jar.clear();
  }

  /** One request, cookies in and out, never following a redirect. */
  async request(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const url = new URL(input);
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url);
    if (cookie) headers.set('cookie', cookie);
    this.visited.push(url.toString());
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.keep(url, res);
    return res;
  }

  /**
   * GET `start` and follow redirects until a page (not a redirect) answers, or
   * until the next location satisfies `stopAt` (returned unfetched).
   */
  async follow(start: string | URL, stopAt: (url: URL) => boolean = () => false, first?: Response): Promise<{ response?: Response; url: URL }> {
    let url = new URL(start);
    let res = first ?? (await this.request(url));
    for (let hops = 0; hops < 20; hops++) {
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return { response: res, url };
      url = new URL(location, url);
      if (stopAt(url)) return { url };
      res = await this.request(url);
    }
    throw new Error(`too many redirects, last ${url}`);
  }

  /** Submit the first form on `page` (its hidden fields plus `values`), pressing the button with `button` as value if given. */
  async submit(page: { html: string; url: string | URL }, values: Record<string, string>, button?: { name: string; value: string }): Promise<Response> {
    const form = parseForms(page.html, page.url.toString())[0];
    if (!form) throw new Error(`no form on ${page.url}:\n${page.html}`);
    const body = new URLSearchParams(form.fields);
    for (const [k, v] of Object.entries(values)) body.set(k, v);
    if (button) body.set(button.name, button.value);
    return this.request(form.action, { method: 'POST', body });
  }
}
