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

/** Bounds of a {@link RateLimitedLog} (docs/operations.md "Logs"). */
export interface RateLimitOptions {
  /** Keys remembered, least recently logged forgotten first; default 1000. */
  maxKeys?: number;
  /** Lines written per interval over all keys together; default 50. */
  maxLinesPerInterval?: number;
}

/**
 * Logs at most once per `intervalMs` per key, then says how many were suppressed, so that a
 * flood of bad datagrams cannot flood the journal. Bounded against many senders too: it
 * remembers at most `maxKeys` keys (the least recently logged is forgotten first, never all at
 * once), and writes at most `maxLinesPerInterval` lines per interval over all keys; what that
 * budget holds back is counted in {@link suppressedTotal} and reported, as `suppressed_other`, on
 * the next line written.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly maxKeys: number;
  private readonly maxLines: number;
  private windowStart = 0;
  private linesInWindow = 0;
  private heldBack = 0;
  /** Lines not written since start, by the per-key interval or the overall budget. */
  suppressedTotal = 0;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    opts: RateLimitOptions = {},
  ) {
    this.maxKeys = Math.max(1, opts.maxKeys ?? 1000);
    this.maxLines = Math.max(1, opts.maxLinesPerInterval ?? 50);
  }

  /** Logs `msg` with `fields` at warn level unless `key` was logged within the interval. */
  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      this.suppressedTotal++;
      return;
    }
    if (now - this.windowStart >= this.intervalMs) {
      this.windowStart = now;
      this.linesInWindow = 0;
    }
    if (this.linesInWindow >= this.maxLines) {
      this.heldBack++;
      this.suppressedTotal++;
      return;
    }
    this.linesInWindow++;
    const other = this.heldBack;
    this.heldBack = 0;
    this.log.warn({ ...fields, suppressed: seen?.suppressed ?? 0, ...(other ? { suppressed_other: other } : {}) }, msg);
    // Re-inserted so that the map's order is least recently logged first.
    this.last.delete(key);
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > this.maxKeys) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
  }
}
