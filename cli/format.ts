/** Plain-text tables and figures for the CLI. */

/** Renders rows as aligned columns under a header; `null`/undefined cells print as `-`. */
export function table(header: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [
    header,
    ...rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c)))),
  ];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `12.3` with one decimal, or null. */
export const num = (v: number | null | undefined, digits = 1): string | null =>
  v === null || v === undefined ? null : v.toFixed(digits);

/** Bytes in IEC units: `512 MiB`, `1.5 GiB`. */
export function bytes(v: number | null | undefined): string | null {
  if (v === null || v === undefined) return null;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let x = v;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

/** How long ago an ISO time was: `3s ago`, `5m ago`, `2h ago`, `4d ago`. */
export function ago(iso: string | null | undefined, now = Date.now()): string | null {
  if (!iso) return null;
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** An ISO time to the second, UTC: `2026-11-21T08:00:03Z` (what `--since` reads back), or null. */
export function isoSeconds(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z') : iso;
}

/** A figure as short as it is exact to 2 decimals: `85`, `91.25`, `0.5`, or null. */
export const figure = (v: number | null | undefined): string | null =>
  v === null || v === undefined ? null : Number.isInteger(v) ? String(v) : String(Number(v.toFixed(2)));

/** A duration in ms as the largest whole unit that `parseDuration` reads back: `30s`, `5m`, `1500ms`, `0`. */
export function duration(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Text made safe for one table cell: control characters (newlines, escapes) become spaces. */
export const oneLine = (s: string): string => s.replace(/\p{Cc}+/gu, ' ').trim();

/** Cuts `s` to at most `max` characters, marking a cut with `…`. */
export const truncate = (s: string, max: number): string =>
  s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;

/**
 * Truncates the last cell of every row so that `table(header, rows)` fits in `columns`
 * characters, but never below `min` characters; `columns` undefined leaves the rows as they are.
 */
export function fitLastColumn(
  header: string[],
  rows: (string | number | null | undefined)[][],
  columns: number | undefined,
  min = 30,
): (string | number | null | undefined)[][] {
  if (columns === undefined || header.length === 0) return rows;
  const last = header.length - 1;
  let used = 0;
  for (let i = 0; i < last; i++) {
    const w = Math.max(
      (header[i] ?? '').length,
      ...rows.map((r) => {
        const c = r[i];
        return c === null || c === undefined || c === '' ? 1 : String(c).length;
      }),
    );
    used += w + 2;
  }
  const room = Math.max(min, columns - used);
  return rows.map((r) => {
    const c = r[last];
    return typeof c === 'string' ? [...r.slice(0, last), truncate(c, room)] : r;
  });
}
