/**
 * X11 capture (docs/files.md "Screen"): `xwd -root -silent` against `screen.display`, or else the
 * lowest display with a socket in `screen.x11_socket_dir` (`/tmp/.X11-unix/X<n>`), with
 * `screen.xauthority`, or else the XAUTHORITY of a running process of that display (found in
 * /proc), decoded and encoded as PNG in JavaScript (agent/screen/png.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ScreenMethodImpl } from './method.js';
import { decodeXwd, encodePng } from './png.js';

/** Most processes whose environment is read to find XAUTHORITY. */
const MAX_PROCS = 4096;

/** The lowest display number with a socket in `dir`, as `:<n>`, or null. */
export async function findDisplay(dir: string): Promise<string | null> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return null;
  }
  const nums = names
    .map((n) => /^X(\d+)$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  return nums.length > 0 ? `:${nums[0]}` : null;
}

/** The XAUTHORITY of a process whose DISPLAY is `display` (or `display.0`), or '' when none is found. */
export async function findXauthority(display: string, procRoot = '/proc'): Promise<string> {
  let pids: string[];
  try {
    pids = (await readdir(procRoot)).filter((p) => /^\d+$/.test(p)).slice(0, MAX_PROCS);
  } catch {
    return '';
  }
  for (const pid of pids) {
    let env: string;
    try {
      env = (await readFile(path.join(procRoot, pid, 'environ'))).subarray(0, 65536).toString('utf8');
    } catch {
      continue;
    }
    const vars = env.split('\0');
    const d = vars.find((v) => v.startsWith('DISPLAY='))?.slice(8);
    if (d !== display && d !== `${display}.0`) continue;
    const a = vars.find((v) => v.startsWith('XAUTHORITY='))?.slice(11);
    if (a) return a;
  }
  return '';
}

export const x11: ScreenMethodImpl = {
  name: 'x11',
  async find(cfg) {
    const display = cfg.display || (await findDisplay(cfg.x11_socket_dir));
    if (!display) return null;
    const xauth = cfg.xauthority || (await findXauthority(display));
    return {
      argv: ['xwd', '-root', '-silent'],
      env: { DISPLAY: display, ...(xauth ? { XAUTHORITY: xauth } : {}) },
      toPng: (out) => encodePng(decodeXwd(out)),
      what: `DISPLAY=${display}`,
    };
  },
  absent: (stderr) => /unable to open display|cannot open display/i.test(stderr),
};
