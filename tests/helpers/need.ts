/**
 * Gates for tests that need root, a command or a daemon. On a laptop they skip with a clear
 * message; under CI=true a skip is a failure, so CI always runs them all.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

/**
 * Options for `describe`/`test`: `{}` when nothing is missing, `{ skip: why }` otherwise. Under
 * CI=true it also registers a test that fails with the reason.
 */
export function needs(...missing: (string | false | undefined | null)[]): { skip?: string } {
  const why = missing.filter(Boolean).join('; ');
  if (!why) return {};
  if (process.env.CI === 'true') {
    test(`requirements: ${why}`, () =>
      assert.fail(`CI=true and a requirement is missing (a skip is a failure in CI): ${why}`));
  }
  return { skip: why };
}

/** A reason when not running as root. */
export const missingRoot = (what = 'network namespaces'): string | false =>
  process.getuid?.() === 0 ? false : `needs root for ${what}`;

/** A reason when `cmd` is not on PATH. */
export function missingCommand(cmd: string): string | false {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return false;
  } catch {
    return `needs the ${cmd} command`;
  }
}
