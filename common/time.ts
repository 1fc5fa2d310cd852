/**
 * Times given by operators: `--since` of `muster alerts` / `muster history` and the `since`
 * query parameter of the REST API.
 */

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parses a point in time: a duration back from now (`90s`, `15m`, `2h`, `7d`, `1w`), an
 * ISO-8601 date or date-time (`2026-11-21` is midnight UTC; `2026-11-21T08:00:00Z`; a date-time
 * without a zone is the local time), or seconds (10 digits) or ms (13 digits) since the epoch.
 * @param field what to name in the error (e.g. `--since`)
 * @returns ms since the epoch
 * @throws Error `<field>: ...` saying what is accepted
 */
export function parseSince(text: string, field = 'since', now = Date.now()): number {
  const t = text.trim();
  const ok = (ms: number) => Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS;
  const rel = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(t);
  if (rel) {
    const ms = now - Number(rel[1]) * (UNIT_MS[rel[2] as string] as number);
    if (ok(ms)) return ms;
  }
  // 10 digits: seconds (`date +%s`); 13: milliseconds.
  if (/^\d{10}$/.test(t)) return Number(t) * 1000;
  if (/^\d{13}$/.test(t)) return Number(t);
  const date = /^(\d{4})-(\d{2})-(\d{2})/.exec(t);
  if (date) {
    const ms = Date.parse(t);
    // Date.parse rolls 2026-02-30 over to March: refuse a day the month does not have.
    const [, y, m, d] = date.map(Number) as [number, number, number, number];
    const check = new Date(Date.UTC(y, m - 1, d));
    if (ok(ms) && check.getUTCMonth() === m - 1 && check.getUTCDate() === d) return ms;
  }
  throw new Error(
    `${field}: cannot read ${JSON.stringify(text)} as a time; give a duration back from now (30m, 2h, 7d), an ISO date-time (2026-11-21T08:00:00Z), or seconds (10 digits) or ms (13 digits) since the epoch`,
  );
}

/** Largest time a JavaScript Date holds, ms from the epoch either way. */
const MAX_DATE_MS = 8.64e15;

/**
 * Parses a duration: `500ms`, `30s`, `5m`, `1h`, `2d`, or a bare number of ms.
 * @returns ms
 * @throws Error `<field>: ...`
 */
export function parseDuration(text: string, field = 'duration'): number {
  const t = text.trim();
  const m = /^(\d+(?:\.\d+)?)\s*(ms|[smhdw])?$/.exec(t);
  if (!m) throw new Error(`${field}: cannot read ${JSON.stringify(text)} as a duration; e.g. 500ms, 30s, 5m, 1h, 2d`);
  const unit = m[2] ?? 'ms';
  const ms = Math.round(Number(m[1]) * (unit === 'ms' ? 1 : (UNIT_MS[unit] as number)));
  if (!Number.isSafeInteger(ms)) throw new Error(`${field}: ${JSON.stringify(text)} is too long a duration`);
  return ms;
}
