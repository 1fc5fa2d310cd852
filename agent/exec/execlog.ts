/**
 * The exec log on the board (docs/exec.md "Exec log"; seed 记录执行日志): one JSON line per step
 * start and end in `<data_dir>/exec.log` (mode 0600), rotated to `exec.log.1` past
 * `exec.log_max_bytes`. env_vars whose names look secret are written `NAME=***`
 * (common/redact.ts), and URLs in the command text lose their credentials. Writes are queued so
 * that a line is never torn; a failing disk is counted by the caller's `onError`, never thrown.
 */
import { appendFile, mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { redactEnvVar, redactText } from '../../common/redact.js';

/** One line of the exec log. */
export interface ExecLogEntry {
  event: 'start' | 'end';
  task: string;
  step: number;
  name: string;
  command_type: string;
  /** The command's first 256 characters, or the command-set entry's name and args. */
  command: string;
  env?: string[];
  state?: string;
  exit_code?: number | null;
  signal?: string | null;
  duration_ms?: number;
  source: string;
}

/** Appends exec log lines to one file with size-based rotation. */
export class ExecLog {
  readonly file: string;
  private chain: Promise<void> = Promise.resolve();
  private size = -1;

  constructor(
    dataDir: string,
    private readonly maxBytes: number,
    private readonly onError: (err: Error) => void = () => {},
  ) {
    this.file = path.join(dataDir, 'exec.log');
  }

  /** Queues one line (redacted); resolves when it is written. */
  write(e: ExecLogEntry): Promise<void> {
    const line = `${JSON.stringify({
      at: new Date().toISOString(),
      ...e,
      command: redactText(e.command.slice(0, 256)),
      ...(e.env ? { env: e.env.map(redactEnvVar) } : {}),
    })}\n`;
    this.chain = this.chain.then(() => this.append(line)).catch((err: Error) => this.onError(err));
    return this.chain;
  }

  private async append(line: string): Promise<void> {
    if (this.size < 0) {
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      this.size = await stat(this.file).then(
        (s) => s.size,
        () => 0,
      );
    }
    if (this.size + line.length > this.maxBytes && this.size > 0) {
      await rename(this.file, `${this.file}.1`);
      this.size = 0;
    }
    await appendFile(this.file, line, { mode: 0o600 });
    this.size += Buffer.byteLength(line);
  }
}
