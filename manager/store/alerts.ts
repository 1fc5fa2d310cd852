/**
 * The `alerts` and `alert_rules` tables (docs/operations.md#alerts-and-history). An alert is
 * written when it opens and when it resolves; its latest value and last-seen time, which change
 * on every report, are kept dirty in memory and written at the next flush. Rules are written at
 * once when added, changed or deleted.
 */
import type { StatementSync } from 'node:sqlite';
import type { AlertKind, AlertView, Page, RuleOp, Severity } from '../alerts/types.js';
import {
  type FlushSource,
  iso,
  lastId,
  page,
  type RetentionRule,
  rowsChanged,
  type StoreCore,
  type TableModule,
} from './core.js';

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

/** A rule as stored (before validation against the metric catalog); `updated_at` in ms since the epoch. */
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

/** Filters of an alert page; `since` (last seen) in ms, `before` an id. */
export interface AlertFilter {
  open?: boolean | undefined;
  node?: string | undefined;
  kind?: AlertKind | undefined;
  severity?: Severity | undefined;
  since?: number | undefined;
  before?: number | undefined;
  limit: number;
}

/** An alert as its row holds it: an open alert's fields plus when it was resolved. */
export interface AlertRow extends OpenAlert {
  resolved_at: number | null;
}

/** An alert row as the API shows it (times as ISO 8601 text). */
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

/** An open alert's latest value, last-seen time (ms) and message, not yet written. */
interface Touch {
  value: number | null;
  last_seen: number;
  message: string;
}

/** The alerts table. Failed writes are counted as `alert`. */
export class AlertsTable implements TableModule {
  readonly tables = ['alerts'];
  /** Resolved alerts may go by age (of resolved_at) or count; open ones never (docs/operations.md#retention). */
  readonly retained: readonly RetentionRule[] = [
    { table: 'alerts', key: 'id', date: 'resolved_at', keep: 'resolved_at IS NULL' },
  ];
  readonly dirty: FlushSource;
  private readonly touches = new Map<number, Touch>();
  private readonly insert: StatementSync;
  private readonly touchStmt: StatementSync;
  private readonly resolveStmt: StatementSync;
  private readonly getStmt: StatementSync;
  private readonly openStmt: StatementSync;
  /** The id the next alert gets: allocated here, so that `open` can answer before the row is written. */
  private nextId: number;

