/**
 * The store's shared core: the one SQLite connection (Node's built-in `node:sqlite`) and what every
 * table module uses — open, pragmas, migrations, the write guard, transactions, the batched flush
 * and its timers, and the store's metrics. It knows no table: the table modules (nodes.ts,
 * history.ts, alerts.ts, deployments.ts) and retention.ts are built on it, and store.ts composes
 * them into the `Store` the manager uses.
 *
 * What is written when (docs/configuration.md#data_dir-and-store-the-managers-database,
 * docs/operations.md#across-restarts): what happens rarely (a transition, an operation, an alert
 * raised or resolved) is committed at once, so that a SIGKILL loses none of it; what changes on
 * every report is kept dirty in memory by its table module and written in one transaction every
 * `store.flush_interval_ms` (a `FlushSource`). A write that fails (disk full, I/O error) is logged
 * and counted by `guard`; the manager keeps serving from memory and dirty rows are tried again.
 *
 * ## Adding a table
 * 1. Append a migration to ./migrations.ts (never edit a released one).
 * 2. Write one module `./<table>.ts`: a class taking the `StoreCore`, owning its row types and its
 *    prepared statements (`core.db.prepare`; see the node:sqlite notes below), its writes wrapped
 *    in `core.guard(what, ...)`. When rows change on every report, give it a `dirty` FlushSource;
 *    when old rows go, give it `retained` rules.
 * 3. Add one line in the `Store` constructor (./store.ts): `this.users = core.register(new UsersTable(core))`,
 *    and the `Store` methods callers use, delegating to it.
 *
 * ## node:sqlite, as this store relies on it
 * - Errors are `Error`s with `code: 'ERR_SQLITE_ERROR'`, `errcode` (SQLite's extended result code;
 *   the primary code is its low byte, see `sqliteCode`) and `errstr`.
 * - `run()` returns `changes` and `lastInsertRowid` typed `number | bigint`; `rowsChanged` and
 *   `insertedId` turn them into numbers.
 * - A named parameter the SQL does not use is refused unless the statement allows it (`named`).
 *   A named parameter missing from the object is bound as NULL, but a key whose value is
 *   `undefined` throws (`ERR_INVALID_ARG_TYPE`): `bindable` maps undefined to null, and positional
 *   values are passed as `x ?? null` where a row may carry undefined.
 * - Binding a row object by name costs about 3x binding the same values by position (measured on
 *   the nodes upsert), so the statements run on every flush or often (nodes, history, alerts) are
 *   positional; `named` + `bindable` suit rare writes of whole rows (components).
 * - Integer columns come back as JS numbers (`setReadBigInts` is left off): times in ms since the
 *   epoch and row ids stay far below 2^53.
 * - `DatabaseSync` is synchronous, like better-sqlite3 was: a write blocks the event loop for its
 *   duration, hence the batched flush and retention in bounded steps.
 */
import { mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementResultingChanges, type StatementSync } from 'node:sqlite';
import type { Counter, Histogram, Registry } from 'prom-client';
import { Counter as PromCounter, Gauge as PromGauge, Histogram as PromHistogram } from 'prom-client';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import type { Page } from '../alerts/types.js';
import type { ManagerConfig } from '../config.js';
import { MIGRATIONS, type Migration } from './migrations.js';

/** The `store` section of the manager config (docs/configuration.md#data_dir-and-store-the-managers-database). */
export type StoreConfig = ManagerConfig['store'];

/** SQLite primary result codes (https://sqlite.org/rescode.html). */
export const SQLITE_CORRUPT = 11;
export const SQLITE_NOTADB = 26;

/** Thrown when the database cannot be opened or was written by a newer muster. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/**
 * The primary SQLite result code of an error thrown by node:sqlite (its `errcode` holds the
 * extended code, whose low byte is the primary one), or -1 when `err` is not a SQLite error.
 */
export function sqliteCode(err: unknown): number {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' ? code & 0xff : -1;
}

