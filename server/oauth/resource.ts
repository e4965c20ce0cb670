import { InvalidTargetError } from '../http/errors.ts';

/**
 * Resource indicators (RFC 8707) for the registry. Every protected resource
 * lives under the registry's public URL: the registry as a whole, `/mcp`, a
 * gateway `/mcp/{gateway}` and one server `/mcp/{gateway}/{server}`. A token's
 * audience is the set of resources it was issued for; it is accepted at an
 * endpoint its audience equals or contains (segment-wise).
 */
export class ResourceSpace {
  readonly base: string;

  constructor(
    publicUrl: string,
    /** Does /mcp/{gateway}[/{server}] exist? */
    private readonly knows: (gateway: string, server?: string) => boolean,
  ) {
    this.base = canonical(new URL(publicUrl));
  }

  /** The canonical URI of an MCP endpoint path such as `/mcp/team/demo`. */
  endpoint(path: string): string {
    return `${this.base}${path === '/' ? '' : path.replace(/\/+$/, '')}`;
  }

  /**
   * RFC 8707 §2: each `resource` must be an absolute URI without fragment;
   * one the server does not protect is `invalid_target`. Returns the canonical forms.
   * `existing: false` checks only that the URI names an MCP endpoint of this
   * registry, whether or not that gateway exists: what is said to a caller
   * not signed in yet, who must not learn which (private) gateways exist.
   */
  validate(values: readonly string[], options: { existing?: boolean } = {}): string[] {
    return [...new Set(values.map((value) => this.canonicalize(value, options.existing ?? true)))];
  }

  private canonicalize(value: string, existing: boolean): string {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new InvalidTargetError(`resource "${value}" is not an absolute URI`);
    }
    if (url.hash || value.includes('#')) throw new InvalidTargetError('a resource indicator must not contain a fragment (RFC 8707 §2)');
    if (url.search) throw new InvalidTargetError('a resource indicator must not contain a query');
    const uri = canonical(url);
    if (uri === this.base) return uri;
    if (!uri.startsWith(`${this.base}/`)) throw new InvalidTargetError(`this server does not issue tokens for ${uri}`);
    const segments = uri.slice(this.base.length + 1).split('/');
    const [root, gateway, server, ...rest] = segments.map((s) => decodeURIComponent(s));
    const shaped = root === 'mcp' && rest.length === 0 && gateway !== '' && server !== '';
    const known = shaped && (!existing || gateway === undefined || this.knows(gateway, server));
    if (!known) throw new InvalidTargetError(`${uri} is not a resource of this server`);
    return uri;
  }

  /**
   * Resources an admin listed (URIs, or paths relative to the public URL) in
   * canonical form, without asking whether they exist now.
   */
  listed(values: readonly string[]): string[] {
    return values.map((value) => (value.startsWith('/') ? this.endpoint(value) : canonical(new URL(value))));
  }

  /** Is `endpoint` (canonical) within one of the audiences? */
  static covers(audiences: readonly string[], endpoint: string): boolean {
    return audiences.some((aud) => endpoint === aud || endpoint.startsWith(`${aud}/`));
  }

  /** RFC 8707 §2.2: on refresh, each requested resource must be within the original grant. */
  static narrows(granted: readonly string[], requested: readonly string[]): boolean {
    return requested.every((r) => ResourceSpace.covers(granted, r));
  }
}

function canonical(url: URL): string {
  // URL already lowercases scheme and host and drops a default port.
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}
