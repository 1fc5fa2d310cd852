/**
 * Automatic node pruning (docs/operations.md "Removing nodes", docs/configuration.md "registry"):
 * a sweep on a timer removes the positions that never came online once
 * `registry.expire_never_online_ms` has passed since their first heartbeat, and nodes offline for
 * `registry.prune_offline_after_ms` (0 = off, the default). Each removal goes through the same code
 * path as DELETE /api/v1/nodes/:id (manager/removal.ts): open alerts resolved, store row deleted,
 * `node.rm` in the history with who `manager` and the reason. Removals are done in batches with
 * the event loop running between them, so that a sweep of thousands of nodes never stalls the
 * reports or the API. Counted in `muster_manager_nodes_pruned_total{reason}`; one log line per sweep.
 */
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import type { ManagerConfig } from './config.js';
import type { NodeRegistry } from './registry.js';
import { type RemovalDeps, removeNode } from './removal.js';

/** Removals per batch; the event loop runs between batches. */
const BATCH = 200;
/** Shortest and longest time between sweeps, ms. */
const MIN_SWEEP_MS = 250;
const MAX_SWEEP_MS = 60_000;

/** What the pruner uses. */
export interface PrunerDeps extends RemovalDeps {
  registry: RemovalDeps['registry'] & Pick<NodeRegistry, 'prunable'>;
  cfg: Pick<ManagerConfig['registry'], 'expire_never_online_ms' | 'prune_offline_after_ms'>;
  log: Logger;
  /** The daemon's Prometheus registry. */
  metrics: Registry;
  now?: () => number;
}

/** Removes the nodes the registry config says to prune, on a timer. */
export class NodePruner {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly pruned: Counter<'reason'>;

  constructor(private readonly d: PrunerDeps) {
    this.pruned = new Counter({
      name: 'muster_manager_nodes_pruned_total',
      help: 'Nodes removed automatically, by reason (never_online: registry.expire_never_online_ms, offline: registry.prune_offline_after_ms)',
      labelNames: ['reason'],
      registers: [d.metrics],
    });
    for (const reason of ['never_online', 'offline']) this.pruned.inc({ reason }, 0);
  }

  /**
   * Time between sweeps, ms: a quarter of the shorter age in force, within 250 ms .. 60 s; 0 when
   * both ages are 0 (nothing to prune).
   */
  interval(): number {
    const ages = [this.d.cfg.expire_never_online_ms, this.d.cfg.prune_offline_after_ms].filter((a) => a > 0);
    if (ages.length === 0) return 0;
    return Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(Math.min(...ages) / 4)));
  }

  /** Starts the sweeps (none when both ages are 0). */
  start(): void {
    const every = this.interval();
    if (every === 0) return;
    this.timer = setInterval(() => void this.sweep(), every);
    this.timer.unref();
  }

  /** Stops the sweeps; a sweep under way ends after its current batch. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * One sweep: removes every prunable node, BATCH at a time. A sweep already under way makes
   * this one a no-op.
   * @returns the count removed, by reason
   */
  async sweep(): Promise<{ never_online: number; offline: number }> {
    const done = { never_online: 0, offline: 0 };
    if (this.running) return done;
    this.running = true;
    try {
      const now = (this.d.now ?? Date.now)();
      const { expire_never_online_ms, prune_offline_after_ms } = this.d.cfg;
      const due = this.d.registry.prunable(now, expire_never_online_ms, prune_offline_after_ms);
      for (let i = 0; i < due.length; i += BATCH) {
        if (i > 0) await new Promise((r) => setImmediate(r));
        for (const { id, reason } of due.slice(i, i + BATCH)) {
          if (!removeNode(this.d, id, 'manager', reason)) continue;
          done[reason]++;
          this.pruned.inc({ reason });
        }
      }
      if (done.never_online + done.offline > 0)
        this.d.log.info(
          { ...done, expire_never_online_ms, prune_offline_after_ms },
          'nodes pruned: never came online, or offline too long',
        );
    } finally {
      this.running = false;
    }
    return done;
  }
}
