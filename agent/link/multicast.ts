/**
 * The agent's multicast link to the manager (docs/protocol.md "1. Query", "7. Timing: one query,
 * one report, no retry"): each valid query is answered once, after a random jitter, by POSTing
 * the body the query's url asks for to the manager it names; at most `report.max_in_flight`
 * reports per url are under way (docs/configuration.md "report"). The manager of the latest
 * query is where agent alerts go (docs/protocol.md "4a. Agent alert").
 *
 * Access control (docs/protocol.md "1a. Signed queries", docs/configuration.md "query.signing",
 * "report"): with `query.signing.key_file` only queries signed with the shared key are answered;
 * replies are rate-limited per destination (agent/link/limiter.ts), with the known manager (the
 * one of the latest signed query, or without signing the latest that accepted a heartbeat) kept
 * apart so that floods naming other destinations never starve it.
 */

import { type Logger, RateLimitedLog } from '../../common/log.js';
import type { QueryBody } from '../../common/protocol.js';
import { QueryVerifier, readKeyFile } from '../../common/signing.js';
import type { AgentConfig } from '../config.js';
import { Counter, Gauge, Histogram, type Registry } from '../prom.js';
import type { ReportBuilder } from './answer.js';
import { DestinationLimiter } from './limiter.js';
import { MulticastListener } from './listener.js';
import { type Delivery, Reporter } from './reporter.js';

/**
 * Without signing, how long the manager that accepts the agent's heartbeats stays the known one
 * after its last accepted heartbeat, ms: another destination accepting heartbeats cannot take its
 * place sooner (docs/configuration.md "report").
 */
export const KNOWN_STICKY_MS = 30_000;

/** A manager address: the `manager_ip` / `manager_port` of a query. */
export interface ManagerAddress {
  ip: string;
  port: number;
}

/** Listener, reporter and answering, with the link's metrics. */
export class MulticastLink {
  private readonly listener: MulticastListener;
  private readonly reporter: Reporter;
  private readonly rl: RateLimitedLog;
  /** Reports under way by `ip:port url`; a key is deleted when its count is back to 0. */
  private readonly inFlight = new Map<string, number>();
  /** Reports under way to destinations other than the known manager. */
  private inFlightOthers = 0;
  private latestManager: ManagerAddress | null = null;
  private knownManager: ManagerAddress | null = null;
  /** Date.now() when the known manager last accepted a heartbeat (without signing). */
  private knownOkAt = 0;
  private lastQuery = 0;
  private readonly verifier: QueryVerifier | null;
  private readonly limiter: DestinationLimiter;
  private readonly m;

