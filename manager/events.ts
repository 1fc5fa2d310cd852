/**
 * The live event hub behind `GET /api/v1/events` (docs/dashboard.md "Live updates"): one timer
 * (dashboard.events.interval_ms) builds the node summaries and the open alerts once, compares them
 * with the previous tick, and writes what changed to every subscriber as Server-Sent Events
 * (common/api/events.ts): new nodes whole, known nodes as patches of the fields that changed
 * ({@link diffSummaries}). A new subscriber gets a full snapshot at once, of the same state the
 * next diff is computed against. The work per tick is one
 * pass over the registry whatever the number of subscribers; nothing runs while none is connected.
 *
 * Bounds: at most dashboard.events.max_clients subscribers (a further one gets 503, counted in
 * muster_manager_events_refused_total{reason="too_many"}); a subscriber whose socket does not
 * drain (more than dashboard.events.max_buffer_bytes queued) is dropped and counted with
 * reason="slow"; the page reconnects by itself and gets a fresh snapshot.
 */

import { Counter, Gauge, type Registry } from 'prom-client';
import type { AlertsEvent, EventName, NodeSummaryPatch, NodesEvent } from '../common/api/events.js';
import type { NodeSummary } from '../common/api/nodes.js';
import type { AlertEngine } from './alerts/engine.js';
import type { NodeRegistry } from './registry.js';
import { alertView } from './store/alerts.js';
import { listNodes } from './views.js';

/** The `dashboard.events` config section (docs/configuration.md "dashboard"). */
export interface EventsConfig {
  /** How often changes are looked for and sent, ms. */
  interval_ms: number;
  /** How often an idle stream gets a ping, ms. */
  ping_ms: number;
  /** Most subscribers at once. */
  max_clients: number;
  /** Most bytes queued on one subscriber's socket before it is dropped. */
  max_buffer_bytes: number;
}

/** The defaults of dashboard.events (config/manager.yaml). */
export const EVENTS_DEFAULTS: EventsConfig = {
  interval_ms: 2000,
  ping_ms: 15_000,
  max_clients: 64,
  max_buffer_bytes: 4 << 20,
};

/** Where an event goes: a socket-like sink (the raw HTTP response). */
export interface EventSink {
  write(chunk: string): boolean;
  /** Bytes queued and not yet sent. */
  readonly writableLength: number;
  end(): void;
}

