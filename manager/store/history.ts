/**
 * The `history` table: state transitions, operations, component state changes, manager starts and
 * stops, each queued for the store's write queue and written in order within store.write_queue.delay_ms
 * (docs/operations.md#muster-history, docs/operations.md#across-restarts); ids are allocated in memory.
 */
import type { StatementSync } from 'node:sqlite';
import type { HistoryEntry, HistoryKind, Page } from '../alerts/types.js';
import { iso, lastId, page, type RetentionRule, type StoreCore, type TableModule } from './core.js';

/** A history entry to write; `at` in ms since the epoch. */
export interface NewHistory {
  at: number;
  node: string | null;
  kind: HistoryKind;
  operation: string;
  args?: Record<string, unknown> | null;
  result?: number | null;
  message?: string | null;
  who: string;
  ref?: string | null;
}

/** Filters of a history page; `since` in ms, `before` an id. */
export interface HistoryFilter {
  node?: string | undefined;
  kind?: HistoryKind | undefined;
  since?: number | undefined;
  before?: number | undefined;
  limit: number;
}

/** A history row as stored; `args` is JSON text. */
interface HistoryRow {
  id: number;
  at: number;
  node: string | null;
  kind: HistoryKind;
  operation: string;
  args: string | null;
  result: number | null;
  message: string | null;
  who: string;
  ref: string | null;
}

/** A history row as the API shows it (`args` parsed; text that is not JSON is shown as `{ raw }`). */
function historyView(r: HistoryRow): HistoryEntry {
  let args: Record<string, unknown> | null = null;
  if (r.args) {
    try {
      args = JSON.parse(r.args) as Record<string, unknown>;
    } catch {
      args = { raw: r.args };
    }
  }
  return {
    id: r.id,
    at: iso(r.at),
    node: r.node,
    kind: r.kind,
    operation: r.operation,
    args,
    result: r.result,
    message: r.message,
    who: r.who,
    ref: r.ref,
  };
}

/** The history table. Writes are counted as `history` when they fail. */
export class HistoryTable implements TableModule {
  readonly tables = ['history'];
  /** Every entry may go by age or count (docs/operations.md#retention). */
  readonly retained: readonly RetentionRule[] = [{ table: 'history', key: 'id', date: 'at', keep: '0' }];
  private readonly insert: StatementSync;
  private readonly finishStmt: StatementSync;
  private readonly transitions: StatementSync;
  /** The id the next entry gets: allocated here, so that `add` can answer before the row is written. */
  private nextId: number;

  constructor(private readonly core: StoreCore) {
    this.nextId = lastId(core.db, 'history') + 1;
    // Positional parameters: node:sqlite binds them about 3x faster than a row object's named ones.
    this.insert = core.db.prepare(
      'INSERT INTO history (id, at, node, kind, operation, args, result, message, who, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.finishStmt = core.db.prepare('UPDATE history SET result = ?, message = ? WHERE ref = ? AND kind = ?');
    this.transitions = core.db.prepare(
      `SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY node ORDER BY id DESC) AS k FROM history WHERE kind = 'state')
       WHERE k <= ? ORDER BY id`,
    );
  }

  /**
   * Appends an entry through the store's write queue (`StoreCore.enqueue`: written within
   * store.write_queue.delay_ms, before any read). Returns its id, or 0 when the store is closed,
   * the queue is full or (before the store is started) the write failed.
   */
  add(e: NewHistory): number {
    const id = this.nextId;
    const args = e.args ? JSON.stringify(e.args) : null;
    const ok = this.core.enqueue('history', () => {
      this.insert.run(
        id,
        e.at,
        e.node ?? null,
        e.kind,
        e.operation,
        args,
        e.result ?? null,
        e.message ?? null,
        e.who,
        e.ref ?? null,
      );
    });
    if (!ok) return 0;
    this.nextId++;
    return id;
  }

  /** Sets the result and message of the operation entry whose ref is `ref` (a deployment that finished), queued after its entry. */
  finish(ref: string, result: number, message: string): void {
    this.core.enqueue('history', () => {
      this.finishStmt.run(result, message, ref, 'operation');
    });
  }

  /** A page of entries, newest first (`limit` of them; `next` is the `before` of the next page). */
  list(f: HistoryFilter): Page<HistoryEntry> {
    this.core.drain();
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.node !== undefined) where.push('node = ?') && args.push(f.node);
    if (f.kind !== undefined) where.push('kind = ?') && args.push(f.kind);
    if (f.since !== undefined) where.push('at >= ?') && args.push(f.since);
    if (f.before !== undefined) where.push('id < ?') && args.push(f.before);
    const rows = this.core.db
      .prepare(`SELECT * FROM history ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, f.limit + 1) as unknown as HistoryRow[];
    return page(rows.map(historyView), f.limit);
  }

  /** The latest `n` state transitions of every node, oldest first, by node. */
  recentTransitions(n: number): Map<string, HistoryEntry[]> {
    this.core.drain();
    const rows = this.transitions.all(n) as unknown as HistoryRow[];
    const out = new Map<string, HistoryEntry[]>();
    for (const r of rows) {
      if (r.node === null) continue;
      let list = out.get(r.node);
      if (!list) {
        list = [];
        out.set(r.node, list);
      }
      list.push(historyView(r));
    }
    return out;
  }
}
