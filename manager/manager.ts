/**
 * The manager daemon (`muster manager`): sends the multicast queries of seed 003, ingests the
 * agents' reports into the node registry, runs liveness rounds, and serves the REST API.
 */
import type { FastifyInstance } from 'fastify';
import type { ReportUrl } from '../common/constants.js';
import { type Logger, RateLimitedLog } from '../common/log.js';
import { interfaceAddress, primaryAddress } from '../common/net.js';
import type { HeartbeatData, ResourceData } from '../common/protocol.js';
import { MAX_JITTER_MS } from '../common/protocol.js';
import { VERSION } from '../common/version.js';
import type { ManagerConfig } from './config.js';
import type { Transition } from './liveness.js';
import { managerMetrics } from './metrics.js';
import { Querier } from './querier.js';
import { NodeRegistry } from './registry.js';
import { buildServer } from './server.js';

/** One report received, as `muster query` shows it. */
export interface Answer {
  node: string | null;
  host_ip: string;
  /** ms from the query leaving to the report stored. */
  ms: number;
}

/** A running manager. */
export class Manager {
  readonly metrics = managerMetrics();
  readonly registry: NodeRegistry;
  readonly advertiseIp: string;
  private readonly querier: Querier;
  private readonly rl: RateLimitedLog;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly reportWatchers = new Set<(url: ReportUrl, a: Omit<Answer, 'ms'>) => void>();
  private app: FastifyInstance | undefined;

  constructor(
    readonly cfg: ManagerConfig,
    private readonly log: Logger,
  ) {
    this.registry = new NodeRegistry(cfg.liveness);
    this.rl = new RateLimitedLog(log);
    this.advertiseIp =
      cfg.advertise_ip || (cfg.multicast.interface && interfaceAddress(cfg.multicast.interface)) || primaryAddress();
    this.querier = new Querier(
      {
        group: cfg.multicast.group,
        port: cfg.multicast.port,
        interface: cfg.multicast.interface,
        ttl: cfg.multicast.ttl,
        loopback: cfg.multicast.loopback,
        managerIp: this.advertiseIp,
        managerPort: cfg.http.port,
      },
      log,
    );
    this.registry.on('transition', (t: Transition) => {
      this.metrics.transitions.inc({ to: t.to });
      const level = t.to === 'online' ? 'info' : 'warn';
      this.log[level]({ node: t.node, from: t.from, to: t.to, reason: t.reason }, 'node state changed');
    });
    this.registry.on('conflict', (c: { node: string; claimants: string[] }) =>
      this.log.error(c, 'identity conflict: more than one board claims this position'),
    );
    this.registry.on('conflict-cleared', (c: { node: string }) => this.log.info(c, 'identity conflict cleared'));
    this.registry.on('address-shared', (c: { host_ip: string; nodes: string[] }) =>
      this.log.error(
        c,
        'one address reports for several positions: resource reports cannot be told apart (give each agent its own report.host_ip)',
      ),
    );
    this.registry.on('moved', (c: { node: string; from: string; to: string }) =>
      this.log.warn(c, 'node now reports from another address'),
    );
  }

  /** Opens the HTTP port and starts the query rounds. */
  async start(): Promise<void> {
    await this.querier.start();
    this.app = buildServer(this, this.log);
    await this.app.listen({ host: this.cfg.http.host, port: this.cfg.http.port });
    const q = this.cfg.query;
    this.every(q.heartbeat_interval_ms, () => {
      this.registry.endRound();
      void this.sendQuery('/heartbeat');
    });
    void this.sendQuery('/heartbeat');
    // Resource rounds start half a heartbeat later, so the fleet never answers both at once.
    const offset = setTimeout(() => {
      void this.sendQuery('/resource');
      this.every(q.resource_interval_ms, () => void this.sendQuery('/resource'));
    }, q.heartbeat_interval_ms / 2);
    this.timers.push(offset);
    this.log.info(
      {
        manager_ip: this.advertiseIp,
        port: this.cfg.http.port,
        group: `${this.cfg.multicast.group}:${this.cfg.multicast.port}`,
        version: VERSION,
      },
      'manager started',
    );
  }

