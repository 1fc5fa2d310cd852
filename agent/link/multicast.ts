/**
 * The agent's multicast link to the manager (docs/protocol.md "1. Query", "7. Timing: one query,
 * one report, no retry"): each valid query is answered once, after a random jitter, by POSTing
 * the body the query's url asks for to the manager it names; at most `report.max_in_flight`
 * reports per url are under way (docs/configuration.md "report"). The manager of the latest
 * query is where agent alerts go (docs/protocol.md "4a. Agent alert").
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ReportUrl } from '../../common/constants.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import type { QueryBody } from '../../common/protocol.js';
import type { AgentConfig } from '../config.js';
import type { ReportBuilder } from './answer.js';
import { MulticastListener } from './listener.js';
import { type Delivery, Reporter } from './reporter.js';

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
  private readonly inFlight: Record<ReportUrl, number> = { '/heartbeat': 0, '/resource': 0 };
  private latestManager: ManagerAddress | null = null;
  private lastQuery = 0;
  private readonly m;

  /**
   * @param cfg the agent's `multicast` and `report` sections
   * @param builder builds the body a query asks for
   * @param version the agent's version, sent as `user-agent`
   * @param registry the daemon's metrics registry: the link declares its counters there
   */
  constructor(
    private readonly cfg: Pick<AgentConfig, 'multicast' | 'report'>,
    private readonly builder: ReportBuilder,
    version: string,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.rl = new RateLimitedLog(log);
    this.listener = new MulticastListener(
      {
        group: cfg.multicast.group,
        port: cfg.multicast.port,
        interface: cfg.multicast.interface,
        rejoinIntervalMs: cfg.multicast.rejoin_interval_ms,
      },
      log,
    );
    this.reporter = new Reporter(cfg.report.timeout_ms, version);
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
      joined: new Gauge({
        name: 'muster_agent_multicast_joined',
        help: '1 while the agent holds its multicast group membership',
        registers: [registry],
        collect() {
          this.set(listener.joined ? 1 : 0);
        },
      }),
    };
    this.listener.on('query', (q: QueryBody) => void this.answer(q));
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

  /** The manager of the latest valid query, or null before the first. */
  get manager(): ManagerAddress | null {
    return this.latestManager;
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

  /** One query, one report: wait the jitter, build, POST once. */
  private async answer(q: QueryBody): Promise<void> {
    const { url, manager_ip, manager_port } = q.data;
    this.lastQuery = Date.now();
    this.latestManager = { ip: manager_ip, port: manager_port };
    this.m.received.inc({ url });
    if (this.inFlight[url] >= this.cfg.report.max_in_flight) {
      this.m.dropped.inc({ url, reason: 'busy' });
      return;
    }
    this.inFlight[url]++;
    try {
      const jitter = q.data.jitter_ms ?? this.cfg.report.jitter_ms;
      if (jitter > 0) await new Promise((r) => setTimeout(r, Math.random() * jitter));
      let body: string;
      try {
        body = await this.builder.build(url, manager_ip);
      } catch (err) {
        this.m.dropped.inc({ url, reason: 'build' });
        this.log.warn({ url, err: (err as Error).message }, 'cannot build report');
        return;
      }
      const d = await this.reporter.send(manager_ip, manager_port, url, body);
      if (d.ok) {
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
      this.inFlight[url]--;
    }
  }
}
