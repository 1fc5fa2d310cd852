/**
 * The manager's memory across restarts (issue 4): one SQLite database (Node's built-in `node:sqlite`) under
 * `data_dir`, in WAL mode, with the versioned schema of ./migrations.ts. It holds the nodes
 * (identity, last seen, state), the history (state transitions, operations, component state
 * changes, manager starts and stops), the deployments, the components the manager drove, the
 * alerts and the alert rules.
 *
 * Writes that happen rarely (a transition, an operation, an alert raised or resolved) are
 * committed at once, so that a SIGKILL loses none of them. What changes on every report (a node's
 * last-seen time and heartbeat, an open alert's latest value) is kept dirty in memory and written
 * in one transaction every `store.flush_interval_ms`. Retention runs in steps of at most
 * `store.cleanup_batch_rows` deleted rows, with the event loop free between steps, so that
 * ingest never waits on a cleanup.
 *
 * A write that fails (disk full, I/O error) is logged and counted; the manager keeps serving
 * from memory and dirty rows are tried again at the next flush.
 */
import { mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { Counter, Histogram, Registry } from 'prom-client';
import { Counter as PromCounter, Histogram as PromHistogram } from 'prom-client';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import type { AlertKind, AlertView, HistoryEntry, HistoryKind, Page, RuleOp, Severity } from '../alerts/types.js';
import type { ManagerConfig } from '../config.js';
import type { DeploymentRecord } from '../deploy.js';
import type { NodeState } from '../liveness.js';
import { MIGRATIONS } from './migrations.js';

type StoreConfig = ManagerConfig['store'];
type Db = DatabaseSync;

/** SQLite primary result codes (https://sqlite.org/rescode.html). */
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/** Runs `fn` in one transaction: committed when it returns, rolled back when it throws. */
function inTransaction<T>(db: Db, fn: () => T): T {
  db.exec('BEGIN');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * A statement with named parameters (`@name`) that takes a row object as it is: keys the SQL does
 * not name are ignored (node:sqlite refuses them by default).
 */
function named(stmt: StatementSync): StatementSync {
  stmt.setAllowUnknownNamedParameters(true);
  return stmt;
}

/** The schema version kept in `PRAGMA user_version`. */
function userVersion(db: Db): number {
  return Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
}

/** Thrown when the database cannot be opened or was written by a newer muster. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

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
}

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

/** An alert to open; times in ms since the epoch. */
export interface NewAlert {
  key: string;
  kind: AlertKind;
  rule: string;
  severity: Severity;
  node: string | null;
  metric: string | null;
  instance: string | null;
  value: number | null;
  threshold: number | null;
  op: RuleOp | null;
  message: string;
  source: 'manager' | 'agent';
  first_seen: number;
  last_seen: number;
}

/** An open alert as kept in memory: the row id plus what was opened. */
export interface OpenAlert extends NewAlert {
  id: number;
}

/** A rule as stored (before validation against the metric catalog). */
export interface StoredRule {
  name: string;
  source: 'config' | 'api';
  metric: string;
  op: RuleOp;
  threshold: number;
  for_ms: number;
  severity: Severity;
  enabled: boolean;
  updated_at: number;
}

/** A component the manager knows of on a node. */
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

/** Filters of a history page; `since` in ms, `before` an id. */
export interface HistoryFilter {
  node?: string | undefined;
  kind?: HistoryKind | undefined;
  since?: number | undefined;
  before?: number | undefined;
  limit: number;
}

/** Filters of an alert page. */
export interface AlertFilter {
  open?: boolean | undefined;
  node?: string | undefined;
  kind?: AlertKind | undefined;
  severity?: Severity | undefined;
  since?: number | undefined;
  before?: number | undefined;
  limit: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** An alert as its row holds it: an open alert's fields plus when it was resolved. */
interface AlertRow extends OpenAlert {
  resolved_at: number | null;
}

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

/** An alert row as the API shows it. */
export function alertView(r: AlertRow): AlertView {
  return {
    id: r.id,
    kind: r.kind,
    rule: r.rule,
    severity: r.severity,
    node: r.node,
    metric: r.metric,
    instance: r.instance,
    value: r.value,
    threshold: r.threshold,
    op: r.op,
    message: r.message,
    source: r.source,
    state: r.resolved_at === null ? 'open' : 'resolved',
    first_seen: iso(r.first_seen),
    last_seen: iso(r.last_seen),
    resolved_at: r.resolved_at === null ? null : iso(r.resolved_at),
  };
}

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

/** The store's Prometheus metrics. */
function storeMetrics(registry: Registry) {
  const r = [registry];
  return {
    writeErrors: new PromCounter({
      name: 'muster_manager_store_write_errors_total',
      help: 'Database writes that failed (the data stays in memory; dirty rows are tried again)',
      labelNames: ['what'],
      registers: r,
    }) as Counter<'what'>,
    deleted: new PromCounter({
      name: 'muster_manager_store_rows_deleted_total',
      help: 'Rows removed by retention, by table',
      labelNames: ['table'],
      registers: r,
    }) as Counter<'table'>,
    flush: new PromHistogram({
      name: 'muster_manager_store_flush_seconds',
      help: 'Time of one batched write of last-seen times and open alerts',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
      registers: r,
    }) as Histogram,
  };
}

/** The tables retention trims, with the column that dates a row and the rows it may never delete. */
const RETAINED = [
  { table: 'history', key: 'id', date: 'at', keep: '0' },
  { table: 'alerts', key: 'id', date: 'resolved_at', keep: 'resolved_at IS NULL' },
  { table: 'deployments', key: 'rowid', date: 'at', keep: 'finished_at IS NULL' },
  // A component the manager started that no report has shown yet (state NULL) is kept too.
  {
    table: 'components',
    key: 'rowid',
    date: 'last_seen',
    keep: "state IS NULL OR state IN ('RUNNING', 'PENDING', 'SLEEPING')",
  },
] as const;

/** The manager database. Create with `Store.open`. */
export class Store {
  private readonly metrics: ReturnType<typeof storeMetrics>;
  private readonly rl: RateLimitedLog;
  /** Nodes to write at the next flush; their rows are built then (nodeSource). */
  private readonly dirtyNodes = new Set<string>();
  private nodeSource: (id: string) => NodeRow | undefined = () => undefined;
  private readonly dirtyAlerts = new Map<number, { value: number | null; last_seen: number; message: string }>();
  private flushTimer: NodeJS.Timeout | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private cleaning = false;
  private closed = false;
  private readonly stmt;

  private constructor(
    private readonly db: Db,
    readonly file: string,
    private cfg: StoreConfig,
    private readonly log: Logger,
    registry: Registry,
    private readonly now: () => number,
  ) {
    this.metrics = storeMetrics(registry);
    this.rl = new RateLimitedLog(log);
    this.stmt = {
      upsertNode: named(
        db.prepare(
          `INSERT INTO nodes (id, box_id, slot_id, cpu_id, host_ip, claimants, hostname, heartbeat, state, state_since, first_seen, last_seen)
         VALUES (@id, @box_id, @slot_id, @cpu_id, @host_ip, @claimants, @hostname, @heartbeat, @state, @state_since, @first_seen, @last_seen)
         ON CONFLICT (id) DO UPDATE SET host_ip = excluded.host_ip, claimants = excluded.claimants,
           hostname = excluded.hostname, heartbeat = excluded.heartbeat, state = excluded.state,
           state_since = excluded.state_since, last_seen = excluded.last_seen`,
        ),
      ),
      addHistory: named(
        db.prepare(
          `INSERT INTO history (at, node, kind, operation, args, result, message, who, ref)
         VALUES (@at, @node, @kind, @operation, @args, @result, @message, @who, @ref)`,
        ),
      ),
      finishHistory: db.prepare('UPDATE history SET result = ?, message = ? WHERE ref = ? AND kind = ?'),
      saveDeployment: db.prepare(
        `INSERT INTO deployments (id, node, at, finished_at, record) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, record = excluded.record`,
      ),
      saveComponent: named(
        db.prepare(
          `INSERT INTO components (node, uuid, type, name, cid, state, deployment, first_seen, last_seen)
         VALUES (@node, @uuid, @type, @name, @cid, @state, @deployment, @first_seen, @last_seen)
         ON CONFLICT (node, uuid) DO UPDATE SET type = coalesce(excluded.type, type), name = coalesce(excluded.name, name),
           cid = coalesce(excluded.cid, cid), state = excluded.state,
           deployment = coalesce(excluded.deployment, deployment), last_seen = excluded.last_seen`,
        ),
      ),
      openAlert: named(
        db.prepare(
          `INSERT INTO alerts (key, kind, rule, severity, node, metric, instance, value, threshold, op, message, source, first_seen, last_seen)
         VALUES (@key, @kind, @rule, @severity, @node, @metric, @instance, @value, @threshold, @op, @message, @source, @first_seen, @last_seen)`,
        ),
      ),
      touchAlert: db.prepare('UPDATE alerts SET value = ?, last_seen = ?, message = ? WHERE id = ?'),
      resolveAlert: db.prepare(
        'UPDATE alerts SET resolved_at = ?, last_seen = max(last_seen, ?), message = ? WHERE id = ? AND resolved_at IS NULL',
      ),
      getAlert: db.prepare('SELECT * FROM alerts WHERE id = ?'),
      putRule: db.prepare(
        `INSERT INTO alert_rules (name, source, rule, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET source = excluded.source, rule = excluded.rule, updated_at = excluded.updated_at`,
      ),
      deleteRule: db.prepare('DELETE FROM alert_rules WHERE name = ?'),
    };
  }

  /**
   * Opens (creating when missing) the database `cfg.file` under `dataDir` and brings its schema
   * up to date. A file that is not a database or is corrupt is moved aside to
   * `<file>.corrupt-<ms>` (logged as an error; nothing is overwritten) and a new one is created.
   * @throws StoreError when the directory cannot be created or written, or the schema is newer than this muster
   */
  static open(dataDir: string, cfg: StoreConfig, log: Logger, registry: Registry, now: () => number = Date.now): Store {
    const file = path.resolve(dataDir, cfg.file);
    try {
      mkdirSync(path.dirname(file), { recursive: true });
    } catch (err) {
      throw new StoreError(`data_dir ${dataDir}: cannot create ${path.dirname(file)} (${(err as Error).message})`);
    }
    let db: Db;
    try {
      db = Store.openFile(file, log);
    } catch (err) {
      // node:sqlite errors carry SQLite's extended result code; the primary one is its low byte.
      const code = ((err as { errcode?: number }).errcode ?? -1) & 0xff;
      if (code === SQLITE_NOTADB || code === SQLITE_CORRUPT) {
        const aside = `${file}.corrupt-${Date.now()}`;
        renameSync(file, aside);
        for (const ext of ['-wal', '-shm']) {
          try {
            renameSync(`${file}${ext}`, `${aside}${ext}`);
          } catch {
            // not there
          }
        }
        log.error(
          { file, moved_to: aside, err: (err as Error).message },
          'database unreadable: set aside, starting a new one',
        );
        db = Store.openFile(file, log);
      } else if (err instanceof StoreError) {
        throw err;
      } else {
        throw new StoreError(`store.file ${file}: cannot open (${(err as Error).message})`);
      }
    }
    return new Store(db, file, cfg, log, registry, now);
  }

  private static openFile(file: string, log: Logger): Db {
    const db = new DatabaseSync(file);
    try {
      db.exec('PRAGMA journal_mode = WAL');
      // NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only a power loss may
      // lose the last transactions.
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA busy_timeout = 5000');
      const version = userVersion(db);
      if (version > MIGRATIONS.length) {
        throw new StoreError(
          `store.file ${file}: schema version ${version} was written by a newer muster (this one knows ${MIGRATIONS.length}); refusing to touch it`,
        );
      }
      for (let v = version; v < MIGRATIONS.length; v++) {
        const m = MIGRATIONS[v] as (typeof MIGRATIONS)[number];
        inTransaction(db, () => {
          db.exec(m.sql);
          db.exec(`PRAGMA user_version = ${v + 1}`);
        });
        log.info({ file, version: v + 1, migration: m.name }, 'database schema migrated');
      }
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Schema version of the open database. */
  get version(): number {
    return userVersion(this.db);
  }

  /** Starts the batched flush and the retention timer. */
  start(): void {
    this.flushTimer = setInterval(() => this.flush(), this.cfg.flush_interval_ms);
    this.flushTimer.unref();
    this.cleanupTimer = setInterval(() => void this.cleanup(), this.cfg.cleanup_interval_ms);
    this.cleanupTimer.unref();
  }

  /** Applies new retention and flush settings (a config reload). */
  reconfigure(cfg: StoreConfig): void {
    const restart = this.flushTimer !== undefined;
    this.stopTimers();
    this.cfg = cfg;
    if (restart) this.start();
  }

  private stopTimers(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    this.flushTimer = undefined;
    this.cleanupTimer = undefined;
  }

  /** Writes what is dirty and closes the database. */
  close(): void {
    if (this.closed) return;
    this.stopTimers();
    this.flush();
    this.closed = true;
    this.db.close();
  }

  /** Runs `fn`, logging and counting a failure as `what`; returns its value or `fallback`. */
  private guard<T>(what: string, fallback: T, fn: () => T): T {
    if (this.closed) return fallback;
    try {
      return fn();
    } catch (err) {
      this.metrics.writeErrors.inc({ what });
      this.rl.warn(`store:${what}`, { what, err: (err as Error).message, file: this.file }, 'database write failed');
      return fallback;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Nodes
  // ------------------------------------------------------------------------------------------

  /** Every node, as last written. */
  loadNodes(): NodeRow[] {
    const rows = this.db.prepare('SELECT * FROM nodes ORDER BY box_id, slot_id, cpu_id').all() as (Omit<
      NodeRow,
      'claimants'
    > & { claimants: string })[];
    return rows.map((r) => ({ ...r, claimants: parseList(r.claimants, r.host_ip) }));
  }

  /** Sets where the rows of dirty nodes come from (the registry), read at each flush. */
  setNodeSource(fn: (id: string) => NodeRow | undefined): void {
    this.nodeSource = fn;
  }

  /** Marks a node to be written at the next flush (O(1): called for every heartbeat). */
  touchNode(id: string): void {
    this.dirtyNodes.add(id);
  }

  /** Writes a node now (a transition: it must survive a SIGKILL). */
  saveNode(row: NodeRow): void {
    this.dirtyNodes.delete(row.id);
    this.guard('node', undefined, () => this.stmt.upsertNode.run({ ...row, claimants: JSON.stringify(row.claimants) }));
  }

  /** Writes dirty nodes and open alerts' latest values in one transaction. */
  flush(): void {
    if (this.closed || (this.dirtyNodes.size === 0 && this.dirtyAlerts.size === 0)) return;
    const ids = [...this.dirtyNodes];
    this.dirtyNodes.clear();
    const nodes = ids.map((id) => this.nodeSource(id)).filter((r): r is NodeRow => r !== undefined);
    const alerts = [...this.dirtyAlerts];
    const t0 = performance.now();
    const ok = this.guard('flush', false, () => {
      inTransaction(this.db, () => {
        for (const row of nodes) this.stmt.upsertNode.run({ ...row, claimants: JSON.stringify(row.claimants) });
        for (const [id, a] of alerts) this.stmt.touchAlert.run(a.value, a.last_seen, a.message, id);
      });
      return true;
    });
    if (!ok) {
      for (const id of ids) this.dirtyNodes.add(id);
      return;
    }
    for (const [id, a] of alerts) if (this.dirtyAlerts.get(id) === a) this.dirtyAlerts.delete(id);
    this.metrics.flush.observe((performance.now() - t0) / 1000);
  }

  // ------------------------------------------------------------------------------------------
  // History
  // ------------------------------------------------------------------------------------------

  /** Appends a history entry now. Returns its id (0 when the write failed). */
  addHistory(e: NewHistory): number {
    return this.guard('history', 0, () =>
      Number(
        this.stmt.addHistory.run({
          at: e.at,
          node: e.node,
          kind: e.kind,
          operation: e.operation,
          args: e.args ? JSON.stringify(e.args) : null,
          result: e.result ?? null,
          message: e.message ?? null,
          who: e.who,
          ref: e.ref ?? null,
        }).lastInsertRowid,
      ),
    );
  }

  /** Sets the result of the operation entry whose ref is `ref` (a deployment that finished). */
  finishHistory(ref: string, result: number, message: string): void {
    this.guard('history', undefined, () => this.stmt.finishHistory.run(result, message, ref, 'operation'));
  }

  /** A page of history, newest first. */
  listHistory(f: HistoryFilter): Page<HistoryEntry> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.node !== undefined) where.push('node = ?') && args.push(f.node);
    if (f.kind !== undefined) where.push('kind = ?') && args.push(f.kind);
    if (f.since !== undefined) where.push('at >= ?') && args.push(f.since);
    if (f.before !== undefined) where.push('id < ?') && args.push(f.before);
    const rows = this.db
      .prepare(`SELECT * FROM history ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, f.limit + 1) as unknown as HistoryRow[];
    return page(rows.map(historyView), f.limit);
  }

  /** The latest `n` state transitions of every node, oldest first, by node. */
  recentTransitions(n: number): Map<string, HistoryEntry[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY node ORDER BY id DESC) AS k FROM history WHERE kind = 'state')
         WHERE k <= ? ORDER BY id`,
      )
      .all(n) as unknown as HistoryRow[];
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

  // ------------------------------------------------------------------------------------------
  // Deployments and components
  // ------------------------------------------------------------------------------------------

  /** Writes a deployment record now (created, or finished). */
  saveDeployment(rec: DeploymentRecord): void {
    this.guard('deployment', undefined, () =>
      this.stmt.saveDeployment.run(
        rec.id,
        rec.node,
        Date.parse(rec.at),
        rec.finished_at ? Date.parse(rec.finished_at) : null,
        JSON.stringify(rec),
      ),
    );
  }

  /** The newest `limit` deployments, oldest first. */
  loadDeployments(limit: number): DeploymentRecord[] {
    const rows = this.db
      .prepare(
        'SELECT record FROM (SELECT rowid, record FROM deployments ORDER BY at DESC, rowid DESC LIMIT ?) ORDER BY rowid',
      )
      .all(limit) as { record: string }[];
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

  /** Writes a component's latest known state now. */
  saveComponent(c: ComponentRow): void {
    this.guard('component', undefined, () =>
      this.stmt.saveComponent.run(c as unknown as Record<string, SQLInputValue>),
    );
  }

  /** Every component known, by node then uuid. */
  loadComponents(): ComponentRow[] {
    return this.db.prepare('SELECT * FROM components ORDER BY node, uuid').all() as unknown as ComponentRow[];
  }

  // ------------------------------------------------------------------------------------------
  // Alerts
  // ------------------------------------------------------------------------------------------

  /** Opens an alert now. Returns its id (0 when the write failed: the alert lives in memory only). */
  openAlert(a: NewAlert): number {
    return this.guard('alert', 0, () =>
      Number(this.stmt.openAlert.run(a as unknown as Record<string, SQLInputValue>).lastInsertRowid),
    );
  }

  /** Records an open alert's latest value and time at the next flush. */
  touchAlert(id: number, value: number | null, lastSeen: number, message: string): void {
    if (id > 0) this.dirtyAlerts.set(id, { value, last_seen: lastSeen, message });
  }

  /** Resolves an alert now. */
  resolveAlert(id: number, at: number, message: string, value?: number | null): void {
    if (id <= 0) return;
    const dirty = this.dirtyAlerts.get(id);
    this.dirtyAlerts.delete(id);
    this.guard('alert', undefined, () =>
      inTransaction(this.db, () => {
        if (dirty || value !== undefined)
          this.stmt.touchAlert.run(
            value !== undefined ? value : (dirty?.value ?? null),
            dirty?.last_seen ?? at,
            dirty?.message ?? message,
            id,
          );
        this.stmt.resolveAlert.run(at, at, message, id);
      }),
    );
  }

  /** Open alerts, oldest first. */
  loadOpenAlerts(): OpenAlert[] {
    return this.db
      .prepare('SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id')
      .all() as unknown as OpenAlert[];
  }

  /** One alert by id. */
  getAlert(id: number): AlertView | undefined {
    const r = this.stmt.getAlert.get(id) as AlertRow | undefined;
    return r ? alertView(r) : undefined;
  }

  /** A page of alerts, newest first. */
  listAlerts(f: AlertFilter): Page<AlertView> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.open === true) where.push('resolved_at IS NULL');
    if (f.open === false) where.push('resolved_at IS NOT NULL');
    if (f.node !== undefined) where.push('node = ?') && args.push(f.node);
    if (f.kind !== undefined) where.push('kind = ?') && args.push(f.kind);
    if (f.severity !== undefined) where.push('severity = ?') && args.push(f.severity);
    if (f.since !== undefined) where.push('last_seen >= ?') && args.push(f.since);
    if (f.before !== undefined) where.push('id < ?') && args.push(f.before);
    const rows = this.db
      .prepare(`SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, f.limit + 1) as unknown as AlertRow[];
    // Open alerts carry their latest value and time from memory (written at the next flush).
    const items = rows.map((r) => {
      const d = this.dirtyAlerts.get(r.id);
      return alertView(
        d && r.resolved_at === null ? { ...r, value: d.value, last_seen: d.last_seen, message: d.message } : r,
      );
    });
    return page(items, f.limit);
  }

  // ------------------------------------------------------------------------------------------
  // Rules
  // ------------------------------------------------------------------------------------------

  /** Every stored rule. */
  loadRules(): StoredRule[] {
    const rows = this.db.prepare('SELECT * FROM alert_rules ORDER BY name').all() as {
      name: string;
      source: 'config' | 'api';
      rule: string;
      updated_at: number;
    }[];
    const out: StoredRule[] = [];
    for (const r of rows) {
      try {
        out.push({
          ...(JSON.parse(r.rule) as Omit<StoredRule, 'name' | 'source' | 'updated_at'>),
          name: r.name,
          source: r.source,
          updated_at: r.updated_at,
        });
      } catch {
        this.log.error({ rule: r.name }, 'stored alert rule is not valid JSON; ignored');
      }
    }
    return out;
  }

  /** Writes a rule now. */
  putRule(rule: StoredRule): void {
    const { name, source, updated_at, ...body } = rule;
    this.stmt.putRule.run(name, source, JSON.stringify(body), updated_at);
  }

  /** Deletes a rule now. Returns whether it existed. */
  deleteRule(name: string): boolean {
    return this.stmt.deleteRule.run(name).changes > 0;
  }

  // ------------------------------------------------------------------------------------------
  // Retention
  // ------------------------------------------------------------------------------------------

  /**
   * Deletes rows past the retention (store.retention.days, store.retention.max_rows) in steps of
   * at most cleanup_batch_rows, yielding to the event loop between steps. Open alerts,
   * deployments under way and running components are never deleted. Returns rows deleted by table.
   */
  async cleanup(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    if (this.cleaning || this.closed) return out;
    this.cleaning = true;
    try {
      const { days, max_rows } = this.cfg.retention;
      const batch = this.cfg.cleanup_batch_rows;
      const cutoff = days > 0 ? this.now() - days * 86_400_000 : null;
      for (const t of RETAINED) {
        let deleted = 0;
        // The newest row beyond max_rows (by key); everything at or under it goes.
        const boundary =
          max_rows > 0
            ? ((
                this.db
                  .prepare(`SELECT ${t.key} AS k FROM ${t.table} ORDER BY ${t.key} DESC LIMIT 1 OFFSET ?`)
                  .get(max_rows) as { k: number } | undefined
              )?.k ?? null)
            : null;
        if (cutoff === null && boundary === null) continue;
        const cond = [
          ...(cutoff !== null ? [`(${t.date} IS NOT NULL AND ${t.date} < ${cutoff})`] : []),
          ...(boundary !== null ? [`${t.key} <= ${boundary}`] : []),
        ].join(' OR ');
        const step = this.db.prepare(
          `DELETE FROM ${t.table} WHERE ${t.key} IN (SELECT ${t.key} FROM ${t.table} WHERE NOT (${t.keep}) AND (${cond}) ORDER BY ${t.key} LIMIT ${batch})`,
        );
        for (;;) {
          if (this.closed) return out;
          const n = this.guard('cleanup', 0, () => Number(step.run().changes));
          deleted += n;
          if (n > 0) this.metrics.deleted.inc({ table: t.table }, n);
          if (n < batch) break;
          await new Promise((r) => setImmediate(r));
        }
        out[t.table] = deleted;
      }
      const total = Object.values(out).reduce((a, b) => a + b, 0);
      if (total > 0) this.log.info({ deleted: out, days, max_rows }, 'retention: old rows removed');
      return out;
    } finally {
      this.cleaning = false;
    }
  }
}

function parseList(text: string, fallback: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string') && v.length > 0) return v;
  } catch {
    // fall through
  }
  return [fallback];
}

function page<T extends { id: number }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
}
