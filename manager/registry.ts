/**
 * The node registry: every board the manager has heard, keyed by node id `box-slot-cpu`
 * (DESIGN.md "Node id"), with its latest heartbeat and resource report, liveness, and identity
 * conflicts (two boards claiming one position: both shown, an event raised).
 *
 * Reports from one address form a *board*; a node is the position a board claims. A resource
 * report names only its host_ip, so it is matched to its node through the board's heartbeat.
 */
import { EventEmitter } from 'node:events';
import type { HeartbeatData, ResourceData } from '../common/protocol.js';
import { evaluate, type LivenessThresholds, type NodeState, type Transition } from './liveness.js';

/** What the manager knows of one reporting address. */
export interface Board {
  host_ip: string;
  heartbeat: HeartbeatData | null;
  /** ms since epoch of the latest heartbeat, 0 = none yet. */
  heartbeatAt: number;
  /** Round number current when the latest heartbeat arrived. */
  lastRound: number;
  resource: ResourceData | null;
  resourceAt: number;
}

/** One position in the chassis and the boards that claim it. */
export interface NodeRecord {
  id: string;
  box_id: number;
  slot_id: number;
  cpu_id: number;
  state: NodeState;
  /** ms since epoch of the last state change. */
  since: number;
  /** host_ip of the board whose reports the node shows. */
  primary: string;
  /** host_ips claiming this position (the primary included). */
  claimants: Set<string>;
  /** The latest transitions, oldest first, at most TRANSITIONS_KEPT. */
  transitions: Transition[];
}

const TRANSITIONS_KEPT = 50;

/** `box-slot-cpu`, the node id of a heartbeat. */
export const nodeIdOf = (h: Pick<HeartbeatData, 'box_id' | 'slot_id' | 'cpu_id'>): string =>
  `${h.box_id}-${h.slot_id}-${h.cpu_id}`;

/**
 * Holds all nodes and boards. Events: `transition` (Transition), `conflict` ({ node, claimants }),
 * `conflict-cleared` ({ node }), `moved` ({ node, from, to }).
 */
export class NodeRegistry extends EventEmitter {
  /** Number of the heartbeat round under way; rounds 0..round-1 are completed. */
  round = 0;
  readonly nodes = new Map<string, NodeRecord>();
  readonly boards = new Map<string, Board>();
  /** host_ip → node id it claims. */
  private readonly claims = new Map<string, string>();

