/**
 * Retention (docs/operations.md#retention, docs/configuration.md#data_dir-and-store-the-managers-database):
 * rows past `store.retention.days` or beyond `store.retention.max_rows` per table are deleted every
 * `store.cleanup_interval_ms`, in steps of at most `store.cleanup_batch_rows` rows with the event
 * loop free between steps, so that ingest never waits on a cleanup. Which rows of which table may go
 * is each table module's `retained` rules; this module only runs them.
 */
import { type RetentionRule, rowsChanged, type StoreCore } from './core.js';

/** Runs the registered modules' retention rules. Create after every table is registered with the core. */
export class Retention {
  private running = false;

  constructor(
    private readonly core: StoreCore,
    private readonly rules: readonly RetentionRule[] = core.retained,
  ) {
    core.every(
      (cfg) => cfg.cleanup_interval_ms,
      () => void this.run(),
    );
  }

  /**
   * Deletes rows past the retention in bounded steps, yielding to the event loop between steps.
   * Rows a rule keeps (open alerts, deployments under way, running components) are never deleted.
   * A step that fails is counted as `cleanup` and ends that table's pass. Returns the rows deleted by
   * table (empty when a run is already under way or the store is closed); counted in
   * `muster_manager_store_rows_deleted_total{table}`.
   */
  async run(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    if (this.running || this.core.closed) return out;
    this.running = true;
    // Rows still queued count too (and a queued write must not land after its row was deleted).
    this.core.drain();
    try {
      const { days, max_rows } = this.core.cfg.retention;
      const batch = this.core.cfg.cleanup_batch_rows;
      const cutoff = days > 0 ? this.core.now() - days * 86_400_000 : null;
      const db = this.core.db;
      for (const t of this.rules) {
        let deleted = 0;
        // The newest row beyond max_rows (by key); everything at or under it goes.
        const boundary =
          max_rows > 0
            ? ((
                db
                  .prepare(`SELECT ${t.key} AS k FROM ${t.table} ORDER BY ${t.key} DESC LIMIT 1 OFFSET ?`)
                  .get(max_rows) as { k: number } | undefined
              )?.k ?? null)
            : null;
        if (cutoff === null && boundary === null) continue;
        const cond = [
          ...(cutoff !== null ? [`(${t.date} IS NOT NULL AND ${t.date} < ${cutoff})`] : []),
          ...(boundary !== null ? [`${t.key} <= ${boundary}`] : []),
        ].join(' OR ');
        const step = db.prepare(
          `DELETE FROM ${t.table} WHERE ${t.key} IN (SELECT ${t.key} FROM ${t.table} WHERE NOT (${t.keep}) AND (${cond}) ORDER BY ${t.key} LIMIT ${batch})`,
        );
        for (;;) {
          if (this.core.closed) return out;
          const n = this.core.guard('cleanup', 0, () => rowsChanged(step.run()));
          deleted += n;
          if (n > 0) this.core.metrics.deleted.inc({ table: t.table }, n);
          if (n < batch) break;
          await new Promise((r) => setImmediate(r));
        }
        out[t.table] = deleted;
      }
      const total = Object.values(out).reduce((a, b) => a + b, 0);
      if (total > 0) this.core.log.info({ deleted: out, days, max_rows }, 'retention: old rows removed');
      return out;
    } finally {
      this.running = false;
    }
  }
}
