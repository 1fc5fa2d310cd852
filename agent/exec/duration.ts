/**
 * Times as the seed executor writes them (docs/exec.md "The seed executor API"): Go durations
 * (`47h59m46.135436s`, `30s`, `1h30m`) parsed for step timeouts and config keys and written for
 * `ttl`, and RFC 3339 date-times with the board's UTC offset (`2022-11-16T21:59:49+08:00`).
 */

/** A Go duration: one or more `<number><unit>` with unit ns, us, µs, ms, s, m or h (no sign). */
export const GO_DURATION_PATTERN = '^(?:[0-9]+(?:\\.[0-9]*)?(?:ns|us|µs|ms|s|m|h))+$';
const GO_DURATION = new RegExp(GO_DURATION_PATTERN);
const PART = /([0-9]+(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a Go duration (`1h30m`, `500ms`, `2.5s`) to milliseconds, rounded.
 * @throws Error naming `field` when `text` is not a Go duration or is too long
 */
export function parseGoDuration(text: string, field = 'duration'): number {
  if (!GO_DURATION.test(text))
    throw new Error(`${field}: ${JSON.stringify(text)} is not a duration; e.g. 30s, 5m, 1h30m, 500ms`);
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) throw new Error(`${field}: ${text} is too long`);
  return Math.round(ms);
}

/**
 * A step timeout as a step gives it (common/exec.ts StepSpec `timeout`): whole seconds, or a Go
 * duration string; a bare number string counts as seconds.
 * @returns milliseconds, ≥ 1
 * @throws Error when it is neither, or zero
 */
export function parseStepTimeout(t: number | string): number {
  const ms = typeof t === 'number' ? t * 1000 : /^[0-9]+$/.test(t) ? Number(t) * 1000 : parseGoDuration(t, 'timeout');
  if (!Number.isSafeInteger(ms) || ms < 1) throw new Error(`timeout: ${JSON.stringify(t)} must be at least 1ms`);
  return ms;
}

function trimFraction(n: number, digits: number): string {
  return n
    .toFixed(digits)
    .replace(/\.?0+$/, '')
    .replace(/^$/, '0');
}

/**
 * `ms` written as Go's `time.Duration.String()` does: `0s`, `500ms`, `1.5s`, `1m0s`,
 * `47h59m46.135s` (sub-ms precision kept to µs). Negative durations get a leading `-`.
 */
export function formatGoDuration(ms: number): string {
  if (ms < 0) return `-${formatGoDuration(-ms)}`;
  if (ms === 0) return '0s';
  if (ms < 1) return `${trimFraction(ms * 1000, 3)}µs`;
  if (ms < 1000) return `${trimFraction(ms, 3)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  const sec = `${trimFraction(s, 6)}s`;
  if (h > 0) return `${h}h${m}m${sec}`;
  if (m > 0) return `${m}m${sec}`;
  return sec;
}

/**
 * `ms` since the epoch as RFC 3339 with the board's local offset and whole seconds, as Go's
 * `time.RFC3339` writes it: `2022-11-16T21:59:49+08:00`, or `...Z` when the offset is zero.
 */
export function rfc3339Local(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const p = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
  const base = `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  if (off === 0) return `${base}Z`;
  return `${base}${off > 0 ? '+' : '-'}${p(Math.trunc(off / 60))}:${p(off % 60)}`;
}

/** `ms` since the epoch as ISO 8601 with the board's offset and milliseconds (common/exec.ts times). */
export function isoLocal(ms: number): string {
  const r = rfc3339Local(ms);
  const frac = `.${String(new Date(ms).getMilliseconds()).padStart(3, '0')}`;
  return r.endsWith('Z') ? `${r.slice(0, -1)}${frac}Z` : `${r.slice(0, 19)}${frac}${r.slice(19)}`;
}
