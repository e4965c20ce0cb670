import { format } from 'node:util';

export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

/**
 * One log record, on one line: values a caller chose (a client name, a URL, a
 * tool name) may hold control characters, and a newline among them would
 * forge a line of its own. Every control character (tab aside) is written as
 * an escape, `\n` as `\\n`, others as `\\u00XX`.
 */
export function logLine(message: string, args: unknown[]): string {
  return format(message, ...args).replace(/[\x00-\x08\x0a-\x1f\x7f\u2028\u2029]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** Lines on stderr, prefixed with the level; nothing secret is ever passed in. */
export function consoleLogger(level: LogLevel = (process.env.KEYGATE_LOG_LEVEL as LogLevel | undefined) ?? 'info'): Logger {
  const threshold = LEVELS[level] ?? LEVELS.info;
  const emit = (name: Exclude<LogLevel, 'silent'>) => (message: string, ...args: unknown[]) => {
    if (LEVELS[name] < threshold) return;
    process.stderr.write(`${name === 'warn' ? 'WARNING' : name}: ${logLine(message, args)}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that keeps its lines, for tests that assert what was (not) logged. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (name: string) => (message: string, ...args: unknown[]) => {
    lines.push(`${name}: ${logLine(message, args)}`);
  };
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}