/** One SSE frame. */
export function frame(name: EventName, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** What changed between two looks at the nodes: the body of a non-full `nodes` event. */
export interface NodesDiff {
  /** Nodes not in the previous look, whole. */
  changed: NodeSummary[];
  /** Nodes in both looks whose summary differs: the id and only the fields that differ. */
  patched: NodeSummaryPatch[];
  /** Ids in the previous look and not in this one. */
  removed: string[];
}

/** Whether two values of a summary field are the same (scalars by ===, `conflict` lists by value). */
function sameField(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The diff of `next` against `prev` (docs/dashboard.md "Live updates"): a new node whole, a known
 * one as `{ id, ...fields that differ }` (none when nothing differs), the ids gone. Applying it to
 * `prev` (`{ ...old, ...patch }`, then deleting `removed`) gives `next`. O(nodes × fields).
 */
export function diffSummaries(prev: ReadonlyMap<string, NodeSummary>, next: readonly NodeSummary[]): NodesDiff {
  const changed: NodeSummary[] = [];
  const patched: NodeSummaryPatch[] = [];
  const ids = new Set<string>();
  for (const n of next) {
    ids.add(n.id);
    const old = prev.get(n.id);
    if (!old) {
      changed.push(n);
      continue;
    }
    let patch: Record<string, unknown> | null = null;
    for (const k of Object.keys(n) as (keyof NodeSummary)[]) {
      if (sameField(old[k], n[k])) continue;
      patch ??= { id: n.id };
      patch[k] = n[k];
    }
    if (patch) patched.push(patch as NodeSummaryPatch);
  }
  const removed: string[] = [];
  for (const id of prev.keys()) if (!ids.has(id)) removed.push(id);
  return { changed, patched, removed };
}

/** The hub's metrics (docs/operations.md "Prometheus metrics"). */
function eventMetrics(registry?: Registry) {
  const registers = registry ? [registry] : [];
  const clients = registry?.getSingleMetric('muster_manager_events_clients');
  const refused = registry?.getSingleMetric('muster_manager_events_refused_total');
  if (clients && refused) return { clients: clients as Gauge, refused: refused as Counter<'reason'> };
  return {
    clients: new Gauge({
      name: 'muster_manager_events_clients',
      help: 'Subscribers of GET /api/v1/events (dashboard pages) connected now',
      registers,
    }),
    refused: new Counter({
      name: 'muster_manager_events_refused_total',
      help: 'Event subscribers refused (too_many: over dashboard.events.max_clients) or dropped (slow: over dashboard.events.max_buffer_bytes)',
      labelNames: ['reason'],
      registers,
    }) as Counter<'reason'>,
  };
}

/** Live node and alert changes for the dashboard. */
export class EventHub {
  private readonly sinks = new Set<EventSink>();
  private timer: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  /** Each node's summary as last sent (the state the next diff is computed against), by id, in list order. */
  private last = new Map<string, NodeSummary>();
  private lastAlerts = '';
  private lastAlertsJson = '';
  private readonly metrics: ReturnType<typeof eventMetrics>;

  constructor(
    private readonly registry: NodeRegistry,
    private readonly alerts: Pick<AlertEngine, 'openAlerts'>,
    private cfg: EventsConfig,
    registry_?: Registry,
  ) {
    this.metrics = eventMetrics(registry_);
  }

  /** Subscribers connected now. */
  get size(): number {
    return this.sinks.size;
  }

  /**
   * Whether another subscriber may connect now; when not, counts the refusal
   * (muster_manager_events_refused_total{reason="too_many"}).
   */
  admit(): boolean {
    if (this.sinks.size < this.cfg.max_clients) return true;
    this.metrics.refused.inc({ reason: 'too_many' });
    return false;
  }

  /** dashboard.events.max_clients. */
  get maxClients(): number {
    return this.cfg.max_clients;
  }

  /**
   * Adds a subscriber and sends it the full snapshot.
   * @returns false (nothing sent) when dashboard.events.max_clients are connected already
   */
  subscribe(sink: EventSink): boolean {
    if (this.sinks.size >= this.cfg.max_clients) {
      this.metrics.refused.inc({ reason: 'too_many' });
      return false;
    }
    // Bring `last` up to date (sending the diff to the pages already open), then send it whole:
    // the next diff is computed against exactly what this subscriber got.
    this.refresh(this.sinks.size > 0);
    this.sinks.add(sink);
    this.metrics.clients.set(this.sinks.size);
    const full: NodesEvent = {
      round: this.registry.round,
      full: true,
      changed: [...this.last.values()],
      patched: [],
      removed: [],
    };
    sink.write(frame('nodes', full));
    sink.write(`event: alerts\ndata: ${this.lastAlertsJson}\n\n`);
    this.start();
    return true;
  }

  /** Removes a subscriber (its connection closed). */
  unsubscribe(sink: EventSink): void {
    if (!this.sinks.delete(sink)) return;
    this.metrics.clients.set(this.sinks.size);
    if (this.sinks.size === 0) this.stop();
  }

  /** Stops the timers and ends every stream (the server closes). */
  close(): void {
    this.stop();
    for (const s of this.sinks) s.end();
    this.sinks.clear();
    this.metrics.clients.set(0);
  }

  private start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.cfg.interval_ms);
    this.pinger = setInterval(() => this.broadcast(frame('ping', {})), this.cfg.ping_ms);
    this.timer.unref();
    this.pinger.unref();
  }

  private stop(): void {
    clearInterval(this.timer);
    clearInterval(this.pinger);
    this.timer = undefined;
    this.pinger = undefined;
  }

  /**
   * Compares the registry and the open alerts with the previous look.
   * @param send whether to send what changed (false: only remember the state, for a first subscriber)
   * @returns the frames sent
   */
  refresh(send = true): string[] {
    const out: string[] = [];
    const nodes = listNodes(this.registry);
    const diff = diffSummaries(this.last, nodes);
    this.last = new Map(nodes.map((n) => [n.id, n]));
    if (send && (diff.changed.length > 0 || diff.patched.length > 0 || diff.removed.length > 0)) {
      const ev: NodesEvent = { round: this.registry.round, full: false, ...diff };
      out.push(frame('nodes', ev));
    }
    const open = this.alerts.openAlerts();
    const sig = open.map((a) => `${a.id}:${a.last_seen}:${a.value}:${a.message}`).join('|');
    if (sig !== this.lastAlerts || this.lastAlertsJson === '') {
      this.lastAlerts = sig;
      const ev: AlertsEvent = { open: open.map((a) => alertView({ ...a, resolved_at: null })) };
      this.lastAlertsJson = JSON.stringify(ev);
      if (send) out.push(`event: alerts\ndata: ${this.lastAlertsJson}\n\n`);
    }
    for (const f of out) this.broadcast(f);
    return out;
  }

  private tick(): void {
    this.refresh(true);
  }

  private broadcast(chunk: string): void {
    for (const s of this.sinks) {
      if (s.writableLength > this.cfg.max_buffer_bytes) {
        this.metrics.refused.inc({ reason: 'slow' });
        this.sinks.delete(s);
        this.metrics.clients.set(this.sinks.size);
        s.end();
        continue;
      }
      s.write(chunk);
    }
  }
}
