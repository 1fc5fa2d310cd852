/**
 * Node liveness (docs/operations.md "Liveness"): online → suspect → offline, counted in missed
 * heartbeat rounds, so that one lost UDP datagram never marks a board offline. Pure logic, no clock.
 */
import type { NodeState, Transition } from '../common/api/nodes.js';

export type { NodeState, Transition };

/** Thresholds, in missed heartbeat rounds. */
export interface LivenessThresholds {
  suspect_after_rounds: number;
  offline_after_rounds: number;
}

/**
 * The state a node should be in after `missed` heartbeat rounds without a heartbeat.
 * @param missed rounds completed since the node's last heartbeat (0 = answered the last round)
 */
export function stateFor(missed: number, t: LivenessThresholds): NodeState {
  if (missed >= t.offline_after_rounds) return 'offline';
  if (missed >= t.suspect_after_rounds) return 'suspect';
  return 'online';
}

/**
 * Evaluates a node at the end of a round.
 * @returns the new state and the reason when it changes, otherwise null
 */
export function evaluate(
  current: NodeState,
  missed: number,
  t: LivenessThresholds,
): { to: NodeState; reason: string } | null {
  const to = stateFor(missed, t);
  // A heartbeat is the only way back up: rounds alone never raise a node.
  if (to === current || rank(to) < rank(current)) return null;
  return { to, reason: `missed ${missed} heartbeat round${missed === 1 ? '' : 's'}` };
}

function rank(s: NodeState): number {
  return s === 'online' ? 0 : s === 'suspect' ? 1 : 2;
}

/**
 * Evaluates a node on the WebSocket link (docs/links.md "Linked nodes"): the same thresholds,
 * counted in the node's own heartbeat intervals missed rather than in query rounds.
 * @param missed whole heartbeat intervals since its latest heartbeat
 */
export function evaluateLinked(
  current: NodeState,
  missed: number,
  t: LivenessThresholds,
): { to: NodeState; reason: string } | null {
  const change = evaluate(current, missed, t);
  return change && { to: change.to, reason: `missed ${missed} link heartbeat interval${missed === 1 ? '' : 's'}` };
}
