/**
 * The placement scheduler (docs/scheduling.md "Placement"): picks the node a component starts on.
 *
 * For one ask `{ require, constraints, scoring, distinct }` every node of the registry is looked
 * at once, in this order, and the first reason that rules it out is counted:
 *   1. liveness: only ONLINE nodes take placements (`suspect`, `offline`);
 *   2. a resource report is needed (`no resource report`);
 *   3. each constraint (`filtered by board_type = GPU`), then `distinct` (`filtered by distinct node`);
 *   4. an agent that refused a start for lack of resources within `scheduler.refused_cooldown_ms`
 *      (`refused by its agent`);
 *   5. free cores, memory and GPUs (`exhausted on cpu|memory|gpu`): what the latest report says
 *      is held (core_allocated; the mem_limit of active components plus scheduler.reserve_memory_bytes;
 *      the GPUs of active components the manager started) plus the **reservations** of placements
 *      sent but not yet seen in a report (the ledger below).
 * Feasible nodes are scored (./score.ts) and the best wins (ties: the lower node id). A placement
 * that cannot be made explains itself: `8 nodes: 3 filtered by board_type = GPU, 4 exhausted on
 * cpu, 1 suspect`.
 *
 * A placement reserves its resources on the node at once (synchronously, so two placements can
 * never both take the last cores of a board); the reservation goes when the node's report lists
 * the component (its resources are then in the report), when the start fails, or after
 * `scheduler.reservation_ttl_ms`.
 *
 * Node views are cached per node and rebuilt only when the node's report or heartbeat object
 * changes, so a decision over 5,000 nodes is one pass of comparisons (bench/placement.ts).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { CONSTRAINT_ATTRIBUTES, type Constraint } from '../../common/constraints.js';
import type { HeartbeatData, Require, ResourceData } from '../../common/protocol.js';
import type { Board, NodeRecord, NodeRegistry } from '../registry.js';
import { labelsOf } from '../targets.js';
import { fastScore, type Scoring } from './score.js';

/** The scheduler's settings (docs/configuration.md "scheduler"). */
export interface SchedulerConfig {
  /** Memory of each board kept for its system, bytes (as the agents' deploy.reserve_memory_bytes). */
  reserve_memory_bytes: number;
  /** Longest a reservation is held without the component showing in a report, ms. */
  reservation_ttl_ms: number;
  /** How long a node whose agent refused a start for lack of resources is passed over, ms. */
  refused_cooldown_ms: number;
  /** Scoring when an ask names none. */
  default_scoring: Scoring;
}

/** `distinct`: no two components of one instance on one node, or in one box. */
export type Distinct = 'node' | 'box';

/** What to place. */
export interface PlacementAsk {
  require: Require;
  /** Parsed constraints (common/constraints.ts); all must hold. */
  constraints?: readonly Constraint[];
  scoring?: Scoring | undefined;
  /** With `avoid`: nodes (distinct node) or boxes (distinct box) already holding a sibling. */
  distinct?: Distinct | undefined;
  /** Node ids whose node (distinct node) or box (distinct box) is excluded. */
  avoid?: Iterable<string>;
}

/** The outcome of a placement. */
export type Placement =
  | { ok: true; node: string; score: number; feasible: number; total: number }
  | { ok: false; explain: string; reasons: Record<string, number>; total: number };

/** One reservation: a placement sent, not seen in a report yet. */
export interface Reservation {
  uuid: string;
  node: string;
  cpu: number;
  memory: number;
  gpu: number;
  /** ms since epoch it was made. */
  at: number;
}

const ACTIVE = new Set(['PENDING', 'RUNNING', 'SLEEPING']);

