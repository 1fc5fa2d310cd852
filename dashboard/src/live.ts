/**
 * The live state of the dashboard (docs/dashboard.md "Live updates"): the nodes and the open
 * alerts, kept current by the manager's event stream `GET /api/v1/events` (common/api/events.ts).
 * The stream is reopened by itself with a growing delay (1 s up to 10 s) whenever it drops — a
 * manager restart, a network cut — and the page shows "not live" until it is back; each reconnect
 * begins with a full snapshot, so nothing is missed for long.
 *
 * After the snapshot, `nodes` events are diffs: new nodes whole, known ones as patches of the
 * fields that changed (`{ ...old, ...patch }`). Views are told in tasks of their own: first the
 * page-wide listeners ({@link LiveStore.subscribe}), then the watchers of single nodes
 * ({@link LiveStore.watch}, one per chassis cell) in slices of {@link WATCH_SLICE} nodes, one slice
 * per frame, so that 1,000 changed boards are several short tasks and frames, never one long one (docs/dashboard.md
 * "Performance").
 */
import { useEffect, useState } from 'preact/hooks';
import type { AlertView } from '../../common/api/alerts.js';
import type { AlertsEvent, NodeSummaryPatch, NodesEvent } from '../../common/api/events.js';
import type { NodeSummary } from '../../common/api/nodes.js';

/** Node watchers called per task and frame: each re-renders one small view (a chassis cell). */
export const WATCH_SLICE = 100;

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
  /** Bumped when the set of nodes changes (a node added or removed, a snapshot): the chassis layout. */
  layout = 0;
  /** Bumped when the set of alerting nodes changes. */
  alertsVersion = 0;
  /** When the last event arrived (ms). */
  lastEventAt = 0;
  private readonly listeners = new Set<() => void>();
  private readonly watchers = new Map<string, Set<() => void>>();
  /** Nodes changed and not yet told to their watchers. */
  private dirty = new Set<string>();
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
    this.dirty.clear();
    this.open = [];
    this.alerting = new Set();
    this.layout++;
    this.setState('connecting');
  }

  /** Calls `fn` after every change; returns the unsubscribe. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Calls `fn` when node `id` changed (in a task shared with at most WATCH_SLICE other nodes'
   * watchers); returns the unsubscribe.
   */
  watch(id: string, fn: () => void): () => void {
    let set = this.watchers.get(id);
    if (!set) {
      set = new Set();
      this.watchers.set(id, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.watchers.get(id) === set) this.watchers.delete(id);
    };
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
      const first = this.nodes.size === 0;
      if (first) performance.mark('muster:nodes-received');
      this.applyNodes(JSON.parse((e as MessageEvent<string>).data) as NodesEvent);
      if (first) performance.mark('muster:nodes-applied');
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
    if (ev.full) {
      this.nodes.clear();
      this.layout++;
      for (const id of this.watchers.keys()) this.dirty.add(id);
    }
    if (!ev.full && (ev.changed.length > 0 || ev.removed.length > 0)) this.layout++;
    for (const n of ev.changed) {
      this.nodes.set(n.id, n);
      this.dirty.add(n.id);
    }
    for (const p of ev.patched ?? []) this.patch(p);
    for (const id of ev.removed) {
      this.nodes.delete(id);
      this.dirty.add(id);
    }
    this.round = ev.round;
    this.state = 'live';
    this.changed();
  }

  /** A patch of a known node: a new object with the changed fields (a patch of an unknown node is ignored). */
  private patch(p: NodeSummaryPatch): void {
    const old = this.nodes.get(p.id);
    if (!old) return;
    this.nodes.set(p.id, { ...old, ...p });
    this.dirty.add(p.id);
  }

  private applyAlerts(ev: AlertsEvent): void {
    this.lastEventAt = Date.now();
    this.open = ev.open;
    const next = new Set(ev.open.map((a) => a.node).filter((n): n is string => n !== null));
    const same = next.size === this.alerting.size && [...next].every((id) => this.alerting.has(id));
    if (!same) {
      for (const id of next) if (!this.alerting.has(id)) this.dirty.add(id);
      for (const id of this.alerting) if (!next.has(id)) this.dirty.add(id);
      this.alertsVersion++;
    }
    this.alerting = next;
    this.changed();
  }

  private setState(s: LiveState): void {
    if (this.state === s) return;
    this.state = s;
    this.changed();
  }

  private pending = false;

  /**
   * Tells the views, in tasks of their own: reading a large event (1,000 boards) and rendering
   * it are then several short tasks instead of one long one (docs/dashboard.md "Performance"):
   * the page-wide listeners first, then the node watchers WATCH_SLICE at a time.
   */
  private changed(): void {
    this.version++;
    if (this.pending) return;
    this.pending = true;
    window.setTimeout(() => {
      this.pending = false;
      for (const fn of this.listeners) fn();
      this.flushWatchers();
    }, 0);
  }

  private flushing = false;

  /** Calls the watchers of up to WATCH_SLICE dirty nodes, then again in a later task while any are left. */
  private flushWatchers(): void {
    if (this.flushing) return;
    const step = () => {
      let n = 0;
      for (const id of this.dirty) {
        this.dirty.delete(id);
        const set = this.watchers.get(id);
        if (!set) continue;
        for (const fn of set) fn();
        if (++n >= WATCH_SLICE) break;
      }
      if (this.dirty.size === 0) this.flushing = false;
      // The next slice after the next frame: each frame lays out and paints one slice of cells
      // (1,000 changed cells in one frame are ~85 ms of layout and paint). A hidden page has no
      // frames: plain tasks then.
      else if (document.hidden) window.setTimeout(step, 0);
      else requestAnimationFrame(() => window.setTimeout(step, 0));
    };
    this.flushing = true;
    step();
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
