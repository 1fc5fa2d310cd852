/** Locating the package's own files (config defaults) from source, the build output or a bundle. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What scripts/build-dist.mjs writes into an offline bundle (esbuild `define`). */
interface BundleBuild {
  version: string;
  commit: string;
}
declare const __MUSTER_BUILD__: BundleBuild | undefined;

/** The build of the offline bundle running this code; undefined in a checkout (source or dist/). */
export const BUNDLE: BundleBuild | undefined = typeof __MUSTER_BUILD__ === 'undefined' ? undefined : __MUSTER_BUILD__;

let root: string | undefined;

/**
 * The directory holding muster's package.json and config/, found by walking up from this module;
 * in a bundle, the bundle's top directory (this code is in its lib/).
 */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  if (BUNDLE) {
    root = path.dirname(dir);
    return root;
  }
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'config'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the muster package root (package.json with config/)');
    dir = up;
  }
  root = dir;
  return dir;
}