  /**
   * Reads the signing keys when `query.signing.key_file` is set.
   * @param cfg the agent's `multicast`, `report` and `query` sections
   * @throws Error naming the key file when a key cannot be read, is not 0600, or is too short
   * @param builder builds the body a query asks for
   * @param version the agent's version, sent as `user-agent`
   * @param registry the daemon's metrics registry: the link declares its counters there
   */
  constructor(
    private readonly cfg: Pick<AgentConfig, 'manager' | 'multicast' | 'report' | 'query'>,
    private readonly builder: ReportBuilder,
    version: string,
    registry: Registry,
    log: Logger,
  ) {
    this.rl = new RateLimitedLog(log);
    this.listener = new MulticastListener(
      {
        group: cfg.multicast.group,
        port: cfg.multicast.port,
        interface: cfg.multicast.interface,
        rejoinIntervalMs: cfg.multicast.rejoin_interval_ms,
        allow: cfg.manager.allow,
      },
      log,
    );
    this.reporter = new Reporter(cfg.report.timeout_ms, version);
    const sg = cfg.query.signing;
    this.verifier = sg.key_file
      ? new QueryVerifier({
          keys: [
            readKeyFile(sg.key_file, 'query.signing.key_file'),
            ...(sg.previous_key_file ? [readKeyFile(sg.previous_key_file, 'query.signing.previous_key_file')] : []),
          ],
          maxSkewMs: sg.max_skew_ms,
          replayCacheSize: sg.replay_cache_size,
        })
      : null;
    if (this.verifier)
      log.info(
        { key_file: sg.key_file, previous_key_file: sg.previous_key_file || undefined },
        'only signed queries are answered',
      );
    this.limiter = new DestinationLimiter({
      ratePerSec: cfg.report.rate_per_destination,
      burst: cfg.report.burst_per_destination,
      maxDestinations: cfg.report.max_destinations,
    });
    const listener = this.listener;
    this.m = {
      received: new Counter({
        name: 'muster_agent_queries_received_total',
        help: 'Valid multicast queries received, by url',
        labelNames: ['url'],
        registers: [registry],
      }),
      rejected: new Counter({
        name: 'muster_agent_queries_rejected_total',
        help: 'Datagrams refused as queries, by reason',
        labelNames: ['reason'],
        registers: [registry],
      }),
      sent: new Counter({
        name: 'muster_agent_reports_sent_total',
        help: 'Reports the manager accepted (HTTP 200), by url',
        labelNames: ['url'],
        registers: [registry],
      }),
      dropped: new Counter({
        name: 'muster_agent_reports_dropped_total',
        help: 'Reports dropped undelivered, by url and reason',
        labelNames: ['url', 'reason'],
        registers: [registry],
      }),
      send: new Histogram({
        name: 'muster_agent_report_send_seconds',
        help: 'Time of a delivered report POST',
        labelNames: ['url'],
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2],
        registers: [registry],
      }),
      limited: new Counter({
        name: 'muster_agent_queries_dropped_total',
        help: 'Valid queries left unanswered by the reply rate limit per destination, by reason (rate, destinations)',
        labelNames: ['reason'],
        registers: [registry],
      }),
      joined: new Gauge({
        name: 'muster_agent_multicast_joined',
        help: '1 while the agent holds its multicast group membership',
        registers: [registry],
        collect() {
          this.set(listener.joined ? 1 : 0);
        },
      }),
    };
    this.listener.on('query', (q: QueryBody, from: string) => void this.answer(q, from));
    this.listener.on('reject', (reason: string) => this.m.rejected.inc({ reason }));
  }

  /** True while the multicast group membership is held. */
  get joined(): boolean {
    return this.listener.joined;
  }

  /** Date.now() of the latest valid query; 0 before the first. */
  get lastQueryAt(): number {
    return this.lastQuery;
  }

  /**
   * Where agent alerts go: the known manager (of the latest signed query, or without signing the
   * latest that accepted a heartbeat), else the manager of the latest answered query; null before.
   */
  get manager(): ManagerAddress | null {
    return this.knownManager ?? this.latestManager;
  }

  /** Binds the port and joins the group. */
  async start(): Promise<void> {
    await this.listener.start();
  }

  /** Leaves the group and closes the report connections. */
  async stop(): Promise<void> {
    this.listener.stop();
    await this.reporter.close();
  }

  /**
   * POSTs an agent alert body (docs/protocol.md "4a") to `to`, once, never retried.
   * @returns the delivery; never throws
   */
  sendAlert(to: ManagerAddress, body: string): Promise<Delivery> {
    return this.reporter.send(to.ip, to.port, '/alert', body);
  }

  private markKnown(dest: string, ip: string, port: number): void {
    this.limiter.setKnown(dest);
    this.knownManager = { ip, port };
  }

  /**
   * One query, one report: check the signature (when a key is configured), the rate of the
   * destination and the slots, wait the jitter, build, POST once.
   */
  private async answer(q: QueryBody, from: string): Promise<void> {
    const { url, manager_ip, manager_port } = q.data;
    if (this.verifier) {
      const bad = this.verifier.verify(q.data);
      if (bad) {
        this.m.rejected.inc({ reason: bad });
        this.rl.warn(
          `reject:${bad}`,
          { from, reason: bad, manager: `${manager_ip}:${manager_port}` },
          'ignored a query that is not signed with the shared key',
        );
        return;
      }
    }
    const dest = `${manager_ip}:${manager_port}`;
    if (this.verifier) this.markKnown(dest, manager_ip, manager_port);
    this.lastQuery = Date.now();
    this.m.received.inc({ url });
    const limited = this.limiter.take(dest);
    if (limited) {
      this.m.limited.inc({ reason: limited });
      this.rl.warn(
        `limit:${limited}`,
        { from, manager: dest, reason: limited },
        'query not answered: reply rate limit per destination',
      );
      return;
    }
    this.latestManager = { ip: manager_ip, port: manager_port };
    const known = dest === this.limiter.knownDestination;
    const slot = `${dest} ${url}`;
    const held = this.inFlight.get(slot) ?? 0;
    if (
      held >= this.cfg.report.max_in_flight ||
      (!known && this.inFlightOthers >= this.cfg.report.max_in_flight_total)
    ) {
      this.m.dropped.inc({ url, reason: 'busy' });
      return;
    }
    this.inFlight.set(slot, held + 1);
    if (!known) this.inFlightOthers++;
    try {
      const jitter = q.data.jitter_ms ?? this.cfg.report.jitter_ms;
      if (jitter > 0) await new Promise((r) => setTimeout(r, Math.random() * jitter));
      let body: string;
      try {
        body = await this.builder.build(url, manager_ip);
      } catch (err) {
        this.m.dropped.inc({ url, reason: 'build' });
        this.rl.warn(`build:${url}`, { url, manager: dest, err: (err as Error).message }, 'cannot build report');
        return;
      }
      const d = await this.reporter.send(manager_ip, manager_port, url, body);
      if (d.ok) {
        // Without signing, the known manager is the one that accepts our heartbeats; another takes
        // its place only once it has accepted none for KNOWN_STICKY_MS (a manager that moved).
        if (!this.verifier && url === '/heartbeat') {
          const now = Date.now();
          if (dest === this.limiter.knownDestination || now - this.knownOkAt > KNOWN_STICKY_MS)
            this.markKnown(dest, manager_ip, manager_port);
          if (dest === this.limiter.knownDestination) this.knownOkAt = now;
        }
        this.m.sent.inc({ url });
        this.m.send.observe({ url }, d.ms / 1000);
      } else {
        this.m.dropped.inc({ url, reason: d.reason });
        this.rl.warn(
          `drop:${url}:${d.reason}`,
          { url, manager: `${manager_ip}:${manager_port}`, reason: d.reason, detail: d.detail },
          'report dropped (not retried)',
        );
      }
    } finally {
      const n = (this.inFlight.get(slot) ?? 1) - 1;
      if (n > 0) this.inFlight.set(slot, n);
      else this.inFlight.delete(slot);
      if (!known) this.inFlightOthers--;
    }
  }
}
