/**
 * Scoring of feasible nodes (docs/scheduling.md "Scoring"), as Nomad does it: with `freeCpu` and
 * `freeMem` the fractions of the node's cores and memory left free *after* the placement (0..1),
 *
 *   binpack = 20 − (10^freeCpu + 10^freeMem)       (0 on an empty node, 18 on a node filled up)
 *   spread  = (10^freeCpu + 10^freeMem) − 2        (its mirror: 18 on an empty node)
 *
 * both divided by 18 so a score is in 0..1; the highest wins. Pure.
 */

/** How feasible nodes are ranked. */
export type Scoring = 'binpack' | 'spread';

/** The scorings, for schemas and help texts. */
export const SCORINGS: readonly Scoring[] = ['binpack', 'spread'];

/** Steps of the 10^x table on [0, 1] used by {@link fastScore}. */
const STEPS = 4096;
const POW10 = new Float64Array(STEPS + 2);
for (let i = 0; i <= STEPS + 1; i++) POW10[i] = 10 ** (i / STEPS);

/** 10^x for x in [0, 1] by linear interpolation in a 4,096-step table: within 4e-7 of 10 ** x. */
function pow10(x: number): number {
  const f = x * STEPS;
  const i = f | 0;
  const a = POW10[i] as number;
  return a + ((POW10[i + 1] as number) - a) * (f - i);
}

/**
 * {@link score} with 10^x read from a table (the scheduler's hot path: one call per feasible node
 * per decision); differs from it by less than 1e-7 (bench/placement.ts, docs/scheduling.md "Scoring").
 */
export function fastScore(scoring: Scoring, freeCpu: number, freeMem: number): number {
  const c = Math.min(1, Math.max(0, freeCpu));
  const m = Math.min(1, Math.max(0, freeMem));
  const total = pow10(c) + pow10(m);
  return scoring === 'binpack' ? (20 - total) / 18 : (total - 2) / 18;
}

/**
 * The score of a node, 0..1 (higher is better).
 * @param freeCpu fraction of the node's cores free after the placement, 0..1 (clamped)
 * @param freeMem fraction of the node's memory free after the placement, 0..1 (clamped)
 */
export function score(scoring: Scoring, freeCpu: number, freeMem: number): number {
  const c = Math.min(1, Math.max(0, freeCpu));
  const m = Math.min(1, Math.max(0, freeMem));
  const total = 10 ** c + 10 ** m;
  return scoring === 'binpack' ? (20 - total) / 18 : (total - 2) / 18;
}
