/**
 * The `nodes` table: one row per node (box-slot-cpu) with its identity, latest heartbeat, liveness
 * state and last-seen time. A transition is queued for the store's write queue (`save`); a heartbeat only marks the node
 * dirty (`touch`) and its row, read from the registry through the node source, is written at the
 * next flush (docs/configuration.md#data_dir-and-store-the-managers-database).
 */
import type { StatementSync } from 'node:sqlite';
import type { LinkMetrics } from '../../common/link.js';
import type { NodeState } from '../liveness.js';
import type { FlushSource, StoreCore, TableModule } from './core.js';

/** A node as persisted. Times are ms since the epoch. */
export interface NodeRow {
  id: string;
  box_id: number;
  slot_id: number;
  cpu_id: number;
  host_ip: string;
  claimants: string[];
  hostname: string | null;
  /** The latest heartbeat data (JSON text as written), or null. */
  heartbeat: string | null;
  state: NodeState;
  state_since: number;
  first_seen: number;
  last_seen: number;
  /**
   * The node's link state (JSON text of {@link StoredLink}) while it reports over the WebSocket
   * node link (docs/links.md "Linked nodes"); null (or absent) for a multicast board.
   */
  link?: string | null;
}

/** What a linked node's `link` column holds (docs/links.md "Linked nodes"). */
export interface StoredLink {
  /** Its heartbeat cadence, ms. */
  interval_ms: number;
  hostname?: string;
  os_info?: string;
  /** Its latest heartbeat metrics (link specification `metrics`), null before one. */
  metrics?: LinkMetrics | null;
}

/** The nodes table: writes now or at the next flush, reads at start. */
export class NodesTable implements TableModule {
  readonly tables = ['nodes'];
  /** Nodes to write at the next flush; their rows are built then (from the node source). */
  private readonly dirtyIds = new Set<string>();
  /** When each node's row was last written (or put back at start), ms: a touch is written touch_interval_ms after it. */
  private readonly writtenAt = new Map<string, number>();
  private source: (id: string) => NodeRow | undefined = () => undefined;
  private readonly upsert: StatementSync;
  private readonly all: StatementSync;
  private readonly del: StatementSync;
  readonly dirty: FlushSource;

  /**
   * @param touchIntervalMs the least time between two writes of a node's row for its heartbeats
   *   alone (store.touch_interval_ms; read at each flush)
   * @param now the clock, ms
   */
  constructor(
    private readonly core: StoreCore,
    private readonly touchIntervalMs: () => number = () => 0,
    private readonly now: () => number = Date.now,
  ) {
    // Positional parameters: this statement runs for every dirty node at each flush, and
    // node:sqlite binds positional values about 3x faster than a row object's named ones.
    this.upsert = core.db.prepare(
      `INSERT INTO nodes (id, box_id, slot_id, cpu_id, host_ip, claimants, hostname, heartbeat, state, state_since, first_seen, last_seen, link)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET host_ip = excluded.host_ip, claimants = excluded.claimants,
         hostname = excluded.hostname, heartbeat = excluded.heartbeat, state = excluded.state,
         state_since = excluded.state_since, last_seen = excluded.last_seen, link = excluded.link`,
    );
    this.all = core.db.prepare('SELECT * FROM nodes ORDER BY box_id, slot_id, cpu_id');
    this.del = core.db.prepare('DELETE FROM nodes WHERE id = ?');
    const dirtyIds = this.dirtyIds;
    this.dirty = {
      get pending() {
        return dirtyIds.size > 0;
      },
      take: (max: number, force: boolean) => {
        const now = this.now();
        const due = now - this.touchIntervalMs();
        const ids: string[] = [];
        for (const id of dirtyIds) {
          if (ids.length >= max) break;
          if (!force && (this.writtenAt.get(id) ?? Number.NEGATIVE_INFINITY) > due) continue;
          ids.push(id);
        }
        if (ids.length === 0) return null;
        for (const id of ids) dirtyIds.delete(id);
        const rows = ids.map((id) => this.source(id)).filter((r): r is NodeRow => r !== undefined);
        return {
          rows: ids.length,
          write: () => {
            for (const r of rows) this.write(r);
          },
          committed: () => {
            for (const id of ids) this.writtenAt.set(id, now);
          },
          failed: () => {
            for (const id of ids) dirtyIds.add(id);
          },
        };
      },
    };
  }

  private write(r: NodeRow): void {
    this.upsert.run(
      r.id,
      r.box_id,
      r.slot_id,
      r.cpu_id,
      r.host_ip,
      JSON.stringify(r.claimants),
      // undefined cannot be bound: a row built without them is written with NULL.
      r.hostname ?? null,
      r.heartbeat ?? null,
      r.state,
      r.state_since,
      r.first_seen,
      r.last_seen,
      r.link ?? null,
    );
  }

  /** Every node, as last written, by box, slot, cpu. A claimants list that cannot be read becomes `[host_ip]`. */
  load(): NodeRow[] {
    this.core.drain();
    const rows = this.all.all() as unknown as (Omit<NodeRow, 'claimants'> & { claimants: string })[];
    return rows.map((r) => ({ ...r, claimants: parseList(r.claimants, r.host_ip) }));
  }

  /** Sets where the rows of dirty nodes come from (the registry), read at each flush. */
  setSource(fn: (id: string) => NodeRow | undefined): void {
    this.source = fn;
  }

  /**
   * Marks a node to be written (O(1): called for every heartbeat): at the first periodic flush
   * store.touch_interval_ms or more after its row was last written, or at a full flush.
   */
  touch(id: string): void {
    this.dirtyIds.add(id);
  }

  /**
   * Counts the rows read at start as written at a time spread over the last touch interval, so that
   * the heartbeats of a restarted fleet are written spread over one interval, not all at once.
   */
  restored(ids: Iterable<string>): void {
    const now = this.now();
    const span = this.touchIntervalMs();
    for (const id of ids) this.writtenAt.set(id, now - Math.random() * span);
  }

  /** Deletes a node's row (node removal) through the write queue, after the writes queued before, and forgets it as dirty. A failure is counted as `node`. */
  remove(id: string): void {
    this.dirtyIds.delete(id);
    this.writtenAt.delete(id);
    this.core.enqueue('node', () => {
      this.del.run(id);
    });
  }

  /**
   * Writes a node through the write queue (a transition: written within store.write_queue.delay_ms,
   * before the next flush of dirty nodes, so a newer heartbeat's row is never overwritten by it).
   * A failure is counted as `node`.
   */
  save(row: NodeRow): void {
    this.dirtyIds.delete(row.id);
    this.writtenAt.set(row.id, this.now());
    this.core.enqueue('node', () => this.write(row));
  }
}

/** A JSON list of strings, or `[fallback]` when `text` is not one (or is empty). */
function parseList(text: string, fallback: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string') && v.length > 0) return v;
  } catch {
    // fall through
  }
  return [fallback];
}