  constructor(
    private readonly t: LivenessThresholds,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  private board(ip: string): Board {
    let b = this.boards.get(ip);
    if (!b) {
      b = { host_ip: ip, heartbeat: null, heartbeatAt: 0, lastRound: 0, resource: null, resourceAt: 0 };
      this.boards.set(ip, b);
    }
    return b;
  }

  private transition(n: NodeRecord, to: NodeState, reason: string): void {
    const tr: Transition = { node: n.id, from: n.state, to, at: new Date(this.now()).toISOString(), reason };
    n.state = to;
    n.since = this.now();
    n.transitions.push(tr);
    if (n.transitions.length > TRANSITIONS_KEPT) n.transitions.shift();
    this.emit('transition', tr);
  }

  /**
   * Completed rounds a board has not answered since its last heartbeat: 0 when it answered the
   * last completed round (or answers the current one).
   */
  missed(b: Board): number {
    return Math.max(0, this.round - 1 - b.lastRound);
  }

  /** Records a valid heartbeat (seed 003 /heartbeat). Returns the node id. */
  ingestHeartbeat(h: HeartbeatData): string {
    const id = nodeIdOf(h);
    const at = this.now();
    const b = this.board(h.host_ip);
    b.heartbeat = h;
    b.heartbeatAt = at;
    b.lastRound = this.round;

    // A board that used to claim another position gives it up.
    const before = this.claims.get(h.host_ip);
    if (before !== undefined && before !== id) this.release(before, h.host_ip);
    this.claims.set(h.host_ip, id);

    let n = this.nodes.get(id);
    if (!n) {
      n = {
        id,
        box_id: h.box_id,
        slot_id: h.slot_id,
        cpu_id: h.cpu_id,
        state: 'offline',
        since: at,
        primary: h.host_ip,
        claimants: new Set([h.host_ip]),
        transitions: [],
      };
      n.state = 'online';
      const tr: Transition = {
        node: id,
        from: null,
        to: 'online',
        at: new Date(at).toISOString(),
        reason: 'first heartbeat',
      };
      n.transitions.push(tr);
      this.nodes.set(id, n);
      this.emit('transition', tr);
      return id;
    }
    if (!n.claimants.has(h.host_ip)) {
      const primary = this.boards.get(n.primary);
      const primaryQuiet =
        !primary || !n.claimants.has(n.primary) || this.missed(primary) >= this.t.suspect_after_rounds;
      n.claimants.add(h.host_ip);
      if (primaryQuiet) {
        // The position's board came back on another address (re-addressed or replaced).
        const from = n.primary;
        n.claimants.delete(from);
        n.primary = h.host_ip;
        this.emit('moved', { node: id, from, to: h.host_ip });
      } else {
        this.emit('conflict', { node: id, claimants: [...n.claimants] });
      }
    }
    if (n.primary === h.host_ip && n.state !== 'online') {
      this.transition(n, 'online', n.state === 'offline' ? 'heartbeat received after offline' : 'heartbeat received');
    }
    return id;
  }

  private release(id: string, ip: string): void {
    const n = this.nodes.get(id);
    if (!n) return;
    const wasConflict = n.claimants.size > 1;
    n.claimants.delete(ip);
    if (n.primary === ip && n.claimants.size > 0) n.primary = [...n.claimants][0] as string;
    if (wasConflict && n.claimants.size === 1) this.emit('conflict-cleared', { node: id });
  }

  /**
   * Records a valid resource report (seed 003 /resource).
   * @returns the node id, or null when no heartbeat has named this host_ip yet (kept for later)
   */
  ingestResource(r: ResourceData): string | null {
    const b = this.board(r.host_ip);
    b.resource = r;
    b.resourceAt = this.now();
    return this.claims.get(r.host_ip) ?? null;
  }

  /** Ends a heartbeat round: counts it and moves quiet nodes down. Returns the transitions. */
  endRound(): Transition[] {
    this.round++;
    const out: Transition[] = [];
    for (const n of this.nodes.values()) {
      if (n.claimants.size > 1) this.settleConflict(n);
      // A position no board claims any more counts as never heard from.
      const b = n.claimants.has(n.primary) ? this.boards.get(n.primary) : undefined;
      const change = evaluate(n.state, b ? this.missed(b) : Number.POSITIVE_INFINITY, this.t);
      if (change) {
        this.transition(n, change.to, change.reason);
        out.push(n.transitions[n.transitions.length - 1] as Transition);
      }
    }
    return out;
  }

  /**
   * In a conflict, the position shows the board that still answers: when the shown board has gone
   * quiet (suspect threshold) and another claimant answers, that one is shown instead. Claimants
   * quiet past the offline threshold are dropped; when one is left, the conflict is over.
   */
  private settleConflict(n: NodeRecord): void {
    const missedOf = (ip: string) => {
      const b = this.boards.get(ip);
      return b ? this.missed(b) : Number.POSITIVE_INFINITY;
    };
    if (missedOf(n.primary) >= this.t.suspect_after_rounds) {
      const fresher = [...n.claimants].filter((ip) => ip !== n.primary).sort((a, b) => missedOf(a) - missedOf(b))[0];
      if (fresher !== undefined && missedOf(fresher) < this.t.suspect_after_rounds) {
        const from = n.primary;
        n.primary = fresher;
        this.emit('moved', { node: n.id, from, to: fresher });
        if (n.state !== 'online')
          this.transition(n, 'online', `heartbeat received from ${fresher}, another board claiming this position`);
      }
    }
    for (const ip of [...n.claimants]) {
      if (ip !== n.primary && missedOf(ip) >= this.t.offline_after_rounds) {
        n.claimants.delete(ip);
        if (this.claims.get(ip) === n.id) this.claims.delete(ip);
      }
    }
    if (n.claimants.size === 1) this.emit('conflict-cleared', { node: n.id });
  }

  /** Whether more than one board claims the node's position now. */
  inConflict(n: NodeRecord): boolean {
    return n.claimants.size > 1;
  }

  /** Count of nodes per state. */
  countByState(): Record<NodeState, number> {
    const c: Record<NodeState, number> = { online: 0, suspect: 0, offline: 0 };
    for (const n of this.nodes.values()) c[n.state]++;
    return c;
  }
}
