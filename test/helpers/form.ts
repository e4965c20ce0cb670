// Reads the registry's HTML forms the way a browser with JavaScript off would:
// the form's action, its inputs (hidden and visible) and its submit buttons.

export interface HtmlForm {
  action: string;
  method: string;
  fields: [string, string][];
  inputNames: string[];
  buttons: { name: string | undefined; value: string | undefined; text: string }[];
}

const attr = (tag: string, name: string): string | undefined => {
  const m = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag);
  return m ? decodeEntities(m[1]!) : undefined;
};

function decodeEntities(value: string): string {
  return value.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);
}

export function parseForms(html: string, baseUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const [, open, body] = match as unknown as [string, string, string];
    const action = new URL(attr(open, 'action') ?? '', baseUrl).toString();
    const fields: [string, string][] = [];
    const inputNames: string[] = [];
    for (const input of body.matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(input[0], 'name');
      if (!name) continue;
      inputNames.push(name);
      if ((attr(input[0], 'type') ?? 'text') === 'hidden') fields.push([name, attr(input[0], 'value') ?? '']);
    }
    const buttons = [...body.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].map((b) => ({
      name: attr(b[1]!, 'name'),
      value: attr(b[1]!, 'value'),
      text: b[2]!.replace(/<[^>]+>/g, '').trim(),
    }));
    forms.push({ action, method: (attr(open, 'method') ?? 'get').toLowerCase(), fields, inputNames, buttons });
  }
  return forms;
}

/**
 * Open an authorization URL, fill in the login form and submit it, as a person
 * would. Returns the response of the form POST: a 303 to the client, the
 * consent page, or the login page again with an error.
 */
export async function submitLogin(authorizeUrl: string | URL, username: string, password: string, headers: Record<string, string> = {}): Promise<Response> {
  const page = await fetch(authorizeUrl, { redirect: 'manual', headers });
  if (page.status !== 200) throw new Error(`authorize page answered ${page.status}: ${await page.text()}`);
  const html = await page.text();
  const form = parseForms(html, page.url)[0];
  if (!form || !form.inputNames.includes('password')) throw new Error(`no login form on the authorize page:\n${html}`);
  const body = new URLSearchParams(form.fields);
  body.set('username', username);
  body.set('password', password);
  return fetch(form.action, { method: 'POST', body, redirect: 'manual', headers });
}

/** Submit the consent form on a page with the given button (approve or deny). */
export async function submitConsent(page: Response, action: 'approve' | 'deny' = 'approve', headers: Record<string, string> = {}): Promise<Response> {
  const html = await page.text();
  const form = parseForms(html, page.url)[0];
  const button = form?.buttons.find((b) => b.name === 'action' && b.value === action);
  if (!form || !button) throw new Error(`no consent form with a ${action} button (HTTP ${page.status}):\n${html}`);
  const body = new URLSearchParams(form.fields);
  body.set('action', action);
  return fetch(form.action, { method: 'POST', body, redirect: 'manual', headers });
}

/**
 * Sign in and approve the consent page if one is shown; return the query of
 * the redirect back to the client (code, state, iss).
 */
export async function authorizeWithLogin(authorizeUrl: string | URL, username: string, password: string): Promise<URLSearchParams> {
  let res = await submitLogin(authorizeUrl, username, password);
  if (res.status === 200) res = await submitConsent(res, 'approve');
  const location = res.headers.get('location');
  if (res.status !== 303 || !location) throw new Error(`sign-in did not redirect (HTTP ${res.status}): ${await res.text()}`);
  return new URL(location).searchParams;
}