/** Runs `fn` in one transaction: committed when it returns, rolled back when it throws (and rethrown). */
export function inTransaction<T>(db: DatabaseSync, fn: () => T): T {
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
export function named(stmt: StatementSync): StatementSync {
  stmt.setAllowUnknownNamedParameters(true);
  return stmt;
}

/**
 * A row object that node:sqlite can bind: `row` itself when none of its values is `undefined`,
 * else a copy with those values null (undefined cannot be bound; null is what the row means).
 */
export function bindable(row: object): Record<string, SQLInputValue> {
  const r = row as Record<string, unknown>;
  for (const k in r) {
    if (r[k] !== undefined) continue;
    const out: Record<string, unknown> = {};
    for (const j in r) out[j] = r[j] === undefined ? null : r[j];
    return out as Record<string, SQLInputValue>;
  }
  return r as Record<string, SQLInputValue>;
}

/** The number of rows a `run()` changed, as a number. */
export function rowsChanged(r: StatementResultingChanges): number {
  return Number(r.changes);
}

/** The rowid a `run()` inserted, as a number. */
export function insertedId(r: StatementResultingChanges): number {
  return Number(r.lastInsertRowid);
}

/**
 * The largest id an AUTOINCREMENT `table` has handed out (its `sqlite_sequence` entry, or its
 * largest row id), 0 when none: a table that allocates ids in memory starts after it.
 */
export function lastId(db: DatabaseSync, table: string): number {
  const seq = db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table) as { seq: number } | undefined;
  const max = db.prepare(`SELECT max(id) AS m FROM ${table}`).get() as { m: number | null };
  return Math.max(Number(seq?.seq ?? 0), Number(max.m ?? 0));
}

/** The schema version kept in `PRAGMA user_version`. */
export function userVersion(db: DatabaseSync): number {
  return Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
}

/** An ISO 8601 text of a time in ms since the epoch. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * A page of `limit` items from `rows` (fetched with `LIMIT limit + 1`, newest first); `next` is the
 * id to pass as `before` for the following page, null on the last one.
 */
export function page<T extends { id: number }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
}

/** Rows a flush source handed to one flush transaction. */
export interface FlushBatch {
  /** Rows it writes. */
  readonly rows: number;
  write(): void;
  /** The transaction committed. */
  committed(): void;
  /** It was rolled back: keep the rows dirty. */
  failed(): void;
}

/**
 * What a table module keeps dirty in memory until the next flush. `take` is called at each flush
 * with something pending; the writes it returns run inside the flush transaction, then exactly one
 * of `committed` or `failed`.
 */
export interface FlushSource {
  /** Whether anything waits to be written. */
  readonly pending: boolean;
  /**
   * Takes what waits: at most `max` rows (the rest stays pending for the next transaction). A
   * periodic flush (`force` false) lets a source hold back rows it writes less often than every
   * flush (nodes: store.touch_interval_ms); a full flush (`force`: a clean stop, `Store.flush`)
   * takes them all. Null when nothing is to be written now.
   */
  take(max: number, force: boolean): FlushBatch | null;
}

/**
 * Rows of one table that retention may delete (docs/operations.md#retention): `key` orders rows
 * (oldest first) and counts them against `store.retention.max_rows`; `date` (ms since the epoch,
 * NULL never expires) is compared with `store.retention.days`; `keep` is an SQL condition of rows
 * never deleted ('0' for none). All three are SQL text from the module, never from input.
 */
export interface RetentionRule {
  table: string;
  key: string;
  date: string;
  keep: string;
}

/** What a table module may bring to the core when registered (see "Adding a table" above). */
export interface TableModule {
  /** The SQL tables the module owns (its statements touch no other). */
  readonly tables: readonly string[];
  /** Rows written in the batched flush. */
  readonly dirty?: FlushSource;
  /** Rows retention trims. */
  readonly retained?: readonly RetentionRule[];
}

