/**
 * Wayland capture on wlroots compositors (docs/files.md "Screen"): `grim -` (PNG on stdout) with
 * `screen.wayland_display` and `screen.xdg_runtime_dir`, or else the first `wayland-<n>` socket
 * in a `/run/user/<uid>` directory.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ScreenMethodImpl } from './method.js';
import { PNG_SIGNATURE } from './png.js';

/** The runtime directory and socket name of a Wayland compositor, or null. */
export async function findWayland(
  runtimeDir: string,
  display: string,
  userRoot = '/run/user',
): Promise<{ dir: string; display: string } | null> {
  const dirs: string[] = [];
  if (runtimeDir) dirs.push(runtimeDir);
  else {
    try {
      for (const u of (await readdir(userRoot)).sort()) dirs.push(path.join(userRoot, u));
    } catch {
      return null;
    }
  }
  for (const dir of dirs) {
    let names: string[];
    try {
      names = display ? [display] : (await readdir(dir)).filter((n) => /^wayland-\d+$/.test(n)).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      try {
        if ((await stat(path.join(dir, n))).isSocket()) return { dir, display: n };
      } catch {
        // not there
      }
    }
  }
  return null;
}

export const wayland: ScreenMethodImpl = {
  name: 'wayland',
  async find(cfg) {
    const w = await findWayland(cfg.xdg_runtime_dir, cfg.wayland_display);
    if (!w) return null;
    return {
      argv: ['grim', '-'],
      env: { WAYLAND_DISPLAY: w.display, XDG_RUNTIME_DIR: w.dir },
      toPng: (out) => {
        if (!out.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('grim did not print a PNG');
        return out;
      },
      what: `WAYLAND_DISPLAY=${w.display} in ${w.dir}`,
    };
  },
  absent: (stderr) => /failed to (create|connect to) display|compositor doesn't support/i.test(stderr),
};
