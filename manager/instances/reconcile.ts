/**
 * One reconcile step of one instance (docs/scheduling.md "Reconcile"): from the desired state,
 * the components the instance manages (allocs) and what the reports say, the actions to take now.
 * Pure (the controller, ./controller.ts, executes the actions and records them), so it is tested
 * against recorded sequences of reports.
 *
 * Phases of an alloc and how they change:
 *   starting → running   its node reports it RUNNING (SLEEPING and PENDING keep it starting)
 *   starting → failed    reported FAILED or STOPPED, or not reported within instances.start_timeout_ms
 *   running  → failed    reported FAILED or STOPPED, or missing from a report newer than the last that listed it
 *   starting|running → lost   its node offline longer than reschedule_after_ms
 *   lost     → stopping  its node is back and still runs it (the stale copy: the slot has a replacement)
 *   lost     → gone      its node is back and does not report it
 *   failed   → stopping  at once (the agent's record is cleaned up); the slot restarts per policy
 *   stopping → gone      the stop succeeded, or its node no longer reports it
 *
 * Slots (`group/index` for index < count) of a running instance:
 *   - no starting/running alloc: start one — at once when missing or lost (reschedule), after the
 *     restart policy's delay when its last one failed (attempts within interval, then wait);
 *   - an alloc of an older group version: replaced (rolling update), max_parallel slots of the
 *     group at a time; the new one is started beside the old, the old stopped once the new has
 *     been RUNNING for min_healthy_ms;
 *   - more than one alloc of the current version: the extras are stopped.
 * Allocs of a removed group or beyond count, and all of a stopped instance, are stopped.
 */
import type { ComponentState } from '../../common/protocol.js';
import type { NodeState } from '../liveness.js';
import { type Alloc, type Instance, restartOf, slotKey, updateOf } from './model.js';

/** What the reports say about a node. */
export interface NodeObs {
  state: NodeState | 'unknown';
  /** ms since its state began. */
  since: number;
  /** ms of its latest resource report, 0 when none. */
  reportAt: number;
}

/** What the step reads of the world. */
export interface Observation {
  /** The node's liveness and report time. */
  node(id: string): NodeObs;
  /** The state `node`'s latest report gives `uuid`, undefined when it does not list it. */
  reported(node: string, uuid: string): ComponentState | undefined;
  /** When `uuid` was last seen listed in a report of its node (ms; 0 when never this run). */
  seenAt(uuid: string): number;
  /** Whether an operation on `uuid` is under way (a start or stop not answered yet). */
  busy(uuid: string): boolean;
}

/** Settings of the step (docs/configuration.md "instances"). */
export interface ReconcileConfig {
  /** Default of a group's reschedule_after_ms. */
  reschedule_after_ms: number;
  /** A starting alloc not reported this long (ms after its phase began) has failed. */
  start_timeout_ms: number;
}

/** An action of a step. */
export type Action =
  | {
      kind: 'phase';
      uuid: string;
      phase: Alloc['phase'];
      reason: string;
      /** The event recorded: running, failed, lost. */
      event: string;
    }
  | {
      kind: 'start';
      group: string;
      index: number;
      /** missing, restart, reschedule, update */
      reason: 'missing' | 'restart' | 'reschedule' | 'update';
      /** The alloc it replaces (update, reschedule), if any. */
      replaces: string | null;
    }
  | { kind: 'stop'; uuid: string; reason: string; event: string }
  | { kind: 'forget'; uuid: string; reason: string }
  | { kind: 'remove-instance' };

const ACTIVE_REPORTED = new Set<ComponentState>(['PENDING', 'RUNNING', 'SLEEPING']);

/**
 * The actions of one step for `inst`. Phase actions come first and are already applied to the
 * copies the slot rules read, so one step goes as far as the observation allows.
 */
