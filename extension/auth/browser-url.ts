// The sign-in page must open at the registry's own address. A browser-hosted
// editor (code-server, VS Code for the Web) rewrites every link to
// `http(s)://localhost:PORT`, `127.0.0.1:PORT` or `0.0.0.0:PORT` that an
// extension opens into its own port-forwarding route, `<editor>/proxy/PORT/…`
// (code-server 4.139: the workbench's resolveExternalUri, matched by
// /^(localhost|127\.0\.0\.1|0\.0\.0\.0):(\d+)$/ on the URI's authority). For a
// loopback registry that breaks the sign-in twice over:
//
// - the rewritten URL is rebuilt from a decoded vscode.Uri and re-encoded
//   with encodeURI, so the redirect_uri's own query (the editor's /callback
//   page carries `?vscode-reqid=…&vscode-scheme=…`) is split into top-level
//   parameters and the registry refuses the redirect_uri;
// - behind /proxy/PORT the registry's pages post to and set cookies on paths
//   that the proxy does not serve: the registry lives at its public URL, which
//   is what it names as its issuer.
//
// So in a browser-hosted editor the loopback host is spelled in an equivalent
// form that the rewrite rule does not match and every browser's URL parser
// (WHATWG host parsing) turns back into the same origin: an IPv4 address with
// a trailing dot (`127.0.0.1.` → `127.0.0.1`), a host name in capitals
// (`LOCALHOST` → `localhost`). Nothing else in the URL changes: the query
// stays byte-for-byte what the flow built. Any other URL (an https registry,
// a registry on a network address) is not rewritten by the editor and is
// returned as is. Desktop VS Code is left alone: there a remote window
// forwards the loopback port to the local machine, which is what it needs.

const REWRITTEN_AUTHORITY = /^(https?:\/\/)(localhost|127\.0\.0\.1|0\.0\.0\.0)(:\d+)(?=[/?#]|$)/i;

/** The URL to hand to openExternal so a browser-hosted editor opens it unchanged. */
export function keepOffEditorPortForwarding(url: string): string {
  return url.replace(REWRITTEN_AUTHORITY, (_all, scheme: string, host: string, port: string) => {
    const spelled = /^[\d.]+$/.test(host) ? `${host}.` : host.toUpperCase();
    return `${scheme}${spelled}${port}`;
  });
}
