/**
 * The agent daemon (`muster agent`): answers multicast queries with reports (seed 003 状态协议)
 * and serves the command port (GET /healthz, GET /metrics, POST /deploy and GET /deploy/:uuid).
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { API_VERSION, type ReportUrl } from '../common/constants.js';
import { installCrashHandlers } from '../common/crash.js';
import { createHttpServer } from '../common/http.js';
import { type Logger, RateLimitedLog } from '../common/log.js';
import { routeSourceAddress } from '../common/net.js';
import type { QueryBody } from '../common/protocol.js';
import { VERSION } from '../common/version.js';
import type { CollectorContext } from './collectors/collector.js';
import { createComponentsCollector } from './collectors/components.js';
import { createCollectors } from './collectors/index.js';
import type { AgentConfig } from './config.js';
import type { Capacity } from './deploy/admission.js';
import { Supervisor } from './deploy/supervisor.js';
import { createDrivers, type DriverRegistry } from './drivers/index.js';
import { createCommandRegistry } from './handlers/index.js';
import { type CommandAuth, commandRoutes } from './http/commands.js';
import { MulticastListener } from './listener.js';
import { buildHeartbeat, buildResource } from './report.js';
import { Reporter } from './reporter.js';
import { Sampler } from './sampler.js';

/** How long a detected host_ip is reused for one manager address, ms. */
const HOST_IP_TTL_MS = 30_000;

/** Optional parts a caller (or a test) may supply. */
export interface AgentOptions {
  /** Workload drivers; default: docker (when deploy.docker_socket is set) and bar. */
  drivers?: DriverRegistry;
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
    uncaught: new Counter({
      name: 'muster_agent_uncaught_total',
      help: 'Uncaught exceptions and unhandled rejections (bugs), by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    joined: new Gauge({
      name: 'muster_agent_multicast_joined',
      help: '1 while the agent holds its multicast group membership',
      registers: [registry],
    }),
  };
}

/** Online core ids from `<sys>/devices/system/cpu/online` (`0-3,6`), else 0..n-1 of os.cpus(). */
async function onlineCores(sysRoot: string): Promise<number[]> {
  try {
    const text = (await readFile(path.join(sysRoot, 'devices/system/cpu/online'), 'utf8')).trim();
    const out: number[] = [];
    for (const part of text.split(',')) {
      const [a, b] = part.split('-').map(Number);
      if (a === undefined || Number.isNaN(a)) continue;
      for (let c = a; c <= (b ?? a); c++) out.push(c);
    }
    if (out.length > 0) return out;
  } catch {
    // no sysfs: fall back
  }
  return os.cpus().map((_, i) => i);
}