export function reconcileStep(
  inst: Instance,
  allocs: readonly Alloc[],
  obs: Observation,
  now: number,
  cfg: ReconcileConfig,
): Action[] {
  const out: Action[] = [];
  const work = allocs.map((a) => ({ ...a }));
  const stopping = new Set<string>();
  const stop = (a: Alloc, reason: string, event: string) => {
    if (stopping.has(a.uuid)) return;
    stopping.add(a.uuid);
    out.push({ kind: 'stop', uuid: a.uuid, reason, event });
    a.phase = 'stopping';
  };
  const setPhase = (a: Alloc, phase: Alloc['phase'], reason: string, event: string) => {
    out.push({ kind: 'phase', uuid: a.uuid, phase, reason, event });
    a.phase = phase;
    a.phase_at = now;
    a.reason = reason;
    if (phase === 'running') a.running_since = now;
  };

  // 1. Each alloc's phase from the reports.
  for (const a of work) {
    if (obs.busy(a.uuid)) continue;
    const n = obs.node(a.node);
    const r = obs.reported(a.node, a.uuid);
    const g = inst.spec.groups[a.group];
    const after = g?.reschedule_after_ms ?? cfg.reschedule_after_ms;
    const gone = n.state === 'offline' || n.state === 'unknown';
    const down = gone && now - n.since >= after;
    if (n.state === 'unknown' && (a.phase === 'lost' || a.phase === 'stopping' || a.phase === 'failed')) {
      out.push({
        kind: 'forget',
        uuid: a.uuid,
        reason: `node ${a.node} is no longer known (removed from the registry)`,
      });
      continue;
    }
    switch (a.phase) {
      case 'starting':
        if (r === 'RUNNING') setPhase(a, 'running', `reported RUNNING on ${a.node}`, 'running');
        else if (r === 'FAILED' || r === 'STOPPED') setPhase(a, 'failed', `reported ${r} on ${a.node}`, 'failed');
        else if (down)
          setPhase(a, 'lost', `node ${a.node} offline for ${Math.round((now - n.since) / 1000)} s`, 'lost');
        else if (r === undefined && !gone && now - a.phase_at > cfg.start_timeout_ms)
          setPhase(a, 'failed', `not reported by ${a.node} within ${cfg.start_timeout_ms} ms of its start`, 'failed');
        break;
      case 'running':
        if (r === 'FAILED' || r === 'STOPPED') setPhase(a, 'failed', `reported ${r} on ${a.node}`, 'failed');
        else if (down)
          setPhase(a, 'lost', `node ${a.node} offline for ${Math.round((now - n.since) / 1000)} s`, 'lost');
        else if (r === undefined && n.state === 'online' && n.reportAt > obs.seenAt(a.uuid) && obs.seenAt(a.uuid) > 0)
          setPhase(a, 'failed', `no longer reported by ${a.node}`, 'failed');
        break;
      case 'lost':
        if (n.state === 'online' && n.reportAt > n.since) {
          if (r !== undefined && ACTIVE_REPORTED.has(r))
            stop(a, `node ${a.node} is back and still runs it; the slot has a replacement`, 'stale');
          else if (r === 'FAILED') stop(a, `node ${a.node} is back; cleaning up its FAILED record`, 'stale');
          else out.push({ kind: 'forget', uuid: a.uuid, reason: `node ${a.node} is back and does not run it` });
        }
        break;
      case 'stopping':
        if ((r === undefined || r === 'STOPPED') && n.state === 'online' && n.reportAt > a.phase_at)
          out.push({
            kind: 'forget',
            uuid: a.uuid,
            reason: r ? `reported STOPPED by ${a.node}` : `no longer reported by ${a.node}`,
          });
        else if (n.state === 'online') stop(a, a.reason ?? 'stopping', 'stop-retry');
        break;
      case 'failed':
        break;
    }
  }

  // 2. Failed allocs are cleaned up; their slot restarts per policy (below).
  const failedSlots = new Set<string>();
  for (const a of work) {
    if (a.phase !== 'failed' || obs.busy(a.uuid)) continue;
    failedSlots.add(slotKey(a.group, a.index));
    if (obs.node(a.node).state === 'online') stop(a, `failed: ${a.reason ?? ''}`, 'stop-component');
  }

  const live = (a: Alloc) => a.phase === 'starting' || a.phase === 'running';

  // 3. A stopped or removed instance: everything goes.
  if (inst.status !== 'running') {
    for (const a of work) if (live(a) && !obs.busy(a.uuid)) stop(a, `instance ${inst.status}`, 'stop-component');
    if (inst.status === 'removing') {
      // What can still be stopped is waited for; what sits on an offline or forgotten node is let go.
      const reachable = (a: Alloc) => {
        const st = obs.node(a.node).state;
        return st === 'online' || st === 'suspect';
      };
      if (!work.some((a) => reachable(a) || obs.busy(a.uuid))) {
        for (const a of work)
          out.push({
            kind: 'forget',
            uuid: a.uuid,
            reason: `instance removed; node ${a.node} is unreachable, the component may still run there`,
          });
        out.push({ kind: 'remove-instance' });
      }
    }
    return out;
  }

  // 4. Allocs outside the spec.
  for (const a of work) {
    const g = inst.spec.groups[a.group];
    if ((!g || a.index >= g.count) && live(a) && !obs.busy(a.uuid))
      stop(
        a,
        g ? `index ${a.index} beyond count ${g.count}` : `group ${a.group} removed from the spec`,
        'stop-component',
      );
  }

  // 5. Slots.
  for (const [name, g] of Object.entries(inst.spec.groups)) {
    const version = inst.state.versions[name] ?? inst.version;
    const policy = restartOf(g);
    const update = updateOf(g);
    const bySlot = new Map<number, Alloc[]>();
    for (const a of work) {
      if (a.group !== name || a.index >= g.count) continue;
      let l = bySlot.get(a.index);
      if (!l) {
        l = [];
        bySlot.set(a.index, l);
      }
      l.push(a);
    }
    /** Whether slot `key` may start a component now: no failure pending, or the restart policy allows it. */
    const policyAllows = (key: string): boolean => {
      const rs = inst.state.restarts[key];
      if (!failedSlots.has(key) && (rs?.failed_at ?? null) === null) return true;
      const failedAt = rs?.failed_at ?? now;
      const recent = (rs?.times ?? []).filter((t) => now - t < policy.interval_ms);
      if (recent.length >= policy.attempts) return false; // waits until the oldest attempt leaves the interval
      const delay = Math.min(policy.max_delay_ms, policy.delay_ms * policy.backoff ** recent.length);
      return now - failedAt >= delay;
    };
    let updating = 0;
    const outdated: { index: number; old: Alloc }[] = [];
    for (let i = 0; i < g.count; i++) {
      const mine = bySlot.get(i) ?? [];
      const active = mine.filter(live);
      const busy = mine.some((a) => obs.busy(a.uuid) && (a.phase === 'starting' || a.phase === 'running'));
      if (active.length === 0) {
        if (busy) continue;
        const key = slotKey(name, i);
        const rs = inst.state.restarts[key];
        const failed = failedSlots.has(key) || (rs?.failed_at ?? null) !== null;
        if (!failed) {
          const lost = mine.find((a) => a.phase === 'lost');
          out.push({
            kind: 'start',
            group: name,
            index: i,
            reason: lost ? 'reschedule' : 'missing',
            replaces: lost?.uuid ?? null,
          });
          continue;
        }
        if (policyAllows(key)) out.push({ kind: 'start', group: name, index: i, reason: 'restart', replaces: null });
        continue;
      }
      const cur = active.filter((a) => a.version === version);
      const old = active.filter((a) => a.version !== version);
      if (cur.length > 1) {
        const keep = cur.find((a) => a.phase === 'running') ?? cur[0];
        for (const a of cur)
          if (a !== keep && !obs.busy(a.uuid)) stop(a, 'a second component of one slot', 'stop-component');
      }
      if (old.length > 0 && cur.length > 0) {
        updating++;
        const fresh = cur.find((a) => a.phase === 'running' && a.running_since !== null);
        if (fresh && fresh.running_since !== null && now - fresh.running_since >= update.min_healthy_ms) {
          for (const a of old)
            if (!obs.busy(a.uuid))
              stop(
                a,
                `replaced by ${fresh.uuid} (version ${version}, RUNNING for ${now - fresh.running_since} ms)`,
                'replaced',
              );
        }
      } else if (old.length > 0 && !busy) {
        for (const a of old.slice(1))
          if (!obs.busy(a.uuid)) stop(a, 'a second component of one slot', 'stop-component');
        // A replacement that failed is tried again per the restart policy, not at once.
        if (policyAllows(slotKey(name, i))) outdated.push({ index: i, old: old[0] as Alloc });
        else updating++;
      }
    }
    for (const o of outdated) {
      if (updating >= update.max_parallel) break;
      updating++;
      out.push({ kind: 'start', group: name, index: o.index, reason: 'update', replaces: o.old.uuid });
    }
  }
  return out;
}
