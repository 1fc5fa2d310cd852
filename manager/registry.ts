/**
 * The node registry: every board the manager has heard, keyed by node id `box-slot-cpu`
 * (docs/protocol.md "2. Heartbeat": box_id, slot_id, cpu_id), with its latest heartbeat and resource report, liveness, and identity
 * conflicts (two boards claiming one position: both shown, an event raised).
 *
 * A *board* is an address reporting for a position (host_ip + node id); a node is the position.
 * A resource report names only its host_ip, so it is matched to the position(s) that address
 * claims in its heartbeats. Two agents sharing one address for two positions cannot be told apart
 * in resource reports (the spec carries no more): both positions get them, and an
 * `address-shared` event says so; give each agent its own address (report.host_ip).
 */
import { EventEmitter } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import { NODE_STATES } from '../common/api/nodes.js';
import type { LinkMetrics } from '../common/link.js';
import type { HeartbeatData, ResourceData } from '../common/protocol.js';
import { evaluate, evaluateLinked, type LivenessThresholds, type NodeState, type Transition } from './liveness.js';

/**
 * The few figures of a resource report that the node list shows (docs/operations.md "Sizing",
 * "What the manager keeps per board"): read from each report as it is stored, so that listing
 * nodes never needs the whole report.
 */
export interface ResourceGist {
  /** cpu.usage_percent, % (null when the board has none). */
  cpu_percent: number | null;
  /** memory.usage_percent, %. */
  memory_percent: number | null;
  /** cpu.temperature, °C. */
  temperature: number | null;
  /** Length of resource.gpu. */
  gpu_count: number;
  /** Length of component. */
  component_count: number;
}

/** The `data` of a resource report body's JSON text (one the report path validated). */
const dataOf = (text: string): ResourceData => (JSON.parse(text) as { data: ResourceData }).data;

/** The gist of resource report `r`. */
export function gistOf(r: ResourceData): ResourceGist {
  return {
    cpu_percent: r.resource.cpu.usage_percent,
    memory_percent: r.resource.memory.usage_percent,
    temperature: r.resource.cpu.temperature,
    gpu_count: r.resource.gpu.length,
    component_count: r.component.length,
  };
}

/**
 * What the manager knows of one address reporting for one position.
 *
 * The latest resource report is kept either as its parsed data or, when it arrived over the lean
 * report path, as the request's JSON text (one flat string, ~4.4 KB) with its gist, and parsed on
 * the first read of `resource` (docs/operations.md "Sizing"). A parsed report is a tree of ~300
 * small heap objects that would live until the board's next report and die in V8's old
 * generation; the text costs the collector next to nothing (in the bench's bare server, keeping
 * each board's latest tree cost ~4 µs of CPU per report, keeping its text nothing measurable:
 * bench/RESULTS.md), and most reports are never read whole (the ingest works on the parse it
 * validated, then drops it).
 */
export class Board {
  heartbeat: HeartbeatData | null = null;
  /** ms since epoch of the latest heartbeat, 0 = none yet. */
  heartbeatAt = 0;
  /** Round number current when the latest heartbeat arrived. */
  lastRound = 0;
  /** ms since epoch of the latest resource report, 0 = none yet. */
  resourceAt = 0;
  /** The latest report's gist, null before one. */
  gist: ResourceGist | null = null;
  #res: ResourceData | null = null;
  /** The JSON text of the report body (`{ "data": ResourceData, ... }`) not parsed yet. */
  #text: string | null = null;

  /**
   * @param host_ip the address reporting
   * @param node node id `box-slot-cpu` this address claims in its heartbeats
   */
  constructor(
    readonly host_ip: string,
    readonly node: string,
  ) {}

  /**
   * The latest resource report, null before one. A report kept as text is parsed here once and
   * the same object returned until the next report (readers may key caches on its identity).
   */
  get resource(): ResourceData | null {
    if (this.#text !== null) {
      this.#res = dataOf(this.#text);
      this.#text = null;
    }
    return this.#res;
  }