/** The /deploy token: token_file's content when the file exists, else auth.token, else none. */
async function loadAuth(a: AgentConfig['auth']): Promise<CommandAuth> {
  let token = a.token || null;
  if (a.token_file) {
    try {
      token = (await readFile(a.token_file, 'utf8')).trim() || token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`auth.token_file ${a.token_file}: ${(err as Error).message}`);
    }
  }
  return { token, disabled: a.disabled };
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
  /** The manager of the latest valid query: where agent alerts (POST /alert) go. */
  private manager: { ip: string; port: number } | null = null;
  /** uuids whose crash was reported to the manager and not yet cleared. */
  private readonly crashed = new Set<string>();
  private server: FastifyInstance | undefined;
  private readonly rl: RateLimitedLog;
  /** Runs the workloads of POST /deploy; the `component` list of /resource. */
  readonly supervisor: Supervisor;
  private onlineCores: number[] = [];
  private readonly removeCrashHandlers: () => void;

  constructor(
    readonly cfg: AgentConfig,
    private readonly log: Logger,
    opts: AgentOptions = {},
  ) {
    this.rl = new RateLimitedLog(log);
    this.removeCrashHandlers = installCrashHandlers(log, 'agent', { counter: this.m.uncaught });
    collectDefaultMetrics({ register: this.registry });
    const ctx: CollectorContext = {
      procRoot: cfg.collect.proc_root,
      sysRoot: cfg.collect.sys_root,
      config: cfg.collect,
      log,
    };
    const drivers = opts.drivers ?? createDrivers({ cfg, log });
    this.supervisor = new Supervisor(
      drivers,
      () => this.capacity(),
      {
        dataDir: cfg.data_dir,
        stopGraceMs: cfg.deploy.stop_grace_ms,
        keepEndedMs: cfg.deploy.keep_ended_ms,
        onComponent: (event, rec) => this.componentAlert(event, rec),
      },
      log,
    );
    const collectors = {
      ...createCollectors(ctx, {
        cpuTypeOverride: cfg.identity.cpu_type,
        osTypeOverride: cfg.identity.os_type,
        ...(opts.osReleasePath ? { osReleasePath: opts.osReleasePath } : {}),
      }),
      components: createComponentsCollector(this.supervisor),
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
    this.onlineCores = await onlineCores(this.cfg.collect.sys_root);
    await this.supervisor.init();
    await this.sampler.start();
    const auth = await loadAuth(this.cfg.auth);
    if (auth.disabled)
      this.log.warn('auth.disabled is true: /deploy accepts requests WITHOUT a token (legacy managers only)');
    else if (auth.token === null)
      this.log.warn('no /deploy token configured (auth.token, auth.token_file): every deploy will be refused');
    this.server = this.buildServer();
    commandRoutes(
      this.server,
      createCommandRegistry({ supervisor: this.supervisor, log: this.log }),
      this.supervisor,
      auth,
      this.log,
    );
    await this.server.listen({ host: this.cfg.service.host, port: this.cfg.service.port });
    await this.listener.start();
    this.log.info({ node: this.nodeId, service_port: this.cfg.service.port, version: VERSION }, 'agent started');
  }

  /** What workloads may be given: online cores minus reserved, memory minus reserve, GPUs. */
  capacity(): Capacity {
    const reserved = new Set(this.cfg.deploy.reserved_cores);
    return {
      cores: this.onlineCores.filter((c) => !reserved.has(c)),
      memoryBytes: Math.max(0, this.sampler.latest('memory').value.total - this.cfg.deploy.reserve_memory_bytes),
      gpus: this.sampler.latest('gpu').value.map((g) => g.index),
    };
  }

  /** Stops answering, closes the port and connections. Workloads are left running. */
  async stop(): Promise<void> {
    this.listener.stop();
    this.sampler.stop();
    await this.server?.close();
    await this.reporter.close();
    this.removeCrashHandlers();
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

  /**
   * Tells the manager (POST /alert, docs/protocol.md section 4a) that a component crashed, or that
   * a crash reported earlier is over (the component was started or stopped again). Sent once to
   * the manager of the latest query, never retried: the manager also sees FAILED in reports.
   */
  private componentAlert(
    event: 'crashed' | 'cleared',
    rec: { uuid: string; type: string; id?: string | number | null; exitCode?: number | null },
  ): void {
    if (event === 'cleared' && !this.crashed.has(rec.uuid)) return;
    if (event === 'crashed') this.crashed.add(rec.uuid);
    else this.crashed.delete(rec.uuid);
    const m = this.manager;
    if (!m) {
      this.log.warn({ uuid: rec.uuid, event }, 'no manager known yet (no query received): component alert not sent');
      return;
    }
    void (async () => {
      const hostIp = await this.hostIpFor(m.ip).catch(() => '0.0.0.0');
      const id = this.cfg.identity;
      const body = JSON.stringify({
        api_version: API_VERSION,
        data: {
          host_ip: hostIp,
          box_id: id.box_id,
          slot_id: id.slot_id,
          cpu_id: id.cpu_id,
          name: 'component_crashed',
          state: event === 'crashed' ? 'firing' : 'resolved',
          severity: 'warning',
          instance: rec.uuid,
          message:
            event === 'crashed'
              ? `${rec.type} component ${rec.uuid}${rec.id ? ` (${rec.id})` : ''} exited on its own with code ${rec.exitCode ?? 'unknown'}`
              : `component ${rec.uuid} was started or stopped again`,
        },
      });
      const d = await this.reporter.send(m.ip, m.port, '/alert', body);
      if (!d.ok)
        this.rl.warn(
          'alert',
          { manager: `${m.ip}:${m.port}`, reason: d.reason, detail: d.detail },
          'component alert not delivered',
        );
    })();
  }

  /** One query, one report: wait the jitter, build, POST once. */
  private async answer(q: QueryBody): Promise<void> {
    const { url, manager_ip, manager_port } = q.data;
    this.lastQueryAt = Date.now();
    this.manager = { ip: manager_ip, port: manager_port };
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
