/** Logging for both daemons: pino to stdout (the journal under systemd), plus a rate limiter. */
import pino, { type Logger } from 'pino';

export type { Logger };

/** Log levels a config may name. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A JSON-lines logger named after the daemon (`agent`, `manager`). */
export function createLogger(name: string, level: LogLevel): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}

/**
 * Logs at most once per `intervalMs` per key, then says how many were suppressed, so that a
 * flood of bad datagrams cannot flood the journal.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  /** Logs `msg` with `fields` at warn level unless `key` was logged within the interval. */
  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    this.log.warn({ ...fields, suppressed: seen?.suppressed ?? 0 }, msg);
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > 1000) this.last.clear();
  }
}