/** The scheduler's cached view of one node. */
interface Slot {
  rec: NodeRecord;
  primary: string;
  board: Board | undefined;
  hb: HeartbeatData | null | undefined;
  res: ResourceData | null | undefined;
  attrs: Record<string, string | undefined>;
  /** The fixed attributes by their index in CONSTRAINT_ATTRIBUTES (the hot path reads these). */
  vals: (string | undefined)[];
  /** The fixed attributes as interned value ids (0 = not reported), same order as `vals`. */
  ids: Int32Array;
  /** Interned id of `box`. */
  boxId: number;
  /** Stamp of the decision that excluded this node (distinct node). */
  avoided: number;
  box: string;
  cpuTotal: number;
  cpuUsed: number;
  memTotal: number;
  memUsed: number;
  gpuTotal: number;
  gpuUsed: number;
  reservations: Reservation[];
}

/** Places components on nodes. Create one per manager; it reads the registry at each decision. */
export class Scheduler {
  private slots: Slot[] = [];
  private readonly byId = new Map<string, Slot>();
  private generation = -1;
  private readonly byUuid = new Map<string, Reservation>();
  /** GPUs held per component uuid the manager started (reports do not say which GPUs a component holds). */
  private readonly gpuOf = new Map<string, number>();
  private readonly refused = new Map<string, number>();
  private readonly placed: Counter | null;
  /** Attribute values → small ids (1..), so that a constraint is evaluated once per distinct value. */
  private values = new Map<string, number>();
  /** Per constraint: its verdict by value id (0 not yet known, 1 pass, 2 fail). */
  private verdicts = new WeakMap<Constraint, Int8Array>();
  /** Per-decision stamps (distinct): `boxStamp[boxId] === stamp` marks an excluded box. */
  private stamp = 0;
  private boxStamp = new Int32Array(64);

  /**
   * @param metrics the daemon's Prometheus registry: muster_manager_placements_total{result},
   *   muster_manager_reservations (null: none, for benchmarks and unit tests)
   */
  constructor(
    private readonly registry: NodeRegistry,
    private cfg: SchedulerConfig,
    metrics: Registry | null = null,
    private readonly now: () => number = Date.now,
  ) {
    this.placed = metrics
      ? new Counter({
          name: 'muster_manager_placements_total',
          help: 'Placement decisions, by result (placed, failed: no feasible node)',
          labelNames: ['result'],
          registers: [metrics],
        })
      : null;
    if (metrics) {
      const self = this;
      new Gauge({
        name: 'muster_manager_reservations',
        help: 'Resources reserved by placements sent and not yet seen in a report',
        registers: [metrics],
        collect() {
          this.set(self.byUuid.size);
        },
      });
    }
  }

  /**
   * The id of an attribute value. Past 100,000 distinct values the table starts over (every
   * slot's ids are rebuilt at its next refresh, every cached verdict dropped).
   */
  private intern(v: string): number {
    let id = this.values.get(v);
    if (id === undefined) {
      if (this.values.size >= 100_000) {
        this.values = new Map();
        this.verdicts = new WeakMap();
        for (const sl of this.slots) sl.hb = undefined;
      }
      id = this.values.size + 1;
      this.values.set(v, id);
    }
    return id;
  }

  /** The verdict table of `c`, large enough for every value id given out so far. */
  private verdictsOf(c: Constraint): Int8Array {
    let t = this.verdicts.get(c);
    if (!t || t.length <= this.values.size) {
      const n = new Int8Array(Math.max(64, (this.values.size + 1) * 2));
      if (t) n.set(t);
      t = n;
      this.verdicts.set(c, t);
    }
    return t;
  }

  /** Applies new settings. */
  reconfigure(cfg: SchedulerConfig): void {
    this.cfg = cfg;
  }

  /** The reservations held now (oldest first). */
  reservations(): Reservation[] {
    return [...this.byUuid.values()];
  }

  /** Whether `uuid` holds a reservation on `node`. */
  hasReservation(uuid: string, node: string): boolean {
    return this.byUuid.get(uuid)?.node === node;
  }

  /** Notes that `uuid` holds `gpu` GPUs (a start the manager sent), for the GPU view of its node. */
  noteGpus(uuid: string, gpu: number): void {
    if (gpu > 0) this.gpuOf.set(uuid, gpu);
  }