/** The store's Prometheus metrics (docs/operations.md#prometheus-metrics). */
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
    queueDropped: new PromCounter({
      name: 'muster_manager_store_queue_dropped_total',
      help: 'Writes dropped because the write queue held store.write_queue.max_items (the data stays in memory only), by what',
      labelNames: ['what'],
      registers: r,
    }) as Counter<'what'>,
    queueBatch: new PromHistogram({
      name: 'muster_manager_store_queue_batch_seconds',
      help: 'Time of one transaction of queued writes (history, transitions, components, alerts)',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
      registers: r,
    }) as Histogram,
  };
}

/** Defaults of `store.write_queue` (docs/configuration.md#data_dir-and-store-the-managers-database). */
export const WRITE_QUEUE_DEFAULTS = { max_items: 200_000, batch_items: 2000, delay_ms: 50, batch_ms: 20 } as const;

/** Rows of dirty flush sources written per transaction by the periodic flush (at most; also bounded by batch_ms). */
export const FLUSH_STEP_ROWS = 500;

/** A write waiting in the queue: `what` names it in the error and drop counters. */
interface QueuedWrite {
  what: string;
  write: () => void;
}

/** The store's metrics, as table modules and retention count into them. */
export type StoreMetrics = ReturnType<typeof storeMetrics>;

/** A job run every `intervalMs(cfg)` once the store is started (retention registers one). */
interface Periodic {
  intervalMs: (cfg: StoreConfig) => number;
  run: () => void;
  timer?: NodeJS.Timeout | undefined;
}

/** The open database and what the table modules share. Create with `StoreCore.open`. */
export class StoreCore {
  readonly metrics: StoreMetrics;
  private readonly rl: RateLimitedLog;
  private readonly flushSources: FlushSource[] = [];
  private readonly retentionRules: RetentionRule[] = [];
  private readonly periodic: Periodic[];
  private started = false;
  private closedFlag = false;
  /** Writes waiting for the next queue transaction, oldest first (from `qHead`). */
  private queue: QueuedWrite[] = [];
  private qHead = 0;
  private qTimer: NodeJS.Timeout | undefined;
  private qImmediate: NodeJS.Immediate | undefined;
  /** The next step of a periodic flush. */
  private fImmediate: NodeJS.Immediate | undefined;
  /** A periodic flush waits for the write queue to empty. */
  private flushWaits = false;

  private constructor(
    /** The connection. Table modules prepare their statements on it. */
    readonly db: DatabaseSync,
    /** The database file, absolute. */
    readonly file: string,
    private config: StoreConfig,
    readonly log: Logger,
    registry: Registry,
    /** The clock, ms since the epoch (retention's cutoff). */
    readonly now: () => number,
  ) {
    this.metrics = storeMetrics(registry);
    this.rl = new RateLimitedLog(log);
    this.periodic = [{ intervalMs: (c) => c.flush_interval_ms, run: () => this.flushTick() }];
    const depth = () => this.queueDepth;
    new PromGauge({
      name: 'muster_manager_store_queue_depth',
      help: 'Writes waiting in the store write queue (bounded by store.write_queue.max_items)',
      registers: [registry],
      collect() {
        this.set(depth());
      },
    });
  }

