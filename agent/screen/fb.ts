/**
 * Linux frame buffer capture (docs/files.md "Screen"): `fbcat <screen.fb_device>` (a binary PPM on
 * stdout), encoded as PNG in JavaScript.
 */
import { stat } from 'node:fs/promises';
import type { ScreenMethodImpl } from './method.js';
import { decodePpm, encodePng } from './png.js';

export const fb: ScreenMethodImpl = {
  name: 'fb',
  async find(cfg) {
    try {
      if (!(await stat(cfg.fb_device)).isCharacterDevice()) return null;
    } catch {
      return null;
    }
    return {
      argv: ['fbcat', cfg.fb_device],
      env: {},
      toPng: (out) => encodePng(decodePpm(out)),
      what: cfg.fb_device,
    };
  },
  absent: (stderr) => /no such device|no such file/i.test(stderr),
};
