import { z } from 'zod';
import { InvalidTokenError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import type { FetchLike } from '../net/outbound.ts';
import { stringList } from './claims.ts';
import type { Principal } from './principal.ts';
import { unavailable } from './remote-errors.ts';
import type { TokenValidator } from './validator.ts';

// auth.type bearer with validation_endpoint (the MCP bridge seed): the token
// is POSTed as {"token": "..."} and the endpoint answers
// {"valid", "subject", "scopes", "claims", "metadata"}. Its verdict is reused
// for `cache_ttl` (and never past the `exp` of its claims, when it says one).

// A document from another server: parsed leniently (unknown keys are fine), but typed.
const verdict = z.looseObject({
  valid: z.boolean({ error: 'the answer has no boolean "valid"' }),
  subject: z.string().min(1).optional(),
  scopes: z.union([z.array(z.string()), z.string()]).optional(),
  claims: z.record(z.string(), z.unknown()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

export interface ValidationEndpointOptions {
  url: string;
  cacheTtl: number;
  fetch: FetchLike;
  log: Logger;
}

export class ValidationEndpointValidator implements TokenValidator {
  readonly name = 'bearer-validation-endpoint';

  constructor(private readonly options: ValidationEndpointOptions) {}

  async validate(token: string): Promise<Principal | undefined> {
    const o = this.options;
    let answer: z.infer<typeof verdict>;
    try {
      const res = await o.fetch(o.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ token }) });
      const body: unknown = await res.json().catch(() => undefined);
      // A clear "no" may come with 401/403; anything else must be a 200 verdict.
      const parsed = verdict.safeParse(body);
      if (!parsed.success || (!res.ok && !(parsed.data.valid === false && (res.status === 401 || res.status === 403)))) {
        throw new Error(`it answered HTTP ${res.status} ${parsed.success ? '' : `without a verdict: ${parsed.error.issues[0]?.message ?? ''}`}`.trim());
      }
      answer = parsed.data;
    } catch (err) {
      throw unavailable(o.log, 'the bearer validation endpoint', err);
    }
    if (!answer.valid) throw new InvalidTokenError('the validation endpoint says the token is not valid');
    const claims = answer.claims ?? {};
    const subject = answer.subject ?? (typeof claims.sub === 'string' ? claims.sub : undefined);
    if (!subject) throw unavailable(o.log, 'the bearer validation endpoint', new Error('it said valid but named no subject'));
    const now = Math.floor(Date.now() / 1000);
    const exp = typeof claims.exp === 'number' ? claims.exp : Infinity;
    if (exp <= now) throw new InvalidTokenError('the access token has expired');
    return {
      subject,
      email: typeof claims.email === 'string' ? claims.email : undefined,
      name: typeof claims.name === 'string' ? claims.name : undefined,
      scopes: stringList(answer.scopes),
      groups: stringList(claims.groups),
      ...(claims.roles !== undefined && { roles: stringList(claims.roles) }),
      provider: 'bearer',
      // The cache lifetime from this moment, not from the start of the second (a 1 s TTL would otherwise last 0-1 s).
      expiresAt: Math.min(exp, Date.now() / 1000 + o.cacheTtl),
    };
  }
}
