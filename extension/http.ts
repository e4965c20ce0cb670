import * as z from 'zod/mini';
import { RegistryHttpError, RegistryResponseError, RegistryTlsError, RegistryUnreachableError } from './errors.ts';

// One JSON request to the registry's API: a timeout, the access token as a
// Bearer credential, the registry's `{error, error_description}` turned into
// RegistryHttpError, a network failure into RegistryUnreachableError (an
// untrusted certificate into RegistryTlsError), and the
// answer validated with zod (documents from another server are parsed
// leniently: unknown fields are dropped, not rejected).

export const REQUEST_TIMEOUT_MS = 15_000;

export type Fetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

const errorSchema = z.object({ error: z.string(), error_description: z.optional(z.string()) });

/** Why a fetch failed, for people: undici's cause ("connect ECONNREFUSED 127.0.0.1:8787") rather than "fetch failed". */
function networkReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? err.cause.message : err.message;
}

/** A TLS failure (undici's cause codes: SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, …). */
function isTlsFailure(err: unknown): boolean {
  const code = err instanceof Error && err.cause instanceof Error ? (err.cause as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL/.test(code);
}

/**
 * fetch `${registry}${path}`; a request that gets no answer becomes
 * RegistryTlsError (an untrusted certificate) or RegistryUnreachableError,
 * their messages naming the registry after `prefix`.
 */
export async function fetchRegistry(fetchImpl: Fetch, registry: string, path: string, init: RequestInit, prefix = ''): Promise<Response> {
  try {
    return await fetchImpl(`${registry}${path}`, init);
  } catch (err) {
    if (isTlsFailure(err)) throw new RegistryTlsError(`${prefix}${registry} has a certificate this editor does not trust (${networkReason(err)})`, { cause: err });
    throw new RegistryUnreachableError(`${prefix}${registry} does not answer (${networkReason(err)})`, { cause: err });
  }
}

export interface JsonRequest {
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  accessToken?: string | undefined;
  body?: unknown;
}

export async function requestJson<S extends z.ZodMiniType>(fetchImpl: Fetch, registry: string, request: JsonRequest, schema: S | undefined): Promise<z.infer<S>> {
  const method = request.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  if (request.accessToken) headers.authorization = `Bearer ${request.accessToken}`;
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  const what = `${method} ${request.path.split('?')[0]}`;
  const res = await fetchRegistry(
    fetchImpl,
    registry,
    request.path,
    { method, headers, ...(request.body !== undefined && { body: JSON.stringify(request.body) }), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) },
    `${what}: `,
  );
  const text = await res.text().catch(() => '');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const error = errorSchema.safeParse(json);
    const detail = error.success ? `${error.data.error}${error.data.error_description ? `: ${error.data.error_description}` : ''}` : `HTTP ${res.status}`;
    throw new RegistryHttpError(res.status, error.success ? error.data.error : undefined, `${what} failed (${res.status}): ${detail}`, error.success ? error.data.error_description : undefined);
  }
  if (!schema) return undefined as z.infer<S>;
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new RegistryResponseError(`${what} returned an unexpected body${where}: ${issue?.message ?? 'not JSON'}`);
  }
  return parsed.data;
}