  /**
   * Opens (creating when missing) the database `cfg.file` under `dataDir` in WAL mode with
   * `synchronous = NORMAL`, and brings its schema up to date with `migrations` (each in its own
   * transaction, `PRAGMA user_version` counting those applied). A file that is not a database or is
   * corrupt (SQLITE_NOTADB, SQLITE_CORRUPT) is moved aside with its -wal and -shm to
   * `<file>.corrupt-<ms>` (logged as an error; nothing is overwritten) and a new one is created.
   * @throws StoreError when the directory cannot be created, the file cannot be opened, or its
   *   schema version is newer than `migrations` knows (the file is then left untouched)
   */
  static open(
    dataDir: string,
    cfg: StoreConfig,
    log: Logger,
    registry: Registry,
    now: () => number = Date.now,
    migrations: readonly Migration[] = MIGRATIONS,
  ): StoreCore {
    const file = path.resolve(dataDir, cfg.file);
    try {
      mkdirSync(path.dirname(file), { recursive: true });
    } catch (err) {
      throw new StoreError(`data_dir ${dataDir}: cannot create ${path.dirname(file)} (${(err as Error).message})`);
    }
    let db: DatabaseSync;
    try {
      db = openFile(file, log, migrations);
    } catch (err) {
      const code = sqliteCode(err);
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
        db = openFile(file, log, migrations);
      } else if (err instanceof StoreError) {
        throw err;
      } else {
        throw new StoreError(`store.file ${file}: cannot open (${(err as Error).message})`);
      }
    }
    return new StoreCore(db, file, cfg, log, registry, now);
  }

  /** The config in force (changed by `reconfigure`). */
  get cfg(): StoreConfig {
    return this.config;
  }

  /** Whether the database was closed: writes are then skipped (`guard` returns its fallback). */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Schema version of the open database. */
  get version(): number {
    return userVersion(this.db);
  }

  /** Adds a table module's flush source and retention rules, in order; returns the module. */
  register<T extends TableModule>(table: T): T {
    if (table.dirty) this.flushSources.push(table.dirty);
    if (table.retained) this.retentionRules.push(...table.retained);
    return table;
  }

  /** The retention rules of the registered modules, in registration order. */
  get retained(): readonly RetentionRule[] {
    return this.retentionRules;
  }

  /** Runs `run` every `intervalMs(cfg)` ms (read again at each `reconfigure`) while the store is started. */
  every(intervalMs: (cfg: StoreConfig) => number, run: () => void): void {
    const job: Periodic = { intervalMs, run };
    this.periodic.push(job);
    if (this.started) this.startJob(job);
  }

  /** Starts the batched flush and the periodic jobs. */
  start(): void {
    if (this.closedFlag) return;
    this.started = true;
    for (const job of this.periodic) this.startJob(job);
  }

  private startJob(job: Periodic): void {
    job.timer = setInterval(job.run, job.intervalMs(this.config));
    job.timer.unref();
  }

  private stopTimers(): void {
    for (const job of this.periodic) {
      if (job.timer) clearInterval(job.timer);
      job.timer = undefined;
    }
  }

  /** Applies new flush, retention and cleanup settings (a config reload); restarts the timers if started. */
  reconfigure(cfg: StoreConfig): void {
    this.stopTimers();
    this.config = cfg;
    if (this.started) for (const job of this.periodic) this.startJob(job);
  }

  /** Writes what is dirty and closes the database. Idempotent. */
  close(): void {
    if (this.closedFlag) return;
    this.stopTimers();
    this.started = false;
    this.flush();
    this.cancelQueueTimers();
    if (this.fImmediate) clearImmediate(this.fImmediate);
    this.fImmediate = undefined;
    this.flushWaits = false;
    this.closedFlag = true;
    this.db.close();
  }

  /**
   * Runs `fn`, a database write; a failure is counted in `muster_manager_store_write_errors_total{what}`,
   * logged at a rate limit (`database write failed`) and answered with `fallback`. After `close`,
   * returns `fallback` without running `fn`.
   */
  guard<T>(what: string, fallback: T, fn: () => T): T {
    if (this.closedFlag) return fallback;
    try {
      return fn();
    } catch (err) {
      this.metrics.writeErrors.inc({ what });
      this.rl.warn(`store:${what}`, { what, err: (err as Error).message, file: this.file }, 'database write failed');
      return fallback;
    }
  }

  /** Runs `fn` in one transaction on this database (see `inTransaction`). */
  transaction<T>(fn: () => T): T {
    return inTransaction(this.db, fn);
  }

  // The write queue ------------------------------------------------------------------------------

  /** Writes waiting in the queue. */
  get queueDepth(): number {
    return this.queue.length - this.qHead;
  }

  private get wq(): { max_items: number; batch_items: number; delay_ms: number; batch_ms: number } {
    return { ...WRITE_QUEUE_DEFAULTS, ...this.config.write_queue };
  }

  /**
   * Queues a write for the next queue transaction (docs/configuration.md#data_dir-and-store-the-managers-database):
   * the caller (the ingest path, the event wiring) never waits on SQLite. Queued writes go out in
   * order, at most `store.write_queue.batch_items` per transaction, `store.write_queue.delay_ms`
   * after the first one was queued or at once (next turn of the event loop) when a batch is full,
   * and before any read of the store (`drain`). Before `start()` (the manager restoring its state,
   * tests) `write` runs at once, guarded. A queue holding `max_items` refuses the write: counted in
   * `muster_manager_store_queue_dropped_total{what}` and logged at a rate limit.
   * @returns false when the write was dropped (queue full, or the store closed)
   */
  enqueue(what: string, write: () => void): boolean {
    if (this.closedFlag) return false;
    if (!this.started)
      return this.guard(what, false, () => {
        write();
        return true;
      });
    const { max_items, batch_items, delay_ms } = this.wq;
    if (this.queueDepth >= max_items) {
      this.metrics.queueDropped.inc({ what });
      this.rl.warn(
        `queue:${what}`,
        { what, max_items },
        'store write queue full (store.write_queue.max_items): write dropped, kept in memory only',
      );
      return false;
    }
    this.queue.push({ what, write });
    if (this.queueDepth >= batch_items) {
      this.qImmediate ??= setImmediate(() => {
        this.qImmediate = undefined;
        this.writeBatch();
        this.afterBatch();
      });
    } else if (!this.qTimer && !this.qImmediate) {
      this.qTimer = setTimeout(() => {
        this.qTimer = undefined;
        this.writeBatch();
        this.afterBatch();
      }, delay_ms);
      this.qTimer.unref();
    }
    return true;
  }

  /** Schedules the next batch on the next turn of the event loop (requests run in between). */
  private scheduleQueue(): void {
    this.qImmediate ??= setImmediate(() => {
      this.qImmediate = undefined;
      this.writeBatch();
      this.afterBatch();
    });
  }

  /** After a queue transaction: the next one on the next turn, or the flush that waited for the queue. */
  private afterBatch(): void {
    if (this.queueDepth > 0) this.scheduleQueue();
    else if (this.flushWaits) {
      this.flushWaits = false;
      this.scheduleFlushStep();
    }
  }

  private cancelQueueTimers(): void {
    if (this.qTimer) clearTimeout(this.qTimer);
    if (this.qImmediate) clearImmediate(this.qImmediate);
    this.qTimer = undefined;
    this.qImmediate = undefined;
  }

  /**
   * Writes the oldest queued writes in one transaction, timed in
   * `muster_manager_store_queue_batch_seconds`: at most `batch_items`, and no more once the
   * transaction has run `batch_ms` (checked every 16 writes), so that requests are served between
   * transactions however slow the writes. When the transaction fails, each of its writes is tried
   * again on its own, guarded (a failure counted under its `what`), so one bad write loses only itself.
   * @param untimed ignore batch_ms (drain: a reader waits for every write anyway)
   */
  private writeBatch(untimed = false): void {
    if (this.closedFlag) return;
    const { batch_items, batch_ms } = this.wq;
    const start = this.qHead;
    const last = Math.min(this.queue.length, start + batch_items);
    if (last <= start) return;
    const t0 = performance.now();
    let end = start;
    try {
      this.transaction(() => {
        while (end < last) {
          (this.queue[end] as QueuedWrite).write();
          end++;
          if (!untimed && (end - start) % 16 === 0 && performance.now() - t0 > batch_ms) break;
        }
      });
    } catch {
      // Rolled back: every write of the transaction again, one by one (the one that threw included).
      end = Math.min(last, end + 1);
      for (let i = start; i < end; i++) {
        const w = this.queue[i] as QueuedWrite;
        this.guard(w.what, undefined, w.write);
      }
    }
    this.qHead = end;
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.qHead = 0;
    } else if (this.qHead > 4096 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    this.metrics.queueBatch.observe((performance.now() - t0) / 1000);
  }

  /** Writes everything queued now, in order (reads call it first, so they see every write made before them). */
  drain(): void {
    if (this.queueDepth === 0) return;
    this.cancelQueueTimers();
    while (this.queueDepth > 0 && !this.closedFlag) this.writeBatch(true);
    // A periodic flush that waited for the queue goes on (a read must not cancel it).
    if (this.flushWaits && !this.closedFlag) {
      this.flushWaits = false;
      this.scheduleFlushStep();
    }
  }

  /**
   * Writes everything the registered flush sources hold (after the write queue), in one
   * transaction, timed in `muster_manager_store_flush_seconds`: a clean stop, and readers that
   * must see every row (tests, tools). On failure (counted as `flush`) every source keeps its rows
   * dirty for the next flush.
   */
  flush(): void {
    if (this.closedFlag) return;
    this.drain();
    this.flushOnce(Number.POSITIVE_INFINITY, true);
  }

  /**
   * The periodic flush (every store.flush_interval_ms): it never holds the event loop for long. It
   * waits while the write queue holds writes (they go first, in their own transactions; at most
   * one interval), then
   * writes at most `store.write_queue.batch_items` rows per transaction, one transaction per turn
   * of the event loop, until nothing due is left.
   */
  private flushTick(): void {
    if (this.closedFlag || this.fImmediate) return;
    // A flush that has already waited a whole interval for the queue goes now: a queue never
    // empty (writes on every turn) must not keep last-seen times from the database.
    if (this.queueDepth > 0 && !this.flushWaits) {
      this.flushWaits = true;
      return;
    }
    this.flushWaits = false;
    this.flushStep();
  }

  private scheduleFlushStep(): void {
    this.fImmediate ??= setImmediate(() => {
      this.fImmediate = undefined;
      if (this.queueDepth > 0) this.flushWaits = true;
      else this.flushStep();
    });
  }

  private flushStep(): void {
    if (this.closedFlag) return;
    if (this.flushOnce(Math.min(FLUSH_STEP_ROWS, this.wq.batch_items), false)) this.scheduleFlushStep();
  }

  /**
   * One flush transaction of at most `max` rows per source.
   * @returns whether a source gave a full batch (more may be due)
   */
  private flushOnce(max: number, force: boolean): boolean {
    const batches: FlushBatch[] = [];
    for (const s of this.flushSources) {
      if (!s.pending) continue;
      const b = s.take(max, force);
      if (b) batches.push(b);
    }
    if (batches.length === 0) return false;
    const t0 = performance.now();
    const ok = this.guard('flush', false, () => {
      this.transaction(() => {
        for (const b of batches) b.write();
      });
      return true;
    });
    if (!ok) {
      for (const b of batches) b.failed();
      return false;
    }
    for (const b of batches) b.committed();
    this.metrics.flush.observe((performance.now() - t0) / 1000);
    return batches.some((b) => b.rows >= max);
  }
}

function openFile(file: string, log: Logger, migrations: readonly Migration[]): DatabaseSync {
  const db = new DatabaseSync(file);
  try {
    db.exec('PRAGMA journal_mode = WAL');
    // NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only a power loss may
    // lose the last transactions.
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec('PRAGMA busy_timeout = 5000');
    const version = userVersion(db);
    if (version > migrations.length) {
      throw new StoreError(
        `store.file ${file}: schema version ${version} was written by a newer muster (this one knows ${migrations.length}); refusing to touch it`,
      );
    }
    for (let v = version; v < migrations.length; v++) {
      const m = migrations[v] as Migration;
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
