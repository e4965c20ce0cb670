import type { CredentialConfig } from '../config/sections/upstreams.ts';
import type { Secret } from './identities.ts';

// Turning a credential into the header(s) it travels upstream in. A value
// with a line break (or any control character) could smuggle a second header,
// and one beyond Latin-1 cannot be written in a header at all (RFC 9110 §5.5:
// field values are octets; Node refuses it with ERR_INVALID_CHAR): either is
// refused, whatever its source (a stored identity, X-Keygate-Credentials),
// naming the field and never the value.

export class InjectionError extends Error {
  readonly code = 'ERR_INJECTION';
}

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f]/;
const BEYOND_LATIN1 = /[^\u0000-\u00ff]/;

/** Why `value` cannot travel in an HTTP header (said when it is saved, and again if it reaches the gateway), or undefined. */
export function headerValueProblem(value: string): string | undefined {
  if (UNSAFE.test(value)) return 'contains a control character';
  if (BEYOND_LATIN1.test(value)) return 'contains a character an HTTP header cannot carry (beyond Latin-1)';
  return undefined;
}

function safe(value: string, what: string): string {
  const problem = headerValueProblem(value);
  if (problem) throw new InjectionError(`${what} ${problem}`);
  return value;
}

/** `Bearer {api_key}` with the field values in place of the names. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([^}]*)\}/g, (_, name: string) => values[name] ?? '');
}

/** The upstream headers for a credential of the upstream's kind. */
export function headersFor(credential: CredentialConfig, secret: Secret): Record<string, string> {
  switch (secret.kind) {
    case 'bearer':
      return { authorization: `Bearer ${safe(secret.token, 'the token')}` };
    case 'header':
      if (credential.type !== 'header') throw new InjectionError('a header identity for an upstream that takes no header');
      return { [credential.name.toLowerCase()]: safe(secret.value, 'the header value') };
    case 'oauth':
      // RFC 6750 §2.1; the token type is case-insensitive, Bearer is what servers expect.
      return { authorization: `Bearer ${safe(secret.access_token, 'the access token')}` };
    case 'fields': {
      if (credential.type !== 'fields') throw new InjectionError('field values for an upstream that takes no fields');
      for (const [name, value] of Object.entries(secret.values)) safe(value, `the field ${name}`);
      return Object.fromEntries(credential.inject.map((inj) => [inj.header.toLowerCase(), fillTemplate(inj.value, secret.values)]));
    }
  }
}

/** Check field values against the upstream's definitions: what is missing or unknown. */
export function fieldProblems(credential: CredentialConfig, values: Record<string, string>): string[] {
  if (credential.type !== 'fields') return ['this upstream takes no credential fields'];
  const problems: string[] = [];
  for (const field of credential.fields) {
    const value = values[field.name];
    if (field.required && (value === undefined || value === '')) problems.push(`${field.label} (${field.name}) is required`);
    const problem = value === undefined ? undefined : headerValueProblem(value);
    if (problem) problems.push(`${field.label} (${field.name}) ${problem}`);
    if (value !== undefined && value.length > 8192) problems.push(`${field.label} (${field.name}) is longer than 8192 characters`);
  }
  for (const name of Object.keys(values)) {
    if (!credential.fields.some((f) => f.name === name)) problems.push(`there is no field ${name}`);
  }
  return problems;
}
