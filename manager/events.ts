/**
 * The live event hub behind `GET /api/v1/events` (docs/dashboard.md "Live updates"): one timer
 * (dashboard.events.interval_ms) builds the node summaries and the open alerts once, compares them
 * with the previous tick, and writes what changed to every subscriber as Server-Sent Events
 * (common/api/events.ts). A new subscriber gets a full snapshot at once. The work per tick is one
 * pass over the registry whatever the number of subscribers; nothing runs while none is connected.
 *
 * Bounds: at most dashboard.events.max_clients subscribers (a further one gets 503, counted in
 * muster_manager_events_refused_total{reason="too_many"}); a subscriber whose socket does not
 * drain (more than dashboard.events.max_buffer_bytes queued) is dropped and counted with
 * reason="slow"; the page reconnects by itself and gets a fresh snapshot.
 */

import { Counter, Gauge, type Registry } from 'prom-client';
import type { AlertsEvent, EventName, NodesEvent } from '../common/api/events.js';
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
  /** JSON of each node's last sent summary, by id. */
  private last = new Map<string, string>();
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
    if (this.sinks.size === 0) this.refresh(false);
    this.sinks.add(sink);
    this.metrics.clients.set(this.sinks.size);
    const nodes = listNodes(this.registry);
    const full: NodesEvent = { round: this.registry.round, full: true, changed: nodes, removed: [] };
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
    const seen = new Map<string, string>();
    const changed: NodeSummary[] = [];
    for (const n of nodes) {
      const json = JSON.stringify(n);
      seen.set(n.id, json);
      if (this.last.get(n.id) !== json) changed.push(n);
    }
    const removed = [...this.last.keys()].filter((id) => !seen.has(id));
    this.last = seen;
    if (send && (changed.length > 0 || removed.length > 0)) {
      const ev: NodesEvent = { round: this.registry.round, full: false, changed, removed };
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
