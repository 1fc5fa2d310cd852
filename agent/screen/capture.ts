/**
 * Screen capture (docs/files.md "Screen"): the methods of `screen.methods` are tried in order; the
 * first whose display is found and whose program succeeds gives the PNG. A board where no method
 * finds a display is refused with `no_display` (never an empty image); a display found whose
 * capture fails with `capture_failed` naming each method's reason. Bounds: the whole capture
 * within `screen.timeout_ms` (the program is killed past it), the program's output within
 * `screen.max_bytes` (killed past it), one capture at a time (callers meanwhile share its result).
 */
import { spawn } from 'node:child_process';
import type { ScreenMethod } from '../../common/files.js';
import { FileRefusal } from '../files/paths.js';
import { SCREEN_METHOD_IMPLS } from './index.js';
import type { CaptureCommand, ScreenConfig, ScreenMethodImpl } from './method.js';

/** A capture: the PNG and the method that made it. */
export interface Capture {
  png: Buffer;
  method: ScreenMethod;
  ms: number;
}

type Run = { ok: true; stdout: Buffer } | { ok: false; why: string; stderr: string };

/** Runs a capture program within the time and size bounds. */
function runCapture(cmd: CaptureCommand, timeoutMs: number, maxBytes: number, configuredMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd.argv[0], cmd.argv.slice(1), {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...cmd.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let bytes = 0;
    let stderr = '';
    let why: string | null = null;
    const kill = (reason: string) => {
      why ??= reason;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(`took longer than ${configuredMs} ms (screen.timeout_ms)`), timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes > maxBytes) kill(`printed more than ${maxBytes} bytes (screen.max_bytes)`);
      else out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 4096) stderr += c.toString('utf8');
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({
        ok: false,
        why: err.code === 'ENOENT' ? `${cmd.argv[0]} is not installed` : err.message,
        stderr: '',
      });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (why) return resolve({ ok: false, why, stderr });
      if (code !== 0)
        return resolve({
          ok: false,
          why: `${cmd.argv[0]} exited ${code ?? signal}: ${stderr.trim().slice(0, 300)}`,
          stderr,
        });
      resolve({ ok: true, stdout: Buffer.concat(out) });
    });
  });
}

/** Captures the screen as configured; see the module comment. */
export class ScreenCapturer {
  private current: Promise<Capture> | null = null;

  /** @param methods the implementations by name (default agent/screen/index.ts; tests pass others) */
  constructor(
    private readonly cfg: ScreenConfig,
    private readonly methods: Readonly<Record<ScreenMethod, ScreenMethodImpl>> = SCREEN_METHOD_IMPLS,
  ) {}

  /**
   * A PNG of the display.
   * @throws FileRefusal no_display (no method found a display), capture_failed (with each reason)
   */
  capture(): Promise<Capture> {
    if (!this.current) {
      this.current = this.run().finally(() => {
        this.current = null;
      });
    }
    return this.current;
  }

  private async run(): Promise<Capture> {
    const t0 = Date.now();
    const deadline = t0 + this.cfg.timeout_ms;
    const failures: string[] = [];
    for (const name of this.cfg.methods) {
      const m = this.methods[name];
      const cmd = await m.find(this.cfg);
      if (!cmd) continue;
      const left = deadline - Date.now();
      if (left <= 0) {
        failures.push(`${name}: no time left (screen.timeout_ms = ${this.cfg.timeout_ms})`);
        break;
      }
      const r = await runCapture(cmd, left, this.cfg.max_bytes, this.cfg.timeout_ms);
      if (!r.ok) {
        if (m.absent(r.stderr)) continue;
        failures.push(`${name} (${cmd.what}): ${r.why}`);
        continue;
      }
      try {
        const png = cmd.toPng(r.stdout);
        if (png.length > this.cfg.max_bytes) {
          failures.push(`${name}: the PNG is larger than ${this.cfg.max_bytes} bytes (screen.max_bytes)`);
          continue;
        }
        return { png, method: name, ms: Date.now() - t0 };
      } catch (err) {
        failures.push(`${name} (${cmd.what}): ${(err as Error).message}`);
      }
    }
    if (failures.length === 0)
      throw new FileRefusal(
        'no_display',
        `no display on this board: tried ${this.cfg.methods.join(', ')} (screen.methods) and found no X11 socket, Wayland socket or frame buffer`,
      );
    throw new FileRefusal('capture_failed', `the screen could not be captured: ${failures.join('; ')}`);
  }
}