  constructor(private readonly core: StoreCore) {
    const db = core.db;
    this.nextId = lastId(db, 'alerts') + 1;
    this.insert = db.prepare(
      `INSERT INTO alerts (id, key, kind, rule, severity, node, metric, instance, value, threshold, op, message, source, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.touchStmt = db.prepare('UPDATE alerts SET value = ?, last_seen = ?, message = ? WHERE id = ?');
    this.resolveStmt = db.prepare(
      'UPDATE alerts SET resolved_at = ?, last_seen = max(last_seen, ?), message = ? WHERE id = ? AND resolved_at IS NULL',
    );
    this.getStmt = db.prepare('SELECT * FROM alerts WHERE id = ?');
    this.openStmt = db.prepare('SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id');
    const touches = this.touches;
    this.dirty = {
      get pending() {
        return touches.size > 0;
      },
      take: (max: number) => {
        const batch: [number, Touch][] = [];
        for (const e of touches) {
          if (batch.length >= max) break;
          batch.push(e);
        }
        return {
          rows: batch.length,
          write: () => {
            for (const [id, t] of batch) this.touchStmt.run(t.value, t.last_seen, t.message, id);
          },
          // Only what was written leaves memory: a newer touch since `take` stays for the next flush.
          committed: () => {
            for (const [id, t] of batch) if (touches.get(id) === t) touches.delete(id);
          },
          failed: () => {},
        };
      },
    };
  }

  /**
   * Opens an alert through the write queue (written within store.write_queue.delay_ms, before any
   * read). Returns its id, allocated in memory, or 0 when the store is closed, the queue is full or
   * (before the store is started) the write failed: the alert then lives in memory only.
   */
  open(a: NewAlert): number {
    const id = this.nextId;
    // Positional (faster to bind than named); fields a caller left undefined are written as NULL.
    const values = [
      id,
      a.key,
      a.kind,
      a.rule,
      a.severity,
      a.node ?? null,
      a.metric ?? null,
      a.instance ?? null,
      a.value ?? null,
      a.threshold ?? null,
      a.op ?? null,
      a.message,
      a.source,
      a.first_seen,
      a.last_seen,
    ] as const;
    const ok = this.core.enqueue('alert', () => {
      this.insert.run(...values);
    });
    if (!ok) return 0;
    this.nextId++;
    return id;
  }

  /** Records an open alert's latest value and time (ms) for the next flush. Ids ≤ 0 (never written) are ignored. */
  touch(id: number, value: number | null, lastSeen: number, message: string): void {
    if (id > 0) this.touches.set(id, { value, last_seen: lastSeen, message });
  }

  /**
   * Resolves an alert through the write queue, at `at` (ms), with its pending touch (or `value` when given) written in
   * the same transaction. Ids ≤ 0 are ignored.
   */
  resolve(id: number, at: number, message: string, value?: number | null): void {
    if (id <= 0) return;
    const dirty = this.touches.get(id);
    this.touches.delete(id);
    this.core.enqueue('alert', () => {
      if (dirty || value !== undefined)
        this.touchStmt.run(
          value !== undefined ? value : (dirty?.value ?? null),
          dirty?.last_seen ?? at,
          dirty?.message ?? message,
          id,
        );
      this.resolveStmt.run(at, at, message, id);
    });
  }

  /** Open alerts, oldest first, as last written. */
  loadOpen(): OpenAlert[] {
    this.core.drain();
    return this.openStmt.all() as unknown as OpenAlert[];
  }

  /** One alert by id, as last written, or undefined. */
  get(id: number): AlertView | undefined {
    this.core.drain();
    const r = this.getStmt.get(id) as AlertRow | undefined;
    return r ? alertView(r) : undefined;
  }

  /** A page of alerts, newest first; open ones show their latest value from memory. */
  list(f: AlertFilter): Page<AlertView> {
    this.core.drain();
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.open === true) where.push('resolved_at IS NULL');
    if (f.open === false) where.push('resolved_at IS NOT NULL');
    if (f.node !== undefined) where.push('node = ?') && args.push(f.node);
    if (f.kind !== undefined) where.push('kind = ?') && args.push(f.kind);
    if (f.severity !== undefined) where.push('severity = ?') && args.push(f.severity);
    if (f.since !== undefined) where.push('last_seen >= ?') && args.push(f.since);
    if (f.before !== undefined) where.push('id < ?') && args.push(f.before);
    const rows = this.core.db
      .prepare(`SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, f.limit + 1) as unknown as AlertRow[];
    const items = rows.map((r) => {
      const d = this.touches.get(r.id);
      return alertView(
        d && r.resolved_at === null ? { ...r, value: d.value, last_seen: d.last_seen, message: d.message } : r,
      );
    });
    return page(items, f.limit);
  }
}

/**
 * The alert_rules table: a rule's body is JSON text (`{ metric, op, threshold, for_ms, severity,
 * enabled }`). Unlike the other tables' writes, these are not guarded: a failure throws to the
 * caller (the alert engine, which applies config rules at start and API changes).
 */
export class RulesTable implements TableModule {
  readonly tables = ['alert_rules'];
  private readonly putStmt: StatementSync;
  private readonly deleteStmt: StatementSync;
  private readonly allStmt: StatementSync;

  constructor(private readonly core: StoreCore) {
    const db = core.db;
    this.putStmt = db.prepare(
      `INSERT INTO alert_rules (name, source, rule, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET source = excluded.source, rule = excluded.rule, updated_at = excluded.updated_at`,
    );
    this.deleteStmt = db.prepare('DELETE FROM alert_rules WHERE name = ?');
    this.allStmt = db.prepare('SELECT * FROM alert_rules ORDER BY name');
  }

  /** Every stored rule, by name. A row whose body is not JSON is logged as an error and skipped. */
  load(): StoredRule[] {
    const rows = this.allStmt.all() as unknown as {
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
        this.core.log.error({ rule: r.name }, 'stored alert rule is not valid JSON; ignored');
      }
    }
    return out;
  }

  /**
   * Writes a rule now (insert or replace by name).
   * @throws Error from node:sqlite when the write fails
   */
  put(rule: StoredRule): void {
    const { name, source, updated_at, ...body } = rule;
    this.putStmt.run(name, source, JSON.stringify(body), updated_at);
  }

  /**
   * Deletes a rule now. Returns whether it existed.
   * @throws Error from node:sqlite when the write fails
   */
  delete(name: string): boolean {
    return rowsChanged(this.deleteStmt.run(name)) > 0;
  }
}
