/**
 * The tiny glob dialect of the agent's exclude lists (`collect.network_exclude`,
 * `collect.disk_exclude_mounts`): `*` matches any run of characters (including none and
 * including `/`); every other character matches itself. There is no `?`, no classes, no escapes.
 */

/**
 * Whether `name` matches `pattern` as a whole (not a substring search).
 * @param pattern e.g. `veth*`, `/var/lib/docker/*`; a pattern without `*` must equal `name`
 * @param name an interface name or a mount point
 * @returns true on a match; never throws
 */
export function globMatch(pattern: string, name: string): boolean {
  // Iterative wildcard match with single-star backtracking: linear in practice, no regex escaping.
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.length && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (star >= 0) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * Whether `name` matches any of `patterns` (see {@link globMatch}).
 * @returns false for an empty list
 */
export function globMatchAny(patterns: readonly string[], name: string): boolean {
  return patterns.some((p) => globMatch(p, name));
}
