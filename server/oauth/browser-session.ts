import { createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { Collection, type Store } from '../store/index.ts';
import { epoch } from './grants.ts';
import { readCookie, setCookie } from './interaction.ts';

// Single sign-on at the registry: after a person signs in through a browser,
// the next authorization request from that browser skips the login form (the
// consent page still guards each new client). Only the cookie's hash is stored.

const COOKIE = 'kg_sso';
const sessionSchema = z.object({ sub: z.string(), auth_time: z.number() });
const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

export class BrowserSessions {
  private readonly records: Collection<typeof sessionSchema, 'browser_sessions'>;

  constructor(
    store: Store,
    private readonly cookie: { secure: boolean; path: string },
    private readonly lifetime: number,
  ) {
    this.records = new Collection(store, 'browser_sessions', sessionSchema);
  }

  async current(req: Request): Promise<z.infer<typeof sessionSchema> | undefined> {
    const value = readCookie(req, COOKIE);
    return value && /^[A-Za-z0-9_-]{43}$/.test(value) ? this.records.find(sha256(value)) : undefined;
  }

  async start(res: Response, sub: string, authTime: number): Promise<void> {
    const value = randomBytes(32).toString('base64url');
    await this.records.upsert(sha256(value), { sub, auth_time: authTime }, epoch() + this.lifetime);
    setCookie(res, COOKIE, value, { ...this.cookie, maxAge: this.lifetime });
  }

  async end(req: Request, res: Response): Promise<void> {
    const value = readCookie(req, COOKIE);
    if (value) await this.records.destroy(sha256(value));
    setCookie(res, COOKIE, '', { ...this.cookie, maxAge: 0 });
  }

  /** Sign a user out of every browser (offboarding). */
  endAllFor(sub: string): Promise<number> {
    return this.records.destroyBy('subject', sub);
  }
}
