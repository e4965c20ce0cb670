import type { FieldView } from './protocol.ts';

// Inline validation of a credential form, from the upstream's field
// definitions: the same rules the registry applies (server/vault/inject.ts
// fieldProblems), checked as the person types so the form says what is wrong
// before anything is sent. Shared by the webview (inline messages) and the
// extension (which checks again before it stores or sends anything).

export const MAX_VALUE_LENGTH = 8192;
// Header injection: a value cannot carry a line break or any other control character.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f]/;

/** The problem with one field's typed value, or undefined. An empty value keeps a stored one. */
export function fieldProblem(field: FieldView, value: string | undefined): string | undefined {
  const typed = value ?? '';
  if (typed === '') return field.required && !field.set ? `${field.label || field.name} is required.` : undefined;
  if (UNSAFE.test(typed)) return `${field.label || field.name} must be one line without control characters.`;
  if (typed.length > MAX_VALUE_LENGTH) return `${field.label || field.name} is longer than ${MAX_VALUE_LENGTH} characters.`;
  return undefined;
}

/** Every field's problem, by field name (empty when the form may be sent). */
export function formProblems(fields: readonly FieldView[], values: Readonly<Record<string, string>>): Record<string, string> {
  const problems: Record<string, string> = {};
  for (const field of fields) {
    const problem = fieldProblem(field, values[field.name]);
    if (problem) problems[field.name] = problem;
  }
  for (const name of Object.keys(values)) {
    if (!fields.some((f) => f.name === name)) problems[name] = `There is no field ${name}.`;
  }
  return problems;
}

/** Only what was typed: empty inputs are left out (they keep the stored value, if any). */
export function typedValues(values: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ''));
}
