import { format } from 'node:util';

export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

/** Lines on stderr, prefixed with the level; nothing secret is ever passed in. */
export function consoleLogger(level: LogLevel = (process.env.KEYGATE_LOG_LEVEL as LogLevel | undefined) ?? 'info'): Logger {
  const threshold = LEVELS[level] ?? LEVELS.info;
  const emit = (name: Exclude<LogLevel, 'silent'>) => (message: string, ...args: unknown[]) => {
    if (LEVELS[name] < threshold) return;
    process.stderr.write(`${name === 'warn' ? 'WARNING' : name}: ${format(message, ...args)}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that keeps its lines, for tests that assert what was (not) logged. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (name: string) => (message: string, ...args: unknown[]) => {
    lines.push(`${name}: ${format(message, ...args)}`);
  };
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}
