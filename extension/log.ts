import { describeError } from './errors.ts';

// Logging for the `Keygate` output channel. Tokens never reach it: every line
// is scrubbed of the secrets the extension has handled (registered with
// `addSecret` the moment they arrive) and of anything shaped like a token
// (a JWT, a Bearer credential, an OAuth token parameter), in case one slips
// into an error message from elsewhere.

/** What a line is written to; `vscode.LogOutputChannel` is one. */
export interface LogSink {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

const REDACTED = '[redacted]';
/** Remember this many secrets; tokens rotate, and old ones are dead anyway. */
const MAX_SECRETS = 64;
/** Shorter values are not secrets worth hunting for (and would match everywhere). */
const MIN_SECRET_LENGTH = 8;

const PATTERNS: RegExp[] = [
  // A JWS compact serialization (RFC 7515 §7.1), e.g. an RFC 9068 access token.
  /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g,
  // RFC 6750 §2.1 credentials.
  /(\bBearer\s+)[A-Za-z0-9\-._~+/]+=*/gi,
  // OAuth parameters that carry secrets, in a query or form body ...
  /(\b(?:access_token|refresh_token|id_token|code|code_verifier|client_secret)=)[^&\s"']+/g,
  // ... or in JSON.
  /("(?:access_token|refresh_token|id_token|accessToken|refreshToken|code_verifier|client_secret)"\s*:\s*")[^"]*/g,
];

export function redact(line: string, secrets: Iterable<string> = []): string {
  let out = line;
  for (const secret of secrets) out = out.split(secret).join(REDACTED);
  for (const pattern of PATTERNS) out = out.replace(pattern, (_match, prefix?: string) => `${typeof prefix === 'string' ? prefix : ''}${REDACTED}`);
  return out;
}

export class Logger {
  private readonly secrets = new Set<string>();

  constructor(private readonly sink: LogSink) {}

  /** Never print this value: call it for every token, code and verifier as soon as it exists. */
  addSecret(value: string | undefined): void {
    if (!value || value.length < MIN_SECRET_LENGTH) return;
    this.secrets.delete(value);
    this.secrets.add(value);
    if (this.secrets.size > MAX_SECRETS) this.secrets.delete(this.secrets.values().next().value!);
  }

  info(message: string): void {
    this.sink.info(redact(message, this.secrets));
  }

  warn(message: string, err?: unknown): void {
    this.sink.warn(redact(withCause(message, err), this.secrets));
  }

  error(message: string, err?: unknown): void {
    this.sink.error(redact(withCause(message, err), this.secrets));
  }
}

function withCause(message: string, err: unknown): string {
  if (err === undefined) return message;
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? ` [${err.code}]` : '';
  return `${message}: ${describeError(err)}${code}`;
}
