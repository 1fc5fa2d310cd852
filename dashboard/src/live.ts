/**
 * The live state of the dashboard (docs/dashboard.md "Live updates"): the nodes and the open
 * alerts, kept current by the manager's event stream `GET /api/v1/events` (common/api/events.ts).
 * The stream is reopened by itself with a growing delay (1 s up to 10 s) whenever it drops — a
 * manager restart, a network cut — and the page shows "not live" until it is back; each reconnect
 * begins with a full snapshot, so nothing is missed for long.
 */
import { useEffect, useState } from 'preact/hooks';
import type { AlertView } from '../../common/api/alerts.js';
import type { AlertsEvent, NodesEvent } from '../../common/api/events.js';
import type { NodeSummary } from '../../common/api/nodes.js';

/** Whether the page is receiving live updates. */
export type LiveState = 'connecting' | 'live' | 'down';

/** The nodes and open alerts, as last received. */
export class LiveStore {
  /** Nodes by id; a changed node is a new object (views compare by identity). */
  readonly nodes = new Map<string, NodeSummary>();
  open: AlertView[] = [];
  /** Node ids with at least one open alert. */
  alerting = new Set<string>();
  state: LiveState = 'connecting';
  round = 0;
  /** Bumped on every change; views memoize on it. */
  version = 0;
  /** When the last event arrived (ms). */
  lastEventAt = 0;
  private readonly listeners = new Set<() => void>();
  private source: EventSource | null = null;
  private retryMs = 1000;
  private retryTimer: number | undefined;
  private watchdog: number | undefined;
  private stopped = true;

  /** Opens the stream (after login). */
  start(): void {
    this.stopped = false;
    this.connect();
    // A stream that says nothing for 40 s (pings come every 15 s) is dead even if the socket is not.
    this.watchdog = window.setInterval(() => {
      if (this.state === 'live' && Date.now() - this.lastEventAt > 40_000) this.reconnectLater();
    }, 5000);
  }

  /** Closes the stream (logout). */
  stop(): void {
    this.stopped = true;
    this.source?.close();
    this.source = null;
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.watchdog);
    this.nodes.clear();
    this.open = [];
    this.alerting = new Set();
    this.setState('connecting');
  }

  /** Calls `fn` after every change; returns the unsubscribe. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Nodes by box, slot, cpu. */
  sorted(): NodeSummary[] {
    return [...this.nodes.values()].sort(
      (a, b) => a.box_id - b.box_id || a.slot_id - b.slot_id || a.cpu_id - b.cpu_id || a.id.localeCompare(b.id),
    );
  }

  private connect(): void {
    if (this.stopped) return;
    this.source?.close();
    const es = new EventSource('api/v1/events');
    this.source = es;
    es.addEventListener('nodes', (e) => {
      this.retryMs = 1000;
      this.applyNodes(JSON.parse((e as MessageEvent<string>).data) as NodesEvent);
    });
    es.addEventListener('alerts', (e) => {
      this.applyAlerts(JSON.parse((e as MessageEvent<string>).data) as AlertsEvent);
    });
    es.addEventListener('ping', () => {
      this.lastEventAt = Date.now();
      if (this.state !== 'live') this.setState('live');
    });
    es.onerror = () => this.reconnectLater();
  }

  private reconnectLater(): void {
    this.source?.close();
    this.source = null;
    this.setState('down');
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(10_000, this.retryMs * 2);
  }

  private applyNodes(ev: NodesEvent): void {
    this.lastEventAt = Date.now();
    if (ev.full) this.nodes.clear();
    for (const n of ev.changed) this.nodes.set(n.id, n);
    for (const id of ev.removed) this.nodes.delete(id);
    this.round = ev.round;
    this.state = 'live';
    this.changed();
  }

  private applyAlerts(ev: AlertsEvent): void {
    this.lastEventAt = Date.now();
    this.open = ev.open;
    this.alerting = new Set(ev.open.map((a) => a.node).filter((n): n is string => n !== null));
    this.changed();
  }

  private setState(s: LiveState): void {
    if (this.state === s) return;
    this.state = s;
    this.changed();
  }

  private pending = false;

  /**
   * Tells the views, in a task of its own: reading a large event (1,000 boards) and rendering
   * it are then two shorter tasks instead of one long one (docs/dashboard.md "Live updates").
   */
  private changed(): void {
    this.version++;
    if (this.pending) return;
    this.pending = true;
    window.setTimeout(() => {
      this.pending = false;
      for (const fn of this.listeners) fn();
    }, 0);
  }
}

/** The one live store of the page. */
export const live = new LiveStore();

/** Re-renders the calling component on every change of the live store; returns its version. */
export function useLive(): number {
  const [v, setV] = useState(live.version);
  useEffect(() => live.subscribe(() => setV(live.version)), []);
  return v;
}
