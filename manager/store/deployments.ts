/**
 * The `deployments` and `components` tables (docs/operations.md#deploying-workloads): a deployment
 * record is written when it is created and when it finishes; a component the manager started or
 * saw reported is written whenever its state changes. Failed writes are counted as `deployment`
 * and `component`.
 */
import type { StatementSync } from 'node:sqlite';
import type { DeploymentRecord } from '../deploy.js';
import type { RetentionRule, StoreCore, TableModule } from './core.js';

/** A component the manager knows of on a node; times in ms since the epoch. */
export interface ComponentRow {
  node: string;
  uuid: string;
  type: string | null;
  name: string | null;
  cid: string | null;
  state: string | null;
  deployment: string | null;
  first_seen: number;
  last_seen: number;
}

/** The deployments table: each record as JSON text, dated by `at` and `finished_at` (ms). */
export class DeploymentsTable implements TableModule {
  readonly tables = ['deployments'];
  /** Finished deployments may go by age or count; one under way never (docs/operations.md#retention). */
  readonly retained: readonly RetentionRule[] = [
    { table: 'deployments', key: 'rowid', date: 'at', keep: 'finished_at IS NULL' },
  ];
  private readonly saveStmt: StatementSync;
  private readonly newest: StatementSync;

  constructor(private readonly core: StoreCore) {
    this.saveStmt = core.db.prepare(
      `INSERT INTO deployments (id, node, at, finished_at, record) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, record = excluded.record`,
    );
    this.newest = core.db.prepare(
      'SELECT record FROM (SELECT rowid, record FROM deployments ORDER BY at DESC, rowid DESC LIMIT ?) ORDER BY rowid',
    );
  }

  /** Writes a deployment record now (created, or finished), after the writes queued before it. */
  save(rec: DeploymentRecord): void {
    this.core.drain();
    this.core.guard('deployment', undefined, () =>
      this.saveStmt.run(
        rec.id,
        rec.node,
        Date.parse(rec.at),
        rec.finished_at ? Date.parse(rec.finished_at) : null,
        JSON.stringify(rec),
      ),
    );
  }

  /** The newest `limit` deployments, oldest first. A record this muster cannot read is skipped (and kept). */
  load(limit: number): DeploymentRecord[] {
    this.core.drain();
    const rows = this.newest.all(limit) as { record: string }[];
    const out: DeploymentRecord[] = [];
    for (const r of rows) {
      try {
        out.push(JSON.parse(r.record) as DeploymentRecord);
      } catch {
        // a row this muster cannot read is left in the database
      }
    }
    return out;
  }
}

/** The components table, keyed by node and uuid. */
export class ComponentsTable implements TableModule {
  readonly tables = ['components'];
  /**
   * Components no longer running may go by age (of last_seen) or count; running, pending and
   * sleeping ones, and those the manager started that no report has shown yet (state NULL), never.
   */
  readonly retained: readonly RetentionRule[] = [
    {
      table: 'components',
      key: 'rowid',
      date: 'last_seen',
      keep: "state IS NULL OR state IN ('RUNNING', 'PENDING', 'SLEEPING')",
    },
  ];
  private readonly saveStmt: StatementSync;
  private readonly all: StatementSync;

  constructor(private readonly core: StoreCore) {
    // A field given as null keeps what the row had (coalesce); state and last_seen always change.
    // Positional parameters: a new fleet's first reports queue one of these per component, and
    // node:sqlite binds positional values about 3x faster than a row object's named ones.
    this.saveStmt = core.db.prepare(
      `INSERT INTO components (node, uuid, type, name, cid, state, deployment, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (node, uuid) DO UPDATE SET type = coalesce(excluded.type, type), name = coalesce(excluded.name, name),
         cid = coalesce(excluded.cid, cid), state = excluded.state,
         deployment = coalesce(excluded.deployment, deployment), last_seen = excluded.last_seen`,
    );
    this.all = core.db.prepare('SELECT * FROM components ORDER BY node, uuid');
  }

  /**
   * Writes a component's latest known state through the write queue (a report's component
   * changes must not wait on SQLite); its undefined fields are written as null.
   */
  save(c: ComponentRow): void {
    this.core.enqueue('component', () => {
      this.saveStmt.run(
        c.node,
        c.uuid,
        c.type ?? null,
        c.name ?? null,
        c.cid ?? null,
        c.state ?? null,
        c.deployment ?? null,
        c.first_seen,
        c.last_seen,
      );
    });
  }

  /** Every component known, by node then uuid. */
  load(): ComponentRow[] {
    this.core.drain();
    return this.all.all() as unknown as ComponentRow[];
  }
}
