// The sidebar's HTML: a shell that loads the bundled script and stylesheet
// (dist/webview.js, dist/webview.css) under a strict Content Security Policy.
// No inline script or style: the one <script> carries a nonce made fresh for
// each render, and nothing may be loaded from anywhere but the extension.

export interface SidebarHtmlInputs {
  /** webview.cspSource: the origin the webview serves the extension's files from. */
  cspSource: string;
  scriptUri: string;
  styleUri: string;
  nonce: string;
}

const escapeAttribute = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A nonce for one render: 128 random bits, base64. */
export function newNonce(): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(16))).toString('base64');
}

export function contentSecurityPolicy({ cspSource, nonce }: Pick<SidebarHtmlInputs, 'cspSource' | 'nonce'>): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `img-src ${cspSource}`,
    `font-src ${cspSource}`,
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
}

export function sidebarHtml(inputs: SidebarHtmlInputs): string {
  const csp = escapeAttribute(contentSecurityPolicy(inputs));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${escapeAttribute(inputs.styleUri)}">
<title>Keygate</title>
</head>
<body>
<main id="app" aria-busy="true"><p class="muted">Loading…</p></main>
<div id="announce" class="visually-hidden" role="status" aria-live="polite"></div>
<script nonce="${escapeAttribute(inputs.nonce)}" src="${escapeAttribute(inputs.scriptUri)}"></script>
</body>
</html>
`;
}