  /** Stops the rounds and closes the port. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.querier.stop();
    await this.app?.close();
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    this.timers.push(t);
  }

  /** The reply window suggested in queries, ms: grows with the fleet, capped at half a round. */
  jitterMs(): number {
    const q = this.cfg.query;
    if (q.jitter_ms === 0) return 0;
    // Before the first round completes the fleet size is unknown (a restart): use the widest window.
    const wanted =
      this.registry.round === 0
        ? Number.POSITIVE_INFINITY
        : Math.max(q.jitter_ms, this.registry.nodes.size * q.jitter_per_node_ms);
    // Capped at half a round, and at the protocol's bound so that every agent accepts the query.
    return Math.min(wanted, q.heartbeat_interval_ms / 2, MAX_JITTER_MS);
  }

  /** Sends one query now; failures are counted and logged, never thrown. */
  async sendQuery(url: ReportUrl): Promise<void> {
    try {
      await this.querier.send(url, this.jitterMs());
      this.metrics.queries.inc({ url });
    } catch (err) {
      this.metrics.queryErrors.inc({ url });
      this.rl.warn(`query:${url}`, { url, err: (err as Error).message }, 'cannot send multicast query');
    }
  }

  /** Stores a validated heartbeat (called by POST /heartbeat). */
  ingestHeartbeat(h: HeartbeatData): void {
    const t0 = performance.now();
    const node = this.registry.ingestHeartbeat(h);
    this.metrics.ingested.inc({ url: '/heartbeat' });
    this.metrics.ingest.observe({ url: '/heartbeat' }, (performance.now() - t0) / 1000);
    for (const w of this.reportWatchers) w('/heartbeat', { node, host_ip: h.host_ip });
  }

  /** Stores a validated resource report (called by POST /resource). */
  ingestResource(r: ResourceData): void {
    const t0 = performance.now();
    const node = this.registry.ingestResource(r);
    if (node === null) this.metrics.unmatched.inc();
    this.metrics.ingested.inc({ url: '/resource' });
    this.metrics.ingest.observe({ url: '/resource' }, (performance.now() - t0) / 1000);
    for (const w of this.reportWatchers) w('/resource', { node, host_ip: r.host_ip });
  }

  /** Logs a refused report at a rate limit (the metric is counted by the server). */
  noteRejected(from: string, url: ReportUrl, why: string): void {
    this.rl.warn(`reject:${from}:${url}`, { from, url, why }, 'refused a report');
  }

  /** Updates the gauges computed from the registry before a scrape. */
  refreshGauges(): void {
    for (const [state, n] of Object.entries(this.registry.countByState())) this.metrics.nodes.set({ state }, n);
    let conflicts = 0;
    for (const n of this.registry.nodes.values()) if (n.claimants.size > 1) conflicts++;
    this.metrics.conflicts.set(conflicts);
  }

  /**
   * Sends one query now and collects the reports that answer it.
   * @param waitMs how long to collect, ms; default the reply window plus 1 s
   */
  async queryNow(
    url: ReportUrl,
    waitMs?: number,
  ): Promise<{ url: ReportUrl; sent_at: string; wait_ms: number; answers: Answer[] }> {
    const wait = waitMs ?? this.jitterMs() + 1000;
    const answers: Answer[] = [];
    const t0 = performance.now();
    const seen = new Set<string>();
    const watcher = (u: ReportUrl, a: Omit<Answer, 'ms'>) => {
      // One answer per board: a regular round's report in the same window is not counted twice.
      if (u !== url || seen.has(a.host_ip)) return;
      seen.add(a.host_ip);
      answers.push({ ...a, ms: Math.round(performance.now() - t0) });
    };
    this.reportWatchers.add(watcher);
    const sentAt = new Date().toISOString();
    try {
      await this.sendQuery(url);
      await new Promise((r) => setTimeout(r, wait));
    } finally {
      this.reportWatchers.delete(watcher);
    }
    return { url, sent_at: sentAt, wait_ms: wait, answers };
  }
}
