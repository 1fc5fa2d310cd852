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
