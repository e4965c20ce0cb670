// Which server of a merged gateway (/mcp/{gateway}) serves a resource URI
// (resources/read, resources/subscribe, 2026-07-28 subscriptions/listen).
// Resource URIs are not renamed, and a server may serve URIs it never lists
// (a live feed, a file by its path): asked directly it answers them, so the
// gateway routes them as that server would be reached. The rule
// (docs/gateways.md, "Resource URIs"):
//   1. the server that listed the URI;
//   2. else the first whose resource template matches it;
//   3. else the only server that can serve the request at all (declares
//      `resources`; for a subscription, `resources.subscribe`);
//   4. else, of those, the only one whose listed URIs or templates share the
//      URI's scheme and authority (`note://alpha/…`);
//   5. else, of those, the only one that shares its scheme (`note:`);
//   otherwise the URI is refused as not found (-32602, data { uri }), saying
//   which step left more than one server, or none. Steps 1-2 are the caller's listings (merged-server.ts);
//   this module is steps 3-5.

/** What one server that can serve the request has listed: its resources' URIs and its templates. */
export interface ServerResources {
  name: string;
  uris: string[];
  templates: string[];
}

export type UnlistedRoute = { server: string } | { refused: string };

/** The URI's scheme, and `scheme://authority` (`scheme:` when it has none); undefined when it has no scheme. Templates count up to their first `{`. */
export function uriOrigin(uri: string): { scheme: string; origin: string } | undefined {
  // RFC 3986 §3.1 (scheme) and §3.2 (authority, after "//").
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(\/\/[^/?#{]*)?/.exec(uri);
  if (!match) return undefined;
  const scheme = match[1]!.toLowerCase();
  return { scheme, origin: `${scheme}:${match[2]?.toLowerCase() ?? ''}` };
}

/** Steps 3-5 for a URI no server listed and no template matches. `serving`: the servers that can serve the request; `what`: what they do ("support subscriptions"). */
export function routeUnlisted(uri: string, serving: ServerResources[], what: string): UnlistedRoute {
  const head = `no server listed ${uri} or has a template that matches it`;
  if (serving.length === 0) return { refused: `${head}, and none of the servers you can use here ${what}` };
  if (serving.length === 1) return { server: serving[0]!.name };
  const target = uriOrigin(uri);
  if (target) {
    for (const part of ['origin', 'scheme'] as const) {
      const sharing = serving.filter((s) => [...s.uris, ...s.templates].some((u) => uriOrigin(u)?.[part] === target[part]));
      if (sharing.length === 1) return { server: sharing[0]!.name };
      if (sharing.length > 1) {
        return { refused: `${head}; ${serving.length} servers ${what} and ${sharing.length} of them (${sharing.map((s) => s.name).join(', ')}) list URIs under ${part === 'origin' ? target.origin : `${target.scheme}:`}, so which one serves it cannot be told` };
      }
    }
  }
  return { refused: `${head}; ${serving.length} servers ${what} (${serving.map((s) => s.name).join(', ')}) and none lists URIs under ${target ? `${target.scheme}:` : 'its scheme'}, so which one serves it cannot be told` };
}
