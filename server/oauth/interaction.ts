import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { Collection, type Store } from '../store/index.ts';
import { epoch } from './grants.ts';

// An interaction is one authorization request on its way through the pages a
// person sees: sign in (form or federated IdP), then consent. It holds the
// validated request, who has signed in so far, a CSRF token for its forms and,
// when a browser started it, a binding to that browser: a form posted from
// another browser (or cross-site, where SameSite keeps the cookie back) is
// refused.

export const INTERACTION_LIFETIME = 600;
const BINDING_COOKIE = 'kg_ia';

export const interactionSchema = z.object({
  id: z.string(),
  client_id: z.string(),
  redirect_uri: z.string(),
  state: z.string().optional(),
  /** The scope asked for (validated, not yet narrowed to the user's). */
  scope: z.string().optional(),
  code_challenge: z.string(),
  resource: z.array(z.string()),
  prompt: z.array(z.string()),
  csrf: z.string(),
  /** SHA-256 of the browser-binding cookie offered (or found) when the interaction started. */
  binding: z.string(),
  /** The starting request already carried cookies: a form posted without the binding cookie is refused. */
  bound: z.boolean(),
  /** Set once the person has signed in. */
  user: z.object({ sub: z.string(), auth_time: z.number() }).optional(),
  /** Federated sign-in in progress: the upstream request's secrets. */
  federated: z.object({ state: z.string(), nonce: z.string(), code_verifier: z.string() }).optional(),
  created_at: z.number(),
});
export type Interaction = z.infer<typeof interactionSchema>;

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

export function setCookie(res: Response, name: string, value: string, options: { secure: boolean; path: string; maxAge?: number }): void {
  const parts = [`${name}=${encodeURIComponent(value)}`, `Path=${options.path}`, 'HttpOnly', 'SameSite=Lax'];
  if (options.secure) parts.push('Secure');
  if (options.maxAge !== undefined) parts.push(`Max-Age=${options.maxAge}`);
  res.append('Set-Cookie', parts.join('; '));
}

export class Interactions {
  readonly records: Collection<typeof interactionSchema>;

  constructor(
    store: Store,
    private readonly cookie: { secure: boolean; path: string },
  ) {
    this.records = new Collection(store, 'interactions', interactionSchema);
  }

  /**
   * Start an interaction, offering the browser-binding cookie (or reusing the
   * one the browser has). A client without a cookie jar never sends it back and
   * may still finish; a browser that does is held to it.
   */
  async create(req: Request, res: Response, request: Omit<Interaction, 'id' | 'csrf' | 'binding' | 'bound' | 'created_at'>): Promise<Interaction> {
    let binding = readCookie(req, BINDING_COOKIE);
    const bound = req.headers.cookie !== undefined;
    if (!binding || !/^[A-Za-z0-9_-]{32}$/.test(binding)) {
      binding = randomBytes(24).toString('base64url');
      setCookie(res, BINDING_COOKIE, binding, { ...this.cookie, maxAge: 86400 * 30 });
    }
    const interaction: Interaction = {
      ...request,
      id: randomBytes(24).toString('base64url'),
      csrf: randomBytes(24).toString('base64url'),
      binding: sha256(binding),
      bound,
      created_at: epoch(),
    };
    await this.records.upsert(interaction.id, interaction, epoch() + INTERACTION_LIFETIME);
    return interaction;
  }

  find(id: string): Promise<Interaction | undefined> {
    return /^[A-Za-z0-9_-]{32}$/.test(id) ? this.records.find(id) : Promise.resolve(undefined);
  }

  /**
   * Was this form posted with the interaction's CSRF token, by the browser that
   * started it? A binding cookie that differs is another browser; a missing one
   * is refused when the starting request had cookies (a cross-site post, where
   * SameSite=Lax holds the cookie back).
   */
  checkForm(req: Request, interaction: Interaction, csrf: unknown): 'ok' | 'csrf' | 'browser' {
    const expected = Buffer.from(interaction.csrf);
    const actual = Buffer.from(typeof csrf === 'string' ? csrf : '');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return 'csrf';
    const cookie = readCookie(req, BINDING_COOKIE);
    if (cookie !== undefined ? sha256(cookie) !== interaction.binding : interaction.bound) return 'browser';
    return 'ok';
  }

  /** The request carries this interaction's binding cookie: a browser that keeps cookies (single sign-on may start). */
  sameBrowser(req: Request, interaction: Interaction): boolean {
    const cookie = readCookie(req, BINDING_COOKIE);
    return cookie !== undefined && sha256(cookie) === interaction.binding;
  }

  async update(id: string, change: Partial<Interaction>): Promise<Interaction | undefined> {
    return this.records.update(id, (current) => current && { ...current, ...change });
  }

  /** The interaction ends when a code (or an error) goes back to the client: once. */
  consume(id: string): Promise<Interaction | undefined> {
    return this.records.consume(id);
  }
}
