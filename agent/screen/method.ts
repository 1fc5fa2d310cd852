/**
 * One way to read a board's display (docs/files.md "Screen"): X11, Wayland (wlroots) or the Linux
 * frame buffer. Each method file exports one {@link ScreenMethodImpl}; agent/screen/index.ts lists
 * them, and agent/screen/capture.ts tries them in the order of `screen.methods`.
 */
import type { ScreenMethod } from '../../common/files.js';

/** The `screen.*` config keys a method reads. */
export interface ScreenConfig {
  methods: ScreenMethod[];
  timeout_ms: number;
  max_bytes: number;
  display: string;
  xauthority: string;
  x11_socket_dir: string;
  wayland_display: string;
  xdg_runtime_dir: string;
  fb_device: string;
}

/** A program to run for a capture: argv, extra environment, and how to turn its stdout into PNG. */
export interface CaptureCommand {
  argv: [string, ...string[]];
  env: Record<string, string>;
  /** Turns the program's stdout (at most screen.max_bytes) into PNG bytes. @throws on bad output */
  toPng(stdout: Buffer): Buffer;
  /** What was found, for messages (e.g. `DISPLAY=:0`). */
  what: string;
}

/** One capture method. */
export interface ScreenMethodImpl {
  readonly name: ScreenMethod;
  /**
   * Finds this method's display: the command to run, or null when the board has no such display
   * (no X socket, no Wayland socket, no frame buffer device). Never throws.
   */
  find(cfg: ScreenConfig): Promise<CaptureCommand | null>;
  /** Whether a failure message of the program says the display is not there after all. */
  absent(stderr: string): boolean;
}
