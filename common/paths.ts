/** Locating the package's own files (config defaults) from source or from the build output. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The directory holding muster's package.json, found by walking up from this module. */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'config'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the muster package root (package.json with config/)');
    dir = up;
  }
  root = dir;
  return dir;
}
