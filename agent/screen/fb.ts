/**
 * Linux frame buffer capture (docs/files.md "Screen"): `fbcat <screen.fb_device>` (a binary PPM on
 * stdout), encoded as PNG in JavaScript; on a board with `fbgrab` and no `fbcat`,
 * `fbgrab -d <screen.fb_device> <temporary file>` (a PNG, then printed and deleted).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ScreenMethodImpl } from './method.js';
import { decodePpm, encodePng, PNG_SIGNATURE } from './png.js';

/** Whether `name` is an executable in a directory of PATH. */
export async function onPath(name: string, pathVar = process.env.PATH ?? '/usr/bin:/bin'): Promise<boolean> {
  for (const dir of pathVar.split(':')) {
    if (!dir) continue;
    try {
      await access(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

export const fb: ScreenMethodImpl = {
  name: 'fb',
  async find(cfg) {
    try {
      if (!(await stat(cfg.fb_device)).isCharacterDevice()) return null;
    } catch {
      return null;
    }
    if (!(await onPath('fbcat')) && (await onPath('fbgrab')))
      return {
        // fbgrab writes a file (not a pipe: the agent's stdout for it is a socket, which
        // /dev/stdout cannot be opened on), printed and deleted by the shell.
        argv: [
          'sh',
          '-c',
          't=$(mktemp) || exit 1; fbgrab -d "$1" "$t" >&2 && cat "$t"; s=$?; rm -f "$t"; exit $s',
          'sh',
          cfg.fb_device,
        ],
        env: {},
        toPng: (out) => {
          if (!out.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('fbgrab did not print a PNG');
          return out;
        },
        what: `${cfg.fb_device} (fbgrab)`,
      };
    return {
      argv: ['fbcat', cfg.fb_device],
      env: {},
      toPng: (out) => encodePng(decodePpm(out)),
      what: cfg.fb_device,
    };
  },
  absent: (stderr) => /no such device|no such file/i.test(stderr),
};