  /**
   * Keeps report `r` received at `at` (ms). With `text`, the body's JSON text whose `data`
   * parses to `r` (the lean report path's), only the text and the gist are kept.
   */
  setResource(r: ResourceData, at: number, text?: string): void {
    this.resourceAt = at;
    this.gist = gistOf(r);
    if (text === undefined) {
      this.#res = r;
      this.#text = null;
    } else {
      this.#res = null;
      this.#text = text;
    }
  }
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
  /** ms since epoch of the first heartbeat ever received for this position. */
  first_seen: number;
  /** host_ip of the board whose reports the node shows (see NodeRegistry.boardOf). */
  primary: string;
  /** host_ips claiming this position (the primary included). */
  claimants: Set<string>;
  /** The latest transitions, oldest first, at most TRANSITIONS_KEPT. */
  transitions: Transition[];
  /**
   * Set while the node reports over the WebSocket node link (docs/links.md "Linked nodes"): its
   * liveness is then counted in its own heartbeat intervals, not in query rounds.
   */
  link?: LinkState;
}

/** What the registry knows of a node on the WebSocket link (docs/links.md "Linked nodes"). */
export interface LinkState {
  /** The node's heartbeat cadence, ms (measured, or link.heartbeat_interval_ms before two heartbeats). */
  interval_ms: number;
  /** ms since epoch of the latest heartbeat (or registration) over the link. */
  last_at: number;
  /** From node_register (absent for a muster agent, whose heartbeat body names them). */
  hostname?: string;
  os_info?: string;
  /** The latest heartbeat `metrics` of a seed-protocol node, null before one. */
  metrics: LinkMetrics | null;
}

/** box_id, slot_id and cpu_id of a linked node that reports no position (docs/links.md "Node ids"). */
export const NO_POSITION = -1;

const TRANSITIONS_KEPT = 50;

/** `box-slot-cpu`, the node id of a heartbeat. */
export const nodeIdOf = (h: Pick<HeartbeatData, 'box_id' | 'slot_id' | 'cpu_id'>): string =>
  `${h.box_id}-${h.slot_id}-${h.cpu_id}`;

/** Most resource reports kept for addresses that have not sent a heartbeat yet. */
const UNCLAIMED_KEPT = 10_000;

/**
 * Holds all nodes and boards. Events: `transition` (Transition), `conflict` ({ node, claimants }),
 * `conflict-cleared` ({ node }), `moved` ({ node, from, to }), `address-shared` ({ host_ip, nodes }).
 */
export class NodeRegistry extends EventEmitter {
  /** Number of the heartbeat round under way; rounds 0..round-1 are completed. */
  round = 0;
  /**
   * Bumped whenever a node is added or forgotten, or a node's shown board (primary) changes: a
   * reader caching per-node views (manager/scheduler/) re-reads the node list only then.
   */
  generation = 0;
  readonly nodes = new Map<string, NodeRecord>();
  /** Boards by `host_ip|node id`. */
  readonly boards = new Map<string, Board>();
  /**
   * host_ip → the node ids it claims, each with its board (the same Board as in `boards`): a
   * resource report finds its board with one lookup by address.
   */
  private readonly claims = new Map<string, Map<string, Board>>();
  /** Resource reports of addresses no heartbeat has named yet, attached by the first heartbeat. */
  private readonly unclaimed = new Map<string, { r: ResourceData | null; at: number; text?: string }>();
  /**
   * Positions that never came online (docs/configuration.md "registry"): heard only in the round
   * of their first heartbeat (`round`, -1 for one put back from the store), since `at` (ms).
   */
  private readonly unconfirmed = new Map<string, { round: number; at: number }>();

  /**
   * @param t liveness thresholds, in rounds
   * @param now the clock, ms
   * @param maxNodes most positions held (registry.max_nodes); a heartbeat for a new position
   *   beyond it is refused (ingestHeartbeat returns null) and leaves nothing behind
   */
  constructor(
    private readonly t: LivenessThresholds,
    private readonly now: () => number = Date.now,
    readonly maxNodes: number = Number.POSITIVE_INFINITY,
  ) {
    super();
  }

