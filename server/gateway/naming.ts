import { createHash } from 'node:crypto';

// Names on the merged endpoint (/mcp/{gateway}): every tool and prompt of an
// assignment is offered as `<assignment>__<name>`, so two upstreams (or the
// same upstream assigned twice) never clash. MCP (2025-11-25, "Tool names"):
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

/** The name a client sees for an upstream name on an assignment. */
export function exposedName(assignment: string, original: string): string {
  const plain = `${assignment}${SEPARATOR}${original}`;
  if (VALID.test(plain)) return plain;
  const digest = createHash('sha256').update(original).digest('hex').slice(0, 8);
  const clean = original.replace(/[^A-Za-z0-9_.-]/g, '_');
  const room = MAX - assignment.length - SEPARATOR.length - digest.length - 1;
  return `${assignment}${SEPARATOR}${clean.slice(0, Math.max(0, room))}-${digest}`;
}

/**
 * Names handed out, so a call finds its way back: `resolve()` first looks at
 * what was listed, then splits at the separator after the longest assignment
 * name that matches (a name never listed here, e.g. from a 2026-07-28 client
 * that remembered it, still routes).
 */
export class NameBook {
  private readonly aliases = new Map<string, Alias>();

  expose(assignment: string, original: string): string {
    const name = exposedName(assignment, original);
    if (name !== `${assignment}${SEPARATOR}${original}`) this.aliases.set(name, { assignment, original });
    return name;
  }

  resolve(name: string, assignments: Iterable<string>): Alias | undefined {
    const alias = this.aliases.get(name);
    if (alias) return alias;
    let best: string | undefined;
    for (const a of assignments) {
      if (name.startsWith(`${a}${SEPARATOR}`) && name.length > a.length + SEPARATOR.length && (best === undefined || a.length > best.length)) best = a;
    }
    return best === undefined ? undefined : { assignment: best, original: name.slice(best.length + SEPARATOR.length) };
  }
}
