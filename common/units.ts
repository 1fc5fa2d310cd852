/** Units an operator types: sizes such as `512M` for `--memory`. */

const UNIT_POWER: Record<string, number> = { '': 0, K: 1, M: 2, G: 3, T: 4 };

/**
 * Parses a size typed by an operator into bytes. All units are 1024-based (memory limits are
 * binary): `K`, `M`, `G`, `T`, optionally followed by `i` and/or `B` (`64Mi`, `64MiB`, `64MB`
 * all mean 64 × 1024²), case-insensitive; a plain number (optionally with `B`) is bytes. A
 * fractional number is allowed with a unit (`1.5G`) and rounded down to a whole byte.
 *
 * Examples: `67108864` → 67108864, `512M` → 536870912, `2G` → 2147483648, `64Mi` → 67108864,
 * `1.5G` → 1610612736, `100KiB` → 102400.
 *
 * @param text the size as typed
 * @param name what the size is, for the error message (e.g. `--memory`)
 * @returns bytes, a safe integer ≥ 0
 * @throws RangeError naming `name`, the text and the accepted forms, for anything else
 */
export function parseSize(text: string, name = 'size'): number {
  const bad = (why: string) =>
    new RangeError(
      `${name} ${JSON.stringify(text)}: ${why}; expected bytes or a number with a unit K, M, G or T (1024-based), e.g. 67108864, 512M, 2G, 64Mi, 1.5G`,
    );
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]?)(i?)(b?)\s*$/i.exec(text);
  if (!m) throw bad('not a size');
  const [, digits = '', unitRaw = '', iRaw = ''] = m;
  const unit = unitRaw.toUpperCase();
  if (unit === '' && iRaw !== '') throw bad('"i" needs a unit before it');
  if (unit === '' && !/^\d+(\.0+)?$/.test(digits)) throw bad('a byte count must be whole');
  const bytes = Math.floor(Number(digits) * 1024 ** (UNIT_POWER[unit] ?? 0));
  if (!Number.isSafeInteger(bytes)) throw bad('too large');
  return bytes;
}
