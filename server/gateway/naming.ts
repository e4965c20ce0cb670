import { createHash } from 'node:crypto';

// Names on the merged endpoint (/mcp/{gateway}): every tool and prompt of an
// assignment is offered as `<prefix>__<name>`, the prefix being the
// assignment's name unless set (`gateways[].servers[].prefix`), so two
// upstreams (or the same upstream assigned twice) never clash. One server of
// a gateway may keep its names as they are (prefix ""); a name of it that
// reads as another server's (`<their prefix>__…`) belongs to that server and
// is left out of its lists (`owner`). MCP (2025-11-25, "Tool names"):
// 1 to 128 characters of A-Z a-z 0-9 _ - . — a name that would break the rule
// (other characters, too long) is cleaned and given a short digest of the
// original, and the pair is remembered so a call still reaches the original.

export const SEPARATOR = '__';
const VALID = /^[A-Za-z0-9_.-]{1,128}$/;
const MAX = 128;

export interface Alias {
  assignment: string;
  original: string;
}

/** An assignment as naming sees it: its name, and the prefix its names are offered under ("" for none). */
export interface Named {
  name: string;
  prefix: string;
}

/** The name a client sees for an upstream name offered under `prefix`. */
export function exposedName(prefix: string, original: string): string {
  const head = prefix === '' ? '' : `${prefix}${SEPARATOR}`;
  const plain = `${head}${original}`;
  if (VALID.test(plain)) return plain;
  const digest = createHash('sha256').update(original).digest('hex').slice(0, 8);
  const clean = original.replace(/[^A-Za-z0-9_.-]/g, '_');
  const room = MAX - head.length - digest.length - 1;
  return `${head}${clean.slice(0, Math.max(0, room))}-${digest}`;
}

/** Which assignment a name reads as: the longest prefix followed by the separator, else the unprefixed one (if any). */
function owner(name: string, assignments: Iterable<Named>): Alias | undefined {
  let best: Named | undefined;
  let bare: Named | undefined;
  for (const a of assignments) {
    if (a.prefix === '') bare ??= a;
    else if (name.startsWith(`${a.prefix}${SEPARATOR}`) && name.length > a.prefix.length + SEPARATOR.length && (best === undefined || a.prefix.length > best.prefix.length)) best = a;
  }
  if (best) return { assignment: best.name, original: name.slice(best.prefix.length + SEPARATOR.length) };
  return bare && { assignment: bare.name, original: name };
}

/**
 * Names handed out, so a call finds its way back: `resolve()` first looks at
 * what was listed, then reads the name's prefix (`owner`: a name never listed
 * here, e.g. from a 2026-07-28 client that remembered it, still routes).
 */
export class NameBook {
  private readonly aliases = new Map<string, Alias>();

  /**
   * The name to list for `original` of assignment `a`, or undefined when that
   * name would route to another assignment of `all` (an unprefixed server's
   * name that reads as a prefixed one's): the prefixed server keeps it.
   */
  expose(a: Named, original: string, all: Iterable<Named>): string | undefined {
    const name = exposedName(a.prefix, original);
    if (name === (a.prefix === '' ? original : `${a.prefix}${SEPARATOR}${original}`)) {
      return owner(name, all)?.assignment === a.name ? name : undefined;
    }
    const taken = this.aliases.get(name);
    if (taken && taken.assignment !== a.name) return undefined;
    this.aliases.set(name, { assignment: a.name, original });
    return name;
  }

  resolve(name: string, assignments: Iterable<Named>): Alias | undefined {
    return this.aliases.get(name) ?? owner(name, assignments);
  }
}
