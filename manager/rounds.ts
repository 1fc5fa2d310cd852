/**
 * The query rounds (docs/protocol.md "1. Query", "7. Timing"; docs/configuration.md "query"): a
 * `/heartbeat` query every heartbeat interval, which also closes a liveness round of the registry,
 * and a `/resource` query every resource interval, started half a heartbeat later so that the
 * fleet never answers both at once. Each query suggests a reply window (`jitter_ms`) that grows
 * with the fleet. `queryNow` sends one query at once and collects its answers (POST
 * /api/v1/query). The query metrics are declared here.
 */
import { Counter, type Registry } from 'prom-client';
import type { Answer, QueryReply } from '../common/api/query.js';
import type { ReportUrl } from '../common/constants.js';
import { type Logger, RateLimitedLog } from '../common/log.js';
import { MAX_JITTER_MS } from '../common/protocol.js';
import { readKeyFile } from '../common/signing.js';
import type { ManagerConfig } from './config.js';
import type { Ingest } from './ingest.js';
import type { Querier, QuerySigning } from './querier.js';
import type { NodeRegistry } from './registry.js';
import type { Store } from './store/store.js';

/** What the rounds use. */
export interface RoundsDeps {
  /** The query section of the config; without `signing` queries are not signed. */
  cfg: Omit<ManagerConfig['query'], 'signing'> & Partial<Pick<ManagerConfig['query'], 'signing'>>;
  querier: Pick<Querier, 'send'>;
  registry: Pick<NodeRegistry, 'round' | 'nodes' | 'endRound'>;
  /** Where answers are seen (queryNow). */
  ingest: Pick<Ingest, 'watch'>;
  /** Where queryNow is recorded in the history. */
  store: Pick<Store, 'addHistory'>;
  log: Logger;
  /** The daemon's Prometheus registry. */
  metrics: Registry;
}

/** Sends the queries, on timers and on demand. */
export class QueryRounds {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly rl: RateLimitedLog;
  private readonly sent: Counter<'url'>;
  private readonly errors: Counter<'url'>;
  private readonly signing: QuerySigning | undefined;

  /**
   * Reads the signing key when `query.signing.key_file` is set (docs/protocol.md "1a").
   * @throws Error naming the key file when it cannot be read, is not 0600, or is too short
   */
  constructor(private readonly d: RoundsDeps) {
    this.rl = new RateLimitedLog(d.log);
    const keyFile = d.cfg.signing?.key_file;
    if (keyFile) {
      this.signing = { key: readKeyFile(keyFile, 'query.signing.key_file') };
      d.log.info({ key_file: keyFile }, 'queries are signed (ts, sig)');
    }
    this.sent = new Counter({
      name: 'muster_manager_queries_sent_total',
      help: 'Multicast queries sent, by url',
      labelNames: ['url'],
      registers: [d.metrics],
    });
    this.errors = new Counter({
      name: 'muster_manager_query_errors_total',
      help: 'Multicast queries that could not be sent, by url',
      labelNames: ['url'],
      registers: [d.metrics],
    });
  }

  /** Starts the heartbeat and resource rounds (the first heartbeat query goes out now). */
  start(): void {
    const q = this.d.cfg;
    this.every(q.heartbeat_interval_ms, () => {
      this.d.registry.endRound();
      void this.send('/heartbeat');
    });
    void this.send('/heartbeat');
    // Resource rounds start half a heartbeat later, so the fleet never answers both at once.
    const offset = setTimeout(() => {
      void this.send('/resource');
      this.every(q.resource_interval_ms, () => void this.send('/resource'));
    }, q.heartbeat_interval_ms / 2);
    this.timers.push(offset);
  }

  /** Stops the rounds. */
  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms));
  }

  /** The reply window suggested in queries, ms: grows with the fleet, capped at half a round. */
  jitterMs(): number {
    const q = this.d.cfg;
    if (q.jitter_ms === 0) return 0;
    const { registry } = this.d;
    // Before the first round completes the fleet size is unknown (a restart): use the widest window.
    const wanted =
      registry.round === 0
        ? Number.POSITIVE_INFINITY
        : Math.max(q.jitter_ms, registry.nodes.size * q.jitter_per_node_ms);
    // Capped at half a round, and at the protocol's bound so that every agent accepts the query.
    return Math.min(wanted, q.heartbeat_interval_ms / 2, MAX_JITTER_MS);
  }

  /** Sends one query now; failures are counted and logged, never thrown. */
  async send(url: ReportUrl): Promise<void> {
    try {
      await this.d.querier.send(url, this.jitterMs(), this.signing);
      this.sent.inc({ url });
    } catch (err) {
      this.errors.inc({ url });
      this.rl.warn(`query:${url}`, { url, err: (err as Error).message }, 'cannot send multicast query');
    }
  }

  /**
   * Sends one query now and collects the reports that answer it (one per board), then records
   * the query in the history.
   * @param waitMs how long to collect, ms; default the reply window plus 1 s
   * @param who who asked (the history's `who`)
   */
  async queryNow(url: ReportUrl, waitMs?: number, who = 'cli'): Promise<QueryReply> {
    const wait = waitMs ?? this.jitterMs() + 1000;
    const answers: Answer[] = [];
    const t0 = performance.now();
    const seen = new Set<string>();
    const unwatch = this.d.ingest.watch((u, a) => {
      // One answer per board: a regular round's report in the same window is not counted twice.
      if (u !== url || seen.has(a.host_ip)) return;
      seen.add(a.host_ip);
      answers.push({ ...a, ms: Math.round(performance.now() - t0) });
    });
    const sentAt = new Date().toISOString();
    try {
      await this.send(url);
      await new Promise((r) => setTimeout(r, wait));
    } finally {
      unwatch();
    }
    this.d.store.addHistory({
      at: Date.parse(sentAt),
      node: null,
      kind: 'operation',
      operation: 'query',
      args: { url, wait_ms: wait },
      result: answers.length,
      message: `${answers.length} board${answers.length === 1 ? '' : 's'} answered ${url} within ${wait} ms`,
      who,
    });
    return { url, sent_at: sentAt, wait_ms: wait, answers };
  }
}
