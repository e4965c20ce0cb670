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
 * would. Returns the response of the form POST (a 303 to the client on success).
 */
export async function submitLogin(authorizeUrl: string | URL, username: string, password: string): Promise<Response> {
  const page = await fetch(authorizeUrl, { redirect: 'manual' });
  if (page.status !== 200) throw new Error(`authorize page answered ${page.status}: ${await page.text()}`);
  const html = await page.text();
  const form = parseForms(html, page.url)[0];
  if (!form) throw new Error(`no form on the authorize page:\n${html}`);
  const body = new URLSearchParams(form.fields);
  body.set('username', username);
  body.set('password', password);
  return fetch(form.action, { method: 'POST', body, redirect: 'manual' });
}

/** Sign in and return the query of the redirect back to the client (code, state, iss). */
export async function authorizeWithLogin(authorizeUrl: string | URL, username: string, password: string): Promise<URLSearchParams> {
  const res = await submitLogin(authorizeUrl, username, password);
  const location = res.headers.get('location');
  if (res.status !== 303 || !location) throw new Error(`login did not redirect (HTTP ${res.status}): ${await res.text()}`);
  return new URL(location).searchParams;
}
