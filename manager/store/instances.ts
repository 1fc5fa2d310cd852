/**
 * The `instances`, `instance_allocs` and `instance_events` tables (docs/scheduling.md
 * "Instances", "Across restarts"): the desired state of every business instance (its spec,
 * status and reconcile state), the components it manages (written *before* a start is sent, so
 * a restarted manager knows every component it may have started and never starts a duplicate),
 * and its history. Writes are rare (an apply, a phase change) and committed at once; failed ones
 * are counted as `instance`.
 */
import type { StatementSync } from 'node:sqlite';
import type { InstanceEvent } from '../../common/api/instances.js';
import type { Page } from '../alerts/types.js';
import { insertedId, page, type RetentionRule, type StoreCore, type TableModule } from './core.js';

/** A stored instance; `spec` and `state` are JSON documents. Times in ms since the epoch. */
export interface InstanceRow {
  id: string;
  status: string;
  version: number;
  spec: string;
  state: string;
  who: string;
  created_at: number;
  updated_at: number;
}

/** A stored managed component: its record as JSON. */
export interface AllocRow {
  uuid: string;
  instance_id: string;
  record: string;
  updated_at: number;
}

/** An instance history entry to write. */
export interface NewInstanceEvent {
  instance_id: string;
  at: number;
  action: string;
  group?: string | null;
  index?: number | null;
  node?: string | null;
  uuid?: string | null;
  message: string;
  who: string;
}

interface EventRow {
  id: number;
  instance_id: string;
  at: number;
  action: string;
  grp: string | null;
  idx: number | null;
  node: string | null;
  uuid: string | null;
  message: string;
  who: string;
}

/** The instance tables. */
export class InstancesTable implements TableModule {
  readonly tables = ['instances', 'instance_allocs', 'instance_events'];
  /** Instance history may go by age or count (docs/operations.md#retention); specs and components never. */
  readonly retained: readonly RetentionRule[] = [{ table: 'instance_events', key: 'id', date: 'at', keep: '0' }];
  private readonly putStmt: StatementSync;
  private readonly listStmt: StatementSync;
  private readonly delStmt: StatementSync;
  private readonly putAlloc: StatementSync;
  private readonly delAlloc: StatementSync;
  private readonly delAllocs: StatementSync;
  private readonly allocsStmt: StatementSync;
  private readonly addEvent: StatementSync;
  private readonly eventsStmt: StatementSync;

  constructor(private readonly core: StoreCore) {
    const db = core.db;
    this.putStmt = db.prepare(
      `INSERT INTO instances (id, status, version, spec, state, who, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, version = excluded.version, spec = excluded.spec,
         state = excluded.state, who = excluded.who, updated_at = excluded.updated_at`,
    );
    this.listStmt = db.prepare('SELECT * FROM instances ORDER BY id');
    this.delStmt = db.prepare('DELETE FROM instances WHERE id = ?');
    this.putAlloc = db.prepare(
      `INSERT INTO instance_allocs (uuid, instance_id, record, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (uuid) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at`,
    );
    this.delAlloc = db.prepare('DELETE FROM instance_allocs WHERE uuid = ?');
    this.delAllocs = db.prepare('DELETE FROM instance_allocs WHERE instance_id = ?');
    this.allocsStmt = db.prepare('SELECT * FROM instance_allocs ORDER BY instance_id, uuid');
    this.addEvent = db.prepare(
      'INSERT INTO instance_events (instance_id, at, action, grp, idx, node, uuid, message, who) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.eventsStmt = db.prepare(
      'SELECT * FROM instance_events WHERE instance_id = ? AND id < ? ORDER BY id DESC LIMIT ?',
    );
  }

  /** Writes an instance now (created or changed). */
  put(r: InstanceRow): void {
    this.core.guard('instance', undefined, () =>
      this.putStmt.run(r.id, r.status, r.version, r.spec, r.state, r.who, r.created_at, r.updated_at),
    );
  }

  /** Every instance, by id. */
  list(): InstanceRow[] {
    return this.listStmt.all() as unknown as InstanceRow[];
  }

  /** Deletes an instance and its components' rows (its history stays until retention). */
  remove(id: string): void {
    this.core.guard('instance', undefined, () => {
      this.delAllocs.run(id);
      this.delStmt.run(id);
    });
  }

  /**
   * Writes a managed component now.
   * @returns whether the write succeeded (a start is sent only after its row is written)
   */
  saveAlloc(uuid: string, instanceId: string, record: object, at: number): boolean {
    return this.core.guard('instance', false, () => {
      this.putAlloc.run(uuid, instanceId, JSON.stringify(record), at);
      return true;
    });
  }

  /** Deletes a managed component's row (it is stopped). */
  deleteAlloc(uuid: string): void {
    this.core.guard('instance', undefined, () => this.delAlloc.run(uuid));
  }

  /** Every managed component. */
  allocs(): AllocRow[] {
    return this.allocsStmt.all() as unknown as AllocRow[];
  }

  /** Appends a history entry now. Returns its id (0 when the write failed). */
  event(e: NewInstanceEvent): number {
    return this.core.guard('instance', 0, () =>
      insertedId(
        this.addEvent.run(
          e.instance_id,
          e.at,
          e.action,
          e.group ?? null,
          e.index ?? null,
          e.node ?? null,
          e.uuid ?? null,
          e.message,
          e.who,
        ),
      ),
    );
  }

  /** A page of an instance's history, newest first. */
  events(instanceId: string, limit: number, before = Number.MAX_SAFE_INTEGER): Page<InstanceEvent> {
    const rows = this.eventsStmt.all(instanceId, before, limit + 1) as unknown as EventRow[];
    return page(
      rows.map((r) => ({
        id: r.id,
        at: new Date(r.at).toISOString(),
        instance_id: r.instance_id,
        action: r.action,
        group: r.grp,
        index: r.idx,
        node: r.node,
        uuid: r.uuid,
        message: r.message,
        who: r.who,
      })),
      limit,
    );
  }
}
