import { readFileSync } from 'node:fs';

// The CLI's side of the admin API: JSON over HTTP with the admin's token, and
// the API's own error form ({"error","error_description"}) turned into an
// error the CLI prints as is.

/** The registry the CLI talks to without --registry, KEYGATE_REGISTRY or a URL argument: the embedded default's address. */
export const DEFAULT_REGISTRY = 'http://127.0.0.1:8787';

/** An answer of the registry that is not a success, or a registry that cannot be reached. */
export class ApiError extends Error {
  constructor(
    readonly status: number | undefined,
    readonly error: string,
    readonly description: string,
  ) {
    super(status === undefined ? description : `${status} ${error}: ${description}`);
  }
}

/** A mistake in how the command was called (exit code 2). */
export class UsageError extends Error {}

export interface ApiTarget {
  /** The registry's base URL, no trailing slash. */
  registry: string;
  token: string;
}

export interface ApiAnswer {
  status: number;
  body: unknown;
  /** The raw text (for JSONL exports). */
  text: string;
}

/** Sent with every request, so the registry's audit can say a change came through the CLI. */
export const USER_AGENT = `keygate-registry-cli/${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}`;

export async function request(target: ApiTarget, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  const url = new URL(`${target.registry}/api/v1${path}`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = { authorization: `Bearer ${target.token}`, accept: 'application/json', 'user-agent': USER_AGENT, ...(payload !== undefined && { 'content-type': 'application/json' }) };
  let res: { status: number; statusText: string; contentType: string; text: string };
  try {
    res = await exchange(url, method, headers, payload);
  } catch (err) {
    throw new ApiError(undefined, 'unreachable', `cannot reach the registry at ${target.registry}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { text } = res;
  let parsed: unknown = text;
  if (res.contentType.includes('application/json') && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // leave the text as it is
    }
  }
  if (res.status >= 400) {
    const e = parsed as { error?: unknown; error_description?: unknown };
    const error = typeof e?.error === 'string' ? e.error : `http_${res.status}`;
    const description = typeof e?.error_description === 'string' ? e.error_description : text.slice(0, 300) || res.statusText;
    throw new ApiError(res.status, error, description);
  }
  return { status: res.status, body: parsed, text };
}

/**
 * One HTTP exchange through node:http(s) rather than fetch: a command makes
 * one or two requests, and fetch's first use costs more than that (it loads
 * undici and compiles its parser; docs/performance.md, Start-up).
 */
async function exchange(url: URL, method: string, headers: Record<string, string>, payload: string | undefined) {
  const { request: send } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise<{ status: number; statusText: string; contentType: string; text: string }>((resolve, reject) => {
    const req = send(url, { method, headers, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', contentType: String(res.headers['content-type'] ?? ''), text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within 30 s'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
}

/** `--file path.yaml|path.json`, or `-` for standard input: YAML (JSON is YAML too). The YAML parser loads only here (docs/performance.md). */
export async function readInput(file: string | undefined, stdin: () => string): Promise<Record<string, unknown>> {
  if (file === undefined) throw new UsageError('this command needs --file PATH (YAML or JSON), or --file - to read standard input');
  let text: string;
  try {
    text = file === '-' ? stdin() : readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { parse: parseYaml } = await import('yaml');
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new UsageError(`${file === '-' ? 'standard input' : file} is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`${file === '-' ? 'standard input' : file} must hold one object (a mapping), not ${Array.isArray(value) ? 'a list' : String(value)}`);
  return value as Record<string, unknown>;
}

export const enc = encodeURIComponent;
