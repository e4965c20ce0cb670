import { z } from 'zod';

const bearerAuth = z.strictObject({
  /** Static tokens, compared as HMAC-SHA-256 digests in constant time. */
  valid_tokens: z.array(z.string().min(1, 'a bearer token may not be empty')).default([]),
});

export const authSection = z
  .strictObject({
    /** none: only the registry's own tokens; bearer: static tokens too. */
    type: z.enum(['none', 'bearer']).default('none'),
    bearer: bearerAuth.optional(),
  })
  .superRefine((auth, ctx) => {
    if (auth.type === 'bearer' && !auth.bearer?.valid_tokens.length) {
      ctx.addIssue({ code: 'custom', path: ['bearer', 'valid_tokens'], message: 'auth.type bearer needs at least one token in bearer.valid_tokens' });
    }
  });