  private board(ip: string, node: string): Board {
    const key = `${ip}|${node}`;
    let b = this.boards.get(key);
    if (!b) {
      b = new Board(ip, node);
      const early = this.unclaimed.get(ip);
      if (early) {
        const r = early.r ?? dataOf(early.text as string);
        b.setResource(r, early.at, early.text);
        this.unclaimed.delete(ip);
      }
      this.boards.set(key, b);
    }
    return b;
  }

  /** Records that address `ip` claims node `id`, with its board `b`. */
  private claim(ip: string, id: string, b: Board): void {
    let mine = this.claims.get(ip);
    if (!mine) {
      mine = new Map();
      this.claims.set(ip, mine);
    }
    mine.set(id, b);
  }

  /** The board of `ip` for node `n` (its primary by default), if it has reported. */
  boardOf(n: NodeRecord, ip: string = n.primary): Board | undefined {
    return this.boards.get(`${ip}|${n.id}`);
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

  /**
   * Forgets a node (DELETE /api/v1/nodes/:id): its record, its boards and its addresses' claims
   * on it. A later heartbeat for the position creates it afresh.
   * @returns whether the node was known
   */
  forget(id: string): boolean {
    const n = this.nodes.get(id);
    if (!n) return false;
    this.nodes.delete(id);
    this.unconfirmed.delete(id);
    this.generation++;
    for (const [key, b] of this.boards) {
      if (b.node !== id) continue;
      this.boards.delete(key);
      const mine = this.claims.get(b.host_ip);
      mine?.delete(id);
      if (mine?.size === 0) this.claims.delete(b.host_ip);
    }
    return true;
  }

  /**
   * Records a valid heartbeat (docs/protocol.md "2. Heartbeat").
   * @returns the node id, or null when it names a new position and the registry already holds
   *   maxNodes (registry.max_nodes): nothing is recorded then
   */
  ingestHeartbeat(h: HeartbeatData): string | null {
    const id = nodeIdOf(h);
    if (!this.nodes.has(id) && this.nodes.size >= this.maxNodes) return null;
    const at = this.now();
    // An address may claim several positions: a re-configured board (its old position goes quiet,
    // then offline) or several agents sharing one address (reported by endRound).
    let b = this.claims.get(h.host_ip)?.get(id);
    if (b === undefined) {
      b = this.board(h.host_ip, id);
      this.claim(h.host_ip, id, b);
    }
    b.heartbeat = h;
    b.heartbeatAt = at;
    b.lastRound = this.round;
    const linked = this.nodes.get(id)?.link;
    if (linked) linked.last_at = at;

    let n = this.nodes.get(id);
    if (!n) {
      n = {
        id,
        box_id: h.box_id,
        slot_id: h.slot_id,
        cpu_id: h.cpu_id,
        state: 'offline',
        since: at,
        first_seen: at,
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
      this.unconfirmed.set(id, { round: this.round, at });
      this.generation++;
      this.emit('transition', tr);
      return id;
    }
    // Heard again in a later round: a board answers this position's queries.
    const u = this.unconfirmed.get(id);
    if (u && u.round !== this.round) this.unconfirmed.delete(id);
    if (!n.claimants.has(h.host_ip)) {
      const primary = this.boardOf(n);
      const primaryQuiet =
        !primary || !n.claimants.has(n.primary) || this.missed(primary) >= this.t.suspect_after_rounds;
      n.claimants.add(h.host_ip);
      if (primaryQuiet) {
        // The position's board came back on another address (re-addressed or replaced).
        const from = n.primary;
        n.claimants.delete(from);
        n.primary = h.host_ip;
        this.generation++;
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

  /**
   * Records a valid resource report (docs/protocol.md "3. Resource report").
   * @param text the report body's JSON text, whose `data` parses to `r`: when given, the board
   *   keeps the text instead of `r` (see Board)
   * @returns the node id, or null when no heartbeat has named this host_ip yet (kept for later)
   */
  ingestResource(r: ResourceData, text?: string): string | null {
    return this.reportResource(r, text)?.node ?? null;
  }

  /**
   * As ingestResource, but returns the board (of `r.host_ip`) whose node the report counts for,
   * or null: the ingest reads the node's tags from it without another lookup.
   */
  reportResource(r: ResourceData, text?: string): Board | null {
    const at = this.now();
    const mine = this.claims.get(r.host_ip);
    if (!mine || mine.size === 0) {
      if (this.unclaimed.size >= UNCLAIMED_KEPT) this.unclaimed.clear();
      this.unclaimed.set(r.host_ip, text === undefined ? { r, at } : { r: null, at, text });
      return null;
    }
    if (mine.size === 1) {
      // One position (nearly always): it gets the report whatever its liveness.
      const b = mine.values().next().value as Board;
      b.setResource(r, at, text);
      return b;
    }
    // The positions this address still answers for; a position it left gets no more reports.
    const boards = [...mine.values()];
    const live = boards.filter((b) => this.missed(b) < this.t.suspect_after_rounds);
    const targets = live.length > 0 ? live : [boards.reduce((a, b) => (b.heartbeatAt > a.heartbeatAt ? b : a))];
    for (const b of targets) b.setResource(r, at, text);
    return targets.reduce((a, b) => (b.heartbeatAt > a.heartbeatAt ? b : a));
  }

  /**
   * Puts back what a previous run knew (manager/store): the nodes with their state, boards and
   * latest heartbeats, and their recent transitions. Restored boards count as having answered
   * round 0, so a node that does not report after the restart goes suspect, then offline, as
   * rounds pass; one that reports stays or comes online. A node stored with a link state is put
   * back linked (docs/links.md "Linked nodes"): shown `ws`, its commands routed to the link, and its
   * liveness counted in its own intervals from the restart (it has that long to reconnect, as a
   * multicast board has its rounds). Emits nothing.
   */
  restore(
    nodes: Iterable<{
      id: string;
      box_id: number;
      slot_id: number;
      cpu_id: number;
      host_ip: string;
      claimants: string[];
      heartbeat: HeartbeatData | null;
      state: NodeState;
      state_since: number;
      first_seen: number;
      last_seen: number;
      link?: {
        interval_ms: number;
        hostname?: string;
        os_info?: string;
        metrics?: LinkMetrics | null;
      } | null;
    }>,
    transitions: Map<string, Transition[]> = new Map(),
  ): void {
    this.generation++;
    const now = this.now();
    for (const r of nodes) {
      const claimants = new Set(r.claimants.includes(r.host_ip) ? r.claimants : [r.host_ip, ...r.claimants]);
      this.nodes.set(r.id, {
        id: r.id,
        box_id: r.box_id,
        slot_id: r.slot_id,
        cpu_id: r.cpu_id,
        state: r.state,
        since: r.state_since,
        first_seen: r.first_seen,
        primary: r.host_ip,
        claimants,
        transitions: (transitions.get(r.id) ?? []).slice(-TRANSITIONS_KEPT),
        ...(r.link
          ? {
              link: {
                interval_ms: Math.min(3_600_000, Math.max(1000, r.link.interval_ms)),
                last_at: now,
                hostname: r.link.hostname,
                os_info: r.link.os_info,
                metrics: r.link.metrics ?? null,
              },
            }
          : {}),
      });
      // Only ever heard once before the restart: any heartbeat from now on confirms it.
      if (r.last_seen <= r.first_seen) this.unconfirmed.set(r.id, { round: -1, at: r.first_seen });
      for (const ip of claimants) {
        const b = this.board(ip, r.id);
        this.claim(ip, r.id, b);
        b.lastRound = 0;
        if (ip === r.host_ip) {
          b.heartbeat = r.heartbeat;
          b.heartbeatAt = r.last_seen;
        }
      }
    }
  }

  /** Ends a heartbeat round: counts it and moves quiet nodes down. Returns the transitions. */
  endRound(): Transition[] {
    this.round++;
    this.checkSharedAddresses();
    const out: Transition[] = [];
    for (const n of this.nodes.values()) {
      if (n.claimants.size > 1) this.settleConflict(n);
      // A position no board claims any more counts as never heard from.
      const b = n.claimants.has(n.primary) ? this.boardOf(n) : undefined;
      const change = n.link
        ? evaluateLinked(n.state, Math.floor((this.now() - n.link.last_at) / n.link.interval_ms), this.t)
        : evaluate(n.state, b ? this.missed(b) : Number.POSITIVE_INFINITY, this.t);
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
      const b = this.boardOf(n, ip);
      return b ? this.missed(b) : Number.POSITIVE_INFINITY;
    };
    if (missedOf(n.primary) >= this.t.suspect_after_rounds) {
      const fresher = [...n.claimants].filter((ip) => ip !== n.primary).sort((a, b) => missedOf(a) - missedOf(b))[0];
      if (fresher !== undefined && missedOf(fresher) < this.t.suspect_after_rounds) {
        const from = n.primary;
        n.primary = fresher;
        this.generation++;
        this.emit('moved', { node: n.id, from, to: fresher });
        if (n.state !== 'online')
          this.transition(n, 'online', `heartbeat received from ${fresher}, another board claiming this position`);
      }
    }
    for (const ip of [...n.claimants]) {
      if (ip !== n.primary && missedOf(ip) >= this.t.offline_after_rounds) {
        n.claimants.delete(ip);
        this.claims.get(ip)?.delete(n.id);
      }
    }
    if (n.claimants.size === 1) this.emit('conflict-cleared', { node: n.id });
  }

  /**
   * Addresses that answered two rounds in a row for more than one position (several agents
   * sharing one address; a re-configured board answers for its old position at most once more),
   * reported once each.
   */
  private readonly shared = new Map<string, number>();
  private checkSharedAddresses(): void {
    const seen = new Set<string>();
    for (const [ip, mine] of this.claims) {
      if (mine.size < 2) continue;
      const answering = [...mine].filter(([, b]) => this.missed(b) === 0).map(([id]) => id);
      if (answering.length < 2) continue;
      const key = `${ip}|${answering.sort().join(',')}`;
      seen.add(key);
      const rounds = (this.shared.get(key) ?? 0) + 1;
      this.shared.set(key, rounds);
      if (rounds === 2) this.emit('address-shared', { host_ip: ip, nodes: answering });
    }
    for (const [key, rounds] of this.shared) if (rounds < 2 && !seen.has(key)) this.shared.delete(key);
  }

  /**
   * Positions to prune (manager/prune.ts): those that never came online — every heartbeat for
   * them arrived in the round of their first one — whose first heartbeat is at least
   * `neverOnlineMs` old, and those offline for at least `offlineMs`. 0 turns either off.
   * @param now ms since the epoch
   */
  prunable(
    now: number,
    neverOnlineMs: number,
    offlineMs: number,
  ): { id: string; reason: 'never_online' | 'offline' }[] {
    const out: { id: string; reason: 'never_online' | 'offline' }[] = [];
    if (neverOnlineMs > 0)
      for (const [id, u] of this.unconfirmed) if (now - u.at >= neverOnlineMs) out.push({ id, reason: 'never_online' });
    if (offlineMs > 0) {
      const taken = new Set(out.map((o) => o.id));
      for (const n of this.nodes.values())
        if (n.state === 'offline' && now - n.since >= offlineMs && !taken.has(n.id))
          out.push({ id: n.id, reason: 'offline' });
    }
    return out;
  }

  /**
   * Records a heartbeat or registration of a node over the WebSocket link (docs/links.md "Linked
   * nodes"). A node that reports no position (`pos` absent) is held under its `id` with
   * box/slot/cpu {@link NO_POSITION}; a muster agent's full heartbeat body goes through
   * ingestHeartbeat first and this call only marks the node linked.
   * @param id the registry id (box-slot-cpu or the node's node_id)
   * @param hostIp the node's address (its ip_address, else the connection's peer)
   * @param info cadence, identity and metrics; fields absent keep their previous value
   * @returns the id, or null when it names a new node beyond registry.max_nodes (nothing recorded)
   */
  ingestLinked(
    id: string,
    hostIp: string,
    info: { interval_ms: number; hostname?: string; os_info?: string; metrics?: LinkMetrics | null },
    pos?: { box_id: number; slot_id: number; cpu_id: number },
  ): string | null {
    const at = this.now();
    let n = this.nodes.get(id);
    if (!n) {
      if (this.nodes.size >= this.maxNodes) return null;
      n = {
        id,
        box_id: pos?.box_id ?? NO_POSITION,
        slot_id: pos?.slot_id ?? NO_POSITION,
        cpu_id: pos?.cpu_id ?? NO_POSITION,
        state: 'online',
        since: at,
        first_seen: at,
        primary: hostIp,
        claimants: new Set([hostIp]),
        transitions: [],
      };
      const tr: Transition = { node: id, from: null, to: 'online', at: new Date(at).toISOString(), reason: 'linked' };
      n.transitions.push(tr);
      this.nodes.set(id, n);
      this.generation++;
      this.emit('transition', tr);
    } else if (n.primary !== hostIp && !n.link) {
      // A node known from multicast (or a previous run) now on the link: the link's address is shown.
      const from = n.primary;
      n.claimants.delete(from);
      n.claimants.add(hostIp);
      n.primary = hostIp;
      this.generation++;
      this.emit('moved', { node: id, from, to: hostIp });
    } else if (n.primary !== hostIp) {
      n.claimants.delete(n.primary);
      n.claimants.add(hostIp);
      n.primary = hostIp;
      this.generation++;
    }
    const prev = n.link;
    n.link = {
      interval_ms: info.interval_ms,
      last_at: at,
      hostname: info.hostname ?? prev?.hostname,
      os_info: info.os_info ?? prev?.os_info,
      metrics: info.metrics !== undefined ? info.metrics : (prev?.metrics ?? null),
    };
    const b = this.board(hostIp, id);
    b.heartbeatAt = at;
    b.lastRound = this.round;
    this.claim(hostIp, id, b);
    if (n.state !== 'online') {
      this.transition(n, 'online', n.state === 'offline' ? 'link heartbeat after offline' : 'link heartbeat');
    }
    return id;
  }

  /** Whether more than one board claims the node's position now. */
  inConflict(n: NodeRecord): boolean {
    return n.claimants.size > 1;
  }

  /** Count of nodes per state. */
  countByState(): Record<NodeState, number> {
    const c = Object.fromEntries(NODE_STATES.map((s) => [s, 0])) as Record<NodeState, number>;
    for (const n of this.nodes.values()) c[n.state]++;
    return c;
  }
}

/**
 * The registry's metrics (docs/operations.md "Prometheus metrics") in the daemon's Prometheus
 * registry: `muster_manager_nodes{state}` and `muster_manager_identity_conflicts`, read from
 * `nodes` at each scrape, and `muster_manager_transitions_total{to}`, counted on its events.
 */
export function registryMetrics(prom: Registry, nodes: NodeRegistry): void {
  const registers = [prom];
  new Gauge({
    name: 'muster_manager_nodes',
    help: 'Nodes by liveness state',
    labelNames: ['state'],
    registers,
    collect() {
      for (const [state, n] of Object.entries(nodes.countByState())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'muster_manager_identity_conflicts',
    help: 'Node ids claimed by more than one board',
    registers,
    collect() {
      let conflicts = 0;
      for (const n of nodes.nodes.values()) if (n.claimants.size > 1) conflicts++;
      this.set(conflicts);
    },
  });
  const transitions = new Counter({
    name: 'muster_manager_transitions_total',
    help: 'Liveness transitions, by target state',
    labelNames: ['to'],
    registers,
  });
  nodes.on('transition', (t: Transition) => transitions.inc({ to: t.to }));
}
