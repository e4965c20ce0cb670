import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal } from './principal.ts';
import type { TokenValidator } from './validator.ts';

/**
 * `auth.type: bearer` with `valid_tokens`: each presented token is compared
 * with every configured one as HMAC-SHA-256 digests under a per-process key,
 * in constant time and whatever their lengths (a digest is always 32 bytes).
 */
export class StaticBearerTokens implements TokenValidator {
  readonly name = 'bearer';
  private readonly key = randomBytes(32);
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[], private readonly scopes: string[]) {
    this.digests = tokens.map((t) => this.digest(t));
  }

  private digest(token: string): Buffer {
    return createHmac('sha256', this.key).update(token).digest();
  }

  get size(): number {
    return this.digests.length;
  }

  async validate(token: string): Promise<Principal | undefined> {
    return this.match(token);
  }

  match(token: string): Principal | undefined {
    const presented = this.digest(token);
    let found = -1;
    // Visit every entry so the time taken does not depend on which one matched.
    this.digests.forEach((digest, i) => {
      if (timingSafeEqual(digest, presented) && found < 0) found = i;
    });
    if (found < 0) return undefined;
    return { subject: `static-token-${found + 1}`, scopes: this.scopes, groups: [], provider: 'bearer' };
  }
}
