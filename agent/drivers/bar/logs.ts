/**
 * Size bound of bar workload logs (`<workDir>/stdout.log`, `stderr.log`).
 *
 * The workload writes straight into the files (O_APPEND fds it inherited), so the agent never
 * sits in the output path and output survives an agent restart. A periodic check (every
 * `intervalMs`) copies a file that grew past `maxBytes` to `<file>.1` (replacing the previous
 * one) and truncates it to 0; thanks to O_APPEND the workload's next write lands at the new end.
 * Costs of this simple copy-truncate scheme: each stream takes at most about 2 × maxBytes plus
 * what is written in one interval, and a line written between the copy and the truncate is lost.
 */
import { copyFile, stat, truncate } from 'node:fs/promises';
import type { Logger } from '../../../common/log.js';

/** Log file names in a component's workDir. */
export const LOG_FILES = ['stdout.log', 'stderr.log'] as const;

/** Keeps the watched log files under a size bound. */
export class LogBound {
  private readonly files = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param maxBytes size above which a log is rotated, bytes
   * @param intervalMs time between checks, ms
   */
  constructor(
    private readonly maxBytes: number,
    private readonly log: Logger,
    private readonly intervalMs = 5000,
  ) {}

  /** Starts bounding `paths` under `key` (a component uuid). */
  watch(key: string, paths: string[]): void {
    this.files.set(key, paths);
    if (!this.timer) {
      this.timer = setInterval(() => void this.check(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Stops bounding the files of `key`. */
  unwatch(key: string): void {
    this.files.delete(key);
    if (this.files.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** One check of every watched file (also called by the timer). */
  async check(): Promise<void> {
    for (const paths of [...this.files.values()]) {
      for (const p of paths) {
        try {
          const st = await stat(p);
          if (st.size <= this.maxBytes) continue;
          await copyFile(p, `${p}.1`);
          await truncate(p, 0);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
            this.log.debug({ file: p, err: (err as Error).message }, 'log rotation failed');
          }
        }
      }
    }
  }
}