  /**
   * Reserves `require` on `node` for `uuid` (done by place(); also for a start to a named node).
   * A second reservation of the same uuid replaces the first.
   */
  reserve(node: string, uuid: string, require: Require): void {
    this.release(uuid);
    this.sync();
    const slot = this.byId.get(node);
    const r: Reservation = { uuid, node, cpu: require.cpu, memory: require.memory, gpu: require.gpu, at: this.now() };
    this.byUuid.set(uuid, r);
    slot?.reservations.push(r);
    this.noteGpus(uuid, require.gpu);
  }

  /** Drops the reservation of `uuid` (its start failed). */
  release(uuid: string): void {
    const r = this.byUuid.get(uuid);
    if (!r) return;
    this.byUuid.delete(uuid);
    const slot = this.byId.get(r.node);
    if (slot) slot.reservations = slot.reservations.filter((x) => x !== r);
  }

  /** Passes `node` over for refused_cooldown_ms: its agent refused a start for lack of resources. */
  markRefused(node: string): void {
    this.refused.set(node, this.now() + this.cfg.refused_cooldown_ms);
  }

  /** Re-reads the node list when the registry's changed (a node added, forgotten or moved). */
  private sync(): void {
    if (this.generation === this.registry.generation && this.slots.length === this.registry.nodes.size) return;
    this.generation = this.registry.generation;
    const next: Slot[] = [];
    const seen = new Set<string>();
    for (const rec of this.registry.nodes.values()) {
      seen.add(rec.id);
      let s = this.byId.get(rec.id);
      if (!s || s.rec !== rec) {
        s = {
          rec,
          primary: '',
          board: undefined,
          hb: undefined,
          res: undefined,
          attrs: {},
          vals: [],
          ids: new Int32Array(CONSTRAINT_ATTRIBUTES.length),
          boxId: this.intern(String(rec.box_id)),
          avoided: 0,
          box: String(rec.box_id),
          cpuTotal: 0,
          cpuUsed: 0,
          memTotal: 0,
          memUsed: 0,
          gpuTotal: 0,
          gpuUsed: 0,
          reservations: s?.reservations ?? [],
        };
        this.byId.set(rec.id, s);
      }
      next.push(s);
    }
    for (const id of [...this.byId.keys()]) if (!seen.has(id)) this.byId.delete(id);
    next.sort((a, b) => (a.rec.id < b.rec.id ? -1 : a.rec.id > b.rec.id ? 1 : 0));
    this.slots = next;
  }

  /** Brings a slot's cached attributes and resources up to date with its board. */
  private refresh(s: Slot, now: number): void {
    if (s.primary !== s.rec.primary || !s.board) {
      s.primary = s.rec.primary;
      s.board = this.registry.boardOf(s.rec);
    }
    const b = s.board;
    const hb = b?.heartbeat ?? null;
    if (hb !== s.hb) {
      s.hb = hb;
      const r = s.rec;
      s.attrs = {
        node: r.id,
        box: String(r.box_id),
        slot: String(r.slot_id),
        cpu_id: String(r.cpu_id),
        board_type: hb?.board_type,
        box_type: hb?.box_type,
        cpu_arch: hb?.cpu_arch,
        cpu_type: hb?.cpu_type,
        os_type: hb?.os_type,
        resource_type: hb?.resource_type,
        hostname: hb?.hostname,
      };
      s.vals = CONSTRAINT_ATTRIBUTES.map((k) => s.attrs[k]);
      for (let k = 0; k < s.vals.length; k++) {
        const v = s.vals[k];
        s.ids[k] = v === undefined ? 0 : this.intern(v);
      }
      for (const [k, v] of Object.entries(labelsOf(hb))) s.attrs[`label.${k}`] = v;
      s.gpuTotal = hb?.gpu.length ?? 0;
    }
    const res = b?.resource ?? null;
    if (res !== s.res) {
      s.res = res;
      if (res) {
        s.cpuTotal = res.resource.cpu.core_count;
        s.cpuUsed = res.resource.cpu.core_allocated;
        s.memTotal = Math.max(0, res.resource.memory.total - this.cfg.reserve_memory_bytes);
        let mem = 0;
        let gpu = 0;
        const listed = new Set<string>();
        for (const c of res.component) {
          listed.add(c.uuid);
          if (!ACTIVE.has(c.state)) continue;
          mem += c.resource.memory.mem_limit ?? 0;
          gpu += this.gpuOf.get(c.uuid) ?? 0;
        }
        s.memUsed = mem;
        s.gpuUsed = gpu;
        // A component the report lists is counted in it: its reservation is done.
        if (s.reservations.length > 0) {
          s.reservations = s.reservations.filter((r) => {
            if (!listed.has(r.uuid)) return true;
            this.byUuid.delete(r.uuid);
            return false;
          });
        }
      }
    }
    if (s.reservations.length > 0) {
      const ttl = this.cfg.reservation_ttl_ms;
      if (s.reservations.some((r) => now - r.at > ttl)) {
        s.reservations = s.reservations.filter((r) => {
          if (now - r.at <= ttl) return true;
          this.byUuid.delete(r.uuid);
          return false;
        });
      }
    }
  }

