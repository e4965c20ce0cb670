// Headers as flat lists (name, value, name, value...): what node writes as it
// is, and the raw headers it keeps of a response (it builds `res.headers`, an
// object in dictionary mode, only if asked).

/** Where `name` (lower case) is in a flat list of headers (name, value...), or -1. */
export function indexOfHeader(list: string[], name: string): number {
  for (let i = 0; i < list.length; i += 2) if (list[i]!.length === name.length && list[i]!.toLowerCase() === name) return i;
  return -1;
}

/** A response header (lower-case name), the first if sent twice, read from the raw headers. */
export function responseHeader(res: { rawHeaders: string[] }, name: string): string | undefined {
  const at = indexOfHeader(res.rawHeaders, name);
  return at < 0 ? undefined : res.rawHeaders[at + 1];
}
