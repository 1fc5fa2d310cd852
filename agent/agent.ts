/**
 * The agent daemon (`muster agent`): answers multicast queries with reports (seed 003 状态协议)
 * and serves the command port (GET /healthz, GET /metrics; POST /deploy with the deploy issue).
 */
import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ReportUrl } from '../common/constants.js';
import { createHttpServer } from '../common/http.js';
import { type Logger, RateLimitedLog } from '../common/log.js';
import { routeSourceAddress } from '../common/net.js';
import type { QueryBody } from '../common/protocol.js';
import { VERSION } from '../common/version.js';
import type { CollectorContext } from './collectors/collector.js';
import { createComponentsCollector } from './collectors/components.js';
import { createCollectors } from './collectors/index.js';
import type { AgentConfig } from './config.js';
import { MulticastListener } from './listener.js';
import { buildHeartbeat, buildResource } from './report.js';
import { Reporter } from './reporter.js';
import { Sampler } from './sampler.js';
import { noWorkloads, type WorkloadSource } from './workloads.js';

/** How long a detected host_ip is reused for one manager address, ms. */
const HOST_IP_TTL_MS = 30_000;

/** Optional parts a caller (or a test) may supply. */
export interface AgentOptions {
  workloads?: WorkloadSource;
  /** /etc/os-release to read os_type from (tests feed a recorded one). */
  osReleasePath?: string;
}

function agentMetrics(registry: Registry) {
  return {
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
    build: new Histogram({
      name: 'muster_agent_report_build_seconds',
      help: 'Time to assemble a report from the latest samples',
      labelNames: ['url'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
      registers: [registry],
    }),
    send: new Histogram({
      name: 'muster_agent_report_send_seconds',
      help: 'Time of a delivered report POST',
      labelNames: ['url'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2],
      registers: [registry],
    }),
    collector: new Histogram({
      name: 'muster_agent_collector_duration_seconds',
      help: 'Duration of one collector run',
      labelNames: ['collector'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    joined: new Gauge({
      name: 'muster_agent_multicast_joined',
      help: '1 while the agent holds its multicast group membership',
      registers: [registry],
    }),
  };
}

/** A running agent: sampler, multicast listener, reporter and command service. */
export class AgentDaemon {
  readonly registry = new Registry();
  private readonly m = agentMetrics(this.registry);
  private readonly sampler;
  private readonly listener: MulticastListener;
  private readonly reporter: Reporter;
  private readonly inFlight: Record<ReportUrl, number> = { '/heartbeat': 0, '/resource': 0 };
  private readonly hostIps = new Map<string, { ip: string; at: number }>();
  private readonly startedAt = Date.now();
  private lastQueryAt = 0;
  private server: FastifyInstance | undefined;
  private readonly rl: RateLimitedLog;

  constructor(
    readonly cfg: AgentConfig,
    private readonly log: Logger,
    opts: AgentOptions = {},
  ) {
    this.rl = new RateLimitedLog(log);
    collectDefaultMetrics({ register: this.registry });
    const ctx: CollectorContext = {
      procRoot: cfg.collect.proc_root,
      sysRoot: cfg.collect.sys_root,
      config: cfg.collect,
      log,
    };
    const collectors = {
      ...createCollectors(ctx, {
        cpuTypeOverride: cfg.identity.cpu_type,
        osTypeOverride: cfg.identity.os_type,
        ...(opts.osReleasePath ? { osReleasePath: opts.osReleasePath } : {}),
      }),
      components: createComponentsCollector(opts.workloads ?? noWorkloads),
    };
    this.sampler = new Sampler(collectors, cfg.collect, log, this.m.collector);
    this.listener = new MulticastListener(
      {
        group: cfg.multicast.group,
        port: cfg.multicast.port,
        interface: cfg.multicast.interface,
        rejoinIntervalMs: cfg.multicast.rejoin_interval_ms,
      },
      log,
    );
    this.reporter = new Reporter(cfg.report.timeout_ms, VERSION);
    this.listener.on('query', (q: QueryBody) => void this.answer(q));
    this.listener.on('reject', (reason: string) => this.m.rejected.inc({ reason }));
  }

  /** The node id this agent claims: `box-slot-cpu`. */
  get nodeId(): string {
    const { box_id, slot_id, cpu_id } = this.cfg.identity;
    return `${box_id}-${slot_id}-${cpu_id}`;
  }

  /** Takes first samples, opens the command port, then joins the multicast group. */
  async start(): Promise<void> {
    await this.sampler.start();
    this.server = this.buildServer();
    await this.server.listen({ host: this.cfg.service.host, port: this.cfg.service.port });
    await this.listener.start();
    this.log.info({ node: this.nodeId, service_port: this.cfg.service.port, version: VERSION }, 'agent started');
  }

  /** Stops answering, closes the port and connections. Workloads are left running. */
  async stop(): Promise<void> {
    this.listener.stop();
    this.sampler.stop();
    await this.server?.close();
    await this.reporter.close();
  }

  private buildServer(): FastifyInstance {
    const app = createHttpServer(this.log, 1 << 20);
    app.get('/healthz', async () => ({
      status: 'ok',
      node: this.nodeId,
      version: VERSION,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      multicast_joined: this.listener.joined,
      last_query_at: this.lastQueryAt ? new Date(this.lastQueryAt).toISOString() : null,
    }));
    app.get('/metrics', async (_req, reply) => {
      this.m.joined.set(this.listener.joined ? 1 : 0);
      reply.header('content-type', this.registry.contentType);
      return this.registry.metrics();
    });
    return app;
  }

  private async hostIpFor(managerIp: string): Promise<string> {
    if (this.cfg.report.host_ip) return this.cfg.report.host_ip;
    const cached = this.hostIps.get(managerIp);
    if (cached && Date.now() - cached.at < HOST_IP_TTL_MS) return cached.ip;
    const ip = await routeSourceAddress(managerIp);
    this.hostIps.set(managerIp, { ip, at: Date.now() });
    return ip;
  }

  /** Builds the body a query asks for from the latest samples. */
  async buildReport(url: ReportUrl, managerIp: string): Promise<string> {
    const hostIp = await this.hostIpFor(managerIp);
    const started = performance.now();
    const s = this.sampler;
    const body =
      url === '/heartbeat'
        ? buildHeartbeat(
            this.cfg.identity,
            this.cfg.service.port,
            hostIp,
            os.hostname(),
            s.latest('identity').value,
            s.latest('gpu').value,
          )
        : buildResource(hostIp, {
            cpu: s.latest('cpu').value,
            load: s.latest('load').value,
            sensors: s.latest('sensors').value,
            memory: s.latest('memory').value,
            network: s.latest('network').value,
            disk: s.latest('disk').value,
            gpu: s.latest('gpu').value,
            work: s.latest('components').value,
          });
    const text = JSON.stringify(body);
    this.m.build.observe({ url }, (performance.now() - started) / 1000);
    return text;
  }

  /** One query, one report: wait the jitter, build, POST once. */
  private async answer(q: QueryBody): Promise<void> {
    const { url, manager_ip, manager_port } = q.data;
    this.lastQueryAt = Date.now();
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
        body = await this.buildReport(url, manager_ip);
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
