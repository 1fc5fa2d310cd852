/**
 * muster's version and build: from package.json and git in a checkout, from values esbuild wrote
 * into the bundle (`__MUSTER_BUILD__`, scripts/build-dist.mjs) in an offline bundle.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BUNDLE, packageRoot } from './paths.js';

/** The package version, e.g. `0.1.0`. */
export const VERSION: string =
  BUNDLE?.version ??
  (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

/** What `muster version` prints. */
export interface BuildInfo {
  /** The package version. */
  version: string;
  /** The git commit (short hash) the code was built from; `unknown` without git. */
  commit: string;
  /** The Node.js runtime running muster, e.g. `v24.22.3`. */
  runtime: string;
  /** The architecture of that runtime: `x64` or `arm64` (Node's names, as in the tarball names). */
  arch: string;
  /** True when running from an offline bundle (`make dist`), false from a checkout. */
  bundle: boolean;
}

/** The commit of a checkout: `git rev-parse --short HEAD` in the package root, `unknown` when that fails. */
function gitCommit(): string {
  try {
    const out = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: packageRoot(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).trim();
    return out || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Version, commit, runtime, architecture and whether this is a bundle. */
export function buildInfo(): BuildInfo {
  return {
    version: VERSION,
    commit: BUNDLE?.commit ?? gitCommit(),
    runtime: process.version,
    arch: process.arch,
    bundle: BUNDLE !== undefined,
  };
}
