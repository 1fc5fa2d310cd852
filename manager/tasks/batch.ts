/**
 * Batches and durations of a task (docs/exec.md "Batches"): `batch` as Salt takes it — a number of
 * nodes (`10`) or a share of the target (`"25%"`, rounded up, at least 1) — run as a sliding
 * window: the next node starts as soon as one finishes (after `batch_wait`).
 */

/** Why a batch or a duration was refused. */
export class SpecError extends Error {}

/**
 * The number of nodes run at once for `batch` over `nodes` nodes: all of them when absent.
 * @throws SpecError for a share outside 0..100 % or a count below 1
 */
export function batchSize(batch: number | string | null | undefined, nodes: number): number {
  const n = Math.max(1, nodes);
  if (batch === undefined || batch === null) return n;
  if (typeof batch === 'number') {
    if (!Number.isInteger(batch) || batch < 1)
      throw new SpecError(`batch ${batch}: give a whole number ≥ 1 or a share like 25%`);
    return Math.min(batch, n);
  }
  const m = /^(\d+(?:\.\d+)?)%$/.exec(batch.trim());
  if (m) {
    const share = Number(m[1]);
    if (!(share > 0 && share <= 100)) throw new SpecError(`batch ${batch}: a share must be over 0% and at most 100%`);
    return Math.min(n, Math.max(1, Math.ceil((n * share) / 100)));
  }
  if (/^\d+$/.test(batch.trim())) return batchSize(Number(batch), nodes);
  throw new SpecError(`batch ${JSON.stringify(batch)}: give a whole number ≥ 1 or a share like 25%`);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration in ms: a number of seconds, or a Go-style text (`500ms`, `30s`, `5m`, `1h30m`, `2d`).
 * @throws SpecError naming `field` when it cannot be read
 */
export function durationMs(v: number | string, field: string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new SpecError(`${field}: ${v} is not a duration`);
    return Math.round(v * 1000);
  }
  const t = v.trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    pos = re.lastIndex;
  }
  if (t === '' || pos !== t.length || !Number.isSafeInteger(Math.round(total))) {
    throw new SpecError(
      `${field}: cannot read ${JSON.stringify(v)} as a duration; e.g. 30 (seconds), 500ms, 30s, 5m, 1h30m`,
    );
  }
  return Math.round(total);
}
