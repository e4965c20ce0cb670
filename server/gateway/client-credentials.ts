import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';

// `storage: client` credential fields travel with each request, never stored:
// the client (the extension, from SecretStorage) sends
//   X-Keygate-Credentials: base64url(JSON {"<server name>": {"<field>": "<value>"}})
// and the gateway injects the server's values into that server's upstream
// request. The header itself never goes upstream.

export const CLIENT_CREDENTIALS_HEADER = 'x-keygate-credentials';
const MAX_BYTES = 32 * 1024;

const shape = z.record(z.string(), z.record(z.string(), z.string()));

/** The field values the client sent for this server, or undefined (absent or malformed). */
export function readClientCredentials(headers: IncomingHttpHeaders, server: string): Record<string, string> | undefined {
  const raw = headers[CLIENT_CREDENTIALS_HEADER];
  if (typeof raw !== 'string' || raw.length > MAX_BYTES) return undefined;
  try {
    const parsed = shape.safeParse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data[server] : undefined;
  } catch {
    return undefined;
  }
}

/** What the client sends (for tests and for the extension). */
export function encodeClientCredentials(values: Record<string, Record<string, string>>): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}