  /**
   * Free cores, memory and GPUs of `node` now (report minus reservations); null when the node is
   * unknown or has sent no resource report.
   */
  free(node: string): { cpu: number; memory: number; gpu: number } | null {
    this.sync();
    const s = this.byId.get(node);
    if (!s) return null;
    this.refresh(s, this.now());
    if (!s.res) return null;
    let cpu = s.cpuTotal - s.cpuUsed;
    let memory = s.memTotal - s.memUsed;
    let gpu = s.gpuTotal - s.gpuUsed;
    for (const r of s.reservations) {
      cpu -= r.cpu;
      memory -= r.memory;
      gpu -= r.gpu;
    }
    return { cpu, memory, gpu };
  }

  /**
   * Picks a node for `ask` and, when `uuid` is given, reserves its resources there.
   * @returns the node and its score, or an explanation of why none fits
   */
  place(ask: PlacementAsk, uuid?: string): Placement {
    this.sync();
    const now = this.now();
    const scoring = ask.scoring ?? this.cfg.default_scoring;
    const cons = ask.constraints ?? [];
    const need = ask.require;
    // distinct: the excluded nodes and boxes carry this decision's stamp.
    const stamp = ++this.stamp;
    let avoidNodes = false;
    let avoidBoxes = false;
    if (ask.distinct && ask.avoid) {
      for (const id of ask.avoid) {
        const sl = this.byId.get(id);
        if (ask.distinct === 'node') {
          if (sl) {
            sl.avoided = stamp;
            avoidNodes = true;
          }
        } else {
          const boxId = sl ? sl.boxId : this.intern(id.split('-')[0] ?? id);
          if (boxId >= this.boxStamp.length) {
            const n = new Int32Array(boxId * 2);
            n.set(this.boxStamp);
            this.boxStamp = n;
          }
          this.boxStamp[boxId] = stamp;
          avoidBoxes = true;
        }
      }
    }
    const boxStamp = this.boxStamp;
    // Counted by index, named only when the placement fails (no string work per node).
    let suspect = 0;
    let offline = 0;
    let noReport = 0;
    let distinct = 0;
    let refused = 0;
    let noCpu = 0;
    let noMem = 0;
    let noGpu = 0;
    const filtered = new Array<number>(cons.length).fill(0);
    const at = cons.map((c) => (CONSTRAINT_ATTRIBUTES as readonly string[]).indexOf(c.attribute));
    const tabs = cons.map((c) => this.verdictsOf(c));
    let best: Slot | null = null;
    let bestScore = -1;
    let feasible = 0;
    const slots = this.slots;
    nodes: for (let i = 0; i < slots.length; i++) {
      const s = slots[i] as Slot;
      const state = s.rec.state;
      if (state !== 'online') {
        if (state === 'suspect') suspect++;
        else offline++;
        continue;
      }
      const b = s.board;
      if (
        b === undefined ||
        s.primary !== s.rec.primary ||
        b.resource !== s.res ||
        b.heartbeat !== s.hb ||
        s.reservations.length > 0
      )
        this.refresh(s, now);
      if (!s.res) {
        noReport++;
        continue;
      }
      for (let k = 0; k < cons.length; k++) {
        const ix = at[k] as number;
        let ok: boolean;
        if (ix >= 0) {
          // Fixed attribute: the verdict of its value, computed once per distinct value.
          const vid = s.ids[ix] as number;
          let tab = tabs[k] as Int8Array;
          if (vid >= tab.length) {
            tab = this.verdictsOf(cons[k] as Constraint);
            tabs[k] = tab;
          }
          let v = tab[vid] as number;
          if (v === 0) {
            v = (cons[k] as Constraint).test(s.vals[ix]) ? 1 : 2;
            tab[vid] = v;
          }
          ok = v === 1;
        } else ok = (cons[k] as Constraint).test(s.attrs[(cons[k] as Constraint).attribute]);
        if (!ok) {
          filtered[k] = (filtered[k] as number) + 1;
          continue nodes;
        }
      }
      if ((avoidNodes && s.avoided === stamp) || (avoidBoxes && boxStamp[s.boxId] === stamp)) {
        distinct++;
        continue;
      }
      if (this.refused.size > 0) {
        const until = this.refused.get(s.rec.id);
        if (until !== undefined) {
          if (until > now) {
            refused++;
            continue;
          }
          this.refused.delete(s.rec.id);
        }
      }
      let cpu = s.cpuTotal - s.cpuUsed;
      let mem = s.memTotal - s.memUsed;
      let gpu = s.gpuTotal - s.gpuUsed;
      const rs = s.reservations;
      for (let k = 0; k < rs.length; k++) {
        const r = rs[k] as Reservation;
        cpu -= r.cpu;
        mem -= r.memory;
        gpu -= r.gpu;
      }
      if (need.cpu > cpu) {
        noCpu++;
        continue;
      }
      if (need.memory > mem) {
        noMem++;
        continue;
      }
      if (need.gpu > gpu) {
        noGpu++;
        continue;
      }
      feasible++;
      const sc = fastScore(
        scoring,
        s.cpuTotal > 0 ? (cpu - need.cpu) / s.cpuTotal : 0,
        s.memTotal > 0 ? (mem - need.memory) / s.memTotal : 0,
      );
      if (sc > bestScore) {
        best = s;
        bestScore = sc;
      }
    }
    const reasons: Record<string, number> = {};
    if (!best) {
      const add = (r: string, n: number) => {
        if (n > 0) reasons[r] = (reasons[r] ?? 0) + n;
      };
      add('suspect', suspect);
      add('offline', offline);
      add('no resource report', noReport);
      cons.forEach((c, k) => {
        add(`filtered by ${c.text}`, filtered[k] as number);
      });
      add(`filtered by distinct ${ask.distinct}`, distinct);
      add('refused by its agent (insufficient resources)', refused);
      add('exhausted on cpu', noCpu);
      add('exhausted on memory', noMem);
      add('exhausted on gpu', noGpu);
    }
    if (!best) {
      this.placed?.inc({ result: 'failed' });
      return { ok: false, explain: explain(slots.length, reasons), reasons, total: slots.length };
    }
    if (uuid !== undefined) {
      const r: Reservation = { uuid, node: best.rec.id, ...need, at: now };
      this.release(uuid);
      this.byUuid.set(uuid, r);
      best.reservations.push(r);
      this.noteGpus(uuid, need.gpu);
    }
    this.placed?.inc({ result: 'placed' });
    return { ok: true, node: best.rec.id, score: bestScore, feasible, total: slots.length };
  }
}

/**
 * The explanation of a placement that could not be made: `8 nodes: 3 filtered by board_type =
 * GPU, 4 exhausted on cpu, 1 suspect` (largest counts first; `no nodes` when the registry is empty).
 */
export function explain(total: number, reasons: Record<string, number>): string {
  if (total === 0) return 'no nodes: the registry is empty';
  const parts = Object.entries(reasons)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([r, n]) => `${n} ${r}`);
  return `${total} node${total === 1 ? '' : 's'}: ${parts.join(', ')}`;
}
