/**
 * The agent's composition root: builds the object graph of `muster agent` in dependency order,
 * with no late-bound fields (docs/operations.md "systemd units"; every config key in
 * docs/configuration.md "Agent keys"):
 *
 *   metrics registry → drivers (by WorkloadType) → supervisor → collectors and sampler
 *   → report assembler and builder → multicast link → component alerts → command registry
 *   → HTTP command service
 *
 * `start` brings it up in order (records and re-adoption, first samples, command port, then the
 * multicast group), `stop` takes it down and leaves workloads running.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { installCrashHandlers } from '../common/crash.js';
import type { Logger } from '../common/log.js';
import { VERSION } from '../common/version.js';
import type { CollectorContext } from './collectors/collector.js';
import { gpuCollector } from './collectors/gpu.js';
import { COLLECTORS } from './collectors/index.js';
import { memoryCollector } from './collectors/memory.js';
import type { AgentConfig } from './config.js';
import type { Capacity } from './deploy/admission.js';
import { Supervisor } from './deploy/supervisor.js';
import { REFUSAL_REASONS } from './drivers/bar/unpack.js';
import { createDrivers, type DriverRegistry } from './drivers/index.js';
import { CommandSet } from './exec/commands.js';
import { parseGoDuration } from './exec/duration.js';
import type { OsreapiServer } from './exec/osreapi.js';
import { ExecRunner } from './exec/runner.js';
import { Roots } from './files/paths.js';
import { Uploads } from './files/uploads.js';
import { createCommandRegistry } from './handlers/index.js';
import type { CommandRegistry } from './handlers/registry.js';
import { type CommandAuth, commandRoutes } from './http/commands.js';
import { fileRoutes } from './http/files.js';
import { type AgentServer, createAgentServer } from './http/server.js';
import { ComponentAlerts } from './link/alerts.js';
import { hostname, ReportBuilder } from './link/answer.js';
import { MulticastLink } from './link/multicast.js';
import { ReportAssembler } from './link/report.js';
import type { WsLink } from './link/ws.js';
import { Counter, collectDefaultMetrics, Histogram, Registry } from './prom.js';
import { Sampler } from './sampler.js';
import { ScreenCapturer } from './screen/capture.js';

/**
 * Resolution of the agent's event-loop delay histogram (prom-client's `nodejs_eventloop_lag_*`),
 * ms. The histogram is fed by a libuv timer firing this often, and each firing wakes the process:
 * at prom-client's default 10 ms that timer alone costs an idle agent ~0.7 % of a core (100
 * wake-ups a second), at 50 ms ~0.15 %, at 100 ms ~0.07 % (measured side by side). Each recorded
 * value is the time between two firings, i.e. this resolution plus the delay: an idle loop reads
 * ~100 ms, a loop blocked 30 ms reads ~130 ms. A block delays the pending firing whatever the
 * resolution, so blocks are seen all the same; only the idle samples are fewer
 * (docs/operations.md "Prometheus metrics").
 */
export const EVENT_LOOP_RESOLUTION_MS = 100;

/** Optional parts a caller (or a test) may supply. */
export interface AgentOptions {
  /** Workload drivers; default: agent/drivers/index.ts for this config. */
  drivers?: DriverRegistry;
  /** /etc/os-release to read os_type from (tests feed a recorded one). */
  osReleasePath?: string;
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

/**
 * The command token: token_file's content when the file exists, else auth.token, else none
 * (docs/configuration.md "auth").
 * @throws Error when token_file exists but cannot be read
 */
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

/** The running agent's parts, built by {@link buildAgent}. */
export class AgentApp {
  /** The daemon's one metrics registry: every module declares its metrics here. */
  readonly metrics = new Registry();
  /** Runs the workloads of deploys; the `component` list of /resource. */
  readonly supervisor: Supervisor;
  readonly sampler: Sampler;
  readonly builder: ReportBuilder;
  readonly link: MulticastLink;
  /**
   * The WebSocket node link (link.mode websocket or both), else null (docs/links.md); made by
   * `start`, which imports its module (and `ws`) only when the mode asks for it.
   */
  wsLink: WsLink | null = null;
  readonly commands: CommandRegistry;
  /** Runs remote-execution tasks (docs/exec.md). */
  readonly exec: ExecRunner;
  private readonly startedAt = Date.now();
  private cores: number[] = [];
  private server: AgentServer | undefined;
  private osreapi: OsreapiServer | undefined;
  private uploads: Uploads | undefined;
  private readonly removeCrashHandlers: () => void;

  constructor(
    readonly cfg: AgentConfig,
    private readonly log: Logger,
    opts: AgentOptions = {},
  ) {
    const uncaught = new Counter({
      name: 'muster_agent_uncaught_total',
      help: 'Uncaught exceptions and unhandled rejections (bugs), by kind',
      labelNames: ['kind'],
      registers: [this.metrics],
    });
    this.removeCrashHandlers = installCrashHandlers(log, 'agent', { counter: uncaught });
    collectDefaultMetrics({ register: this.metrics, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS });

    const refused = new Counter({
      name: 'muster_agent_bundles_refused_total',
      help: 'bar bundles refused by their content (unpacked size, file count, links, entries, archive, manifest), by reason',
      labelNames: ['reason'],
      registers: [this.metrics],
    });
    for (const r of REFUSAL_REASONS) refused.inc({ reason: r }, 0);
    this.supervisor = new Supervisor(
      opts.drivers ?? createDrivers({ cfg, log, onBundleRefused: (reason) => refused.inc({ reason }) }),
      () => this.capacity(),
      { dataDir: cfg.data_dir, stopGraceMs: cfg.deploy.stop_grace_ms, keepEndedMs: cfg.deploy.keep_ended_ms },
      log,
    );
    const ctx: CollectorContext = {
      procRoot: cfg.collect.proc_root,
      sysRoot: cfg.collect.sys_root,
      config: cfg.collect,
      log,
      identity: cfg.identity,
      workloads: this.supervisor,
      ...(opts.osReleasePath ? { osReleasePath: opts.osReleasePath } : {}),
    };
    this.sampler = new Sampler(
      COLLECTORS,
      ctx,
      new Histogram({
        name: 'muster_agent_collector_duration_seconds',
        help: 'Duration of one collector run',
        labelNames: ['collector'],
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5],
        registers: [this.metrics],
      }),
    );
    const assembler = new ReportAssembler(COLLECTORS, this.sampler, {
      identity: cfg.identity,
      servicePort: cfg.service.port,
      hostname: hostname(),
      labels: cfg.labels,
    });
    this.builder = new ReportBuilder(assembler, cfg.report.host_ip, this.metrics);
    this.link = new MulticastLink(cfg, this.builder, VERSION, this.metrics, log);
    const alerts = new ComponentAlerts(this.link, this.builder, cfg.identity, log);
    this.supervisor.onComponent((event, rec) => alerts.notify(event, rec));
    const commandSet = new CommandSet(cfg.exec.commands_dir);
    this.exec = new ExecRunner(
      {
        dataDir: cfg.data_dir,
        stepTimeoutMs: parseGoDuration(cfg.exec.step_timeout, 'exec.step_timeout'),
        keepMs: parseGoDuration(cfg.exec.keep, 'exec.keep'),
        killGraceMs: parseGoDuration(cfg.exec.kill_grace, 'exec.kill_grace'),
        poolSize: cfg.exec.pool_size,
        maxRequests: cfg.exec.max_requests,
        maxTasks: cfg.exec.max_tasks,
        maxOutputBytes: cfg.exec.max_output_bytes,
        outputLines: cfg.exec.output_lines,
        logMaxBytes: cfg.exec.log_max_bytes,
        allowRaw: cfg.exec.allow_raw,
        maxGenerateFileBytes: cfg.exec.max_generate_file_bytes,
        commands: commandSet,
      },
      log,
      this.metrics,
    );
    this.commands = createCommandRegistry({ supervisor: this.supervisor, exec: this.exec, commands: commandSet, log });
  }

  /** The node id this agent claims: `box-slot-cpu`. */
  get nodeId(): string {
    const { box_id, slot_id, cpu_id } = this.cfg.identity;
    return `${box_id}-${slot_id}-${cpu_id}`;
  }

  /** What workloads may be given: online cores minus reserved, memory minus reserve, GPUs. */
  capacity(): Capacity {
    const reserved = new Set(this.cfg.deploy.reserved_cores);
    return {
      cores: this.cores.filter((c) => !reserved.has(c)),
      memoryBytes: Math.max(0, this.sampler.latest(memoryCollector).value.total - this.cfg.deploy.reserve_memory_bytes),
      gpus: this.sampler.latest(gpuCollector).value.map((g) => g.index),
    };
  }

  /** Takes first samples, opens the command port, then joins the multicast group. */
  async start(): Promise<void> {
    if (this.cfg.link.mode !== 'multicast') {
      const { WsLink } = await import('./link/ws.js');
      this.wsLink = new WsLink(this.cfg, this.nodeId, this.builder, this.commands, this.metrics, this.log);
    }
    this.cores = await onlineCores(this.cfg.collect.sys_root);
    await this.supervisor.init();
    await this.exec.init();
    await this.sampler.start();
    const auth = await loadAuth(this.cfg.auth);
    if (auth.disabled)
      this.log.warn('auth.disabled is true: /deploy accepts requests WITHOUT a token (legacy managers only)');
    else if (auth.token === null)
      this.log.warn('no /deploy token configured (auth.token, auth.token_file): every deploy will be refused');
    const server = createAgentServer(this.log, this.metrics, () => ({
      status: 'ok',
      node: this.nodeId,
      version: VERSION,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      multicast_joined: this.link.joined,
      link_mode: this.cfg.link.mode,
      ws_link_connected: this.wsLink?.connected ?? false,
      last_query_at: this.link.lastQueryAt ? new Date(this.link.lastQueryAt).toISOString() : null,
    }));
    commandRoutes(server, this.commands, this.supervisor, auth, this.log, {
      bodyLimit: this.cfg.http.body_limit_bytes,
      maxJsonDepth: this.cfg.http.max_json_depth,
    });
    // Files and screen (docs/files.md): the same token, their own streaming routes.
    const { roots, missing } = await Roots.open(this.cfg.files.roots);
    if (missing.length > 0) this.log.warn({ missing }, 'files.roots: these roots cannot be used and are left out');
    const received = new Counter({
      name: 'muster_agent_files_received_bytes_total',
      help: 'Bytes of uploads written to partial files',
      registers: [this.metrics],
    });
    this.uploads = new Uploads(roots, this.cfg.files, this.log, (n) => received.inc(n));
    await this.uploads.start();
    fileRoutes(server, {
      roots,
      uploads: this.uploads,
      screen: new ScreenCapturer(this.cfg.screen),
      auth,
      maxListEntries: this.cfg.files.max_list_entries,
      metrics: this.metrics,
      log: this.log,
    });
    this.server = server;
    await server.listen({ host: this.cfg.service.host, port: this.cfg.service.port });
    if (this.cfg.exec.osreapi.port !== 0) {
      // Loaded only when on: node:http and the seed API's code stay out of an agent that has it off.
      const { OsreapiServer } = await import('./exec/osreapi.js');
      this.osreapi = new OsreapiServer(
        this.exec,
        {
          host: this.cfg.exec.osreapi.host || this.cfg.service.host,
          port: this.cfg.exec.osreapi.port,
          auth,
          bodyLimit: this.cfg.http.body_limit_bytes,
          maxJsonDepth: this.cfg.http.max_json_depth,
          requestTimeoutMs: this.cfg.exec.osreapi.request_timeout_ms,
          keepMs: parseGoDuration(this.cfg.exec.keep, 'exec.keep'),
        },
        this.log,
        this.metrics,
      );
      try {
        const port = await this.osreapi.listen();
        this.log.info({ port }, 'seed executor API listening (exec.osreapi.port)');
      } catch (err) {
        // An optional compatibility port: the agent runs on without it (say so loudly).
        this.log.error(
          { port: this.cfg.exec.osreapi.port, err: (err as Error).message },
          'seed executor API cannot listen (exec.osreapi.port); it is off until the agent restarts',
        );
        this.osreapi = undefined;
      }
    }
    if (this.cfg.link.mode !== 'websocket') await this.link.start();
    this.wsLink?.start();
    this.log.info({ node: this.nodeId, service_port: this.cfg.service.port, version: VERSION }, 'agent started');
  }

  /** Stops answering, closes the port and connections. Workloads are left running. */
  async stop(): Promise<void> {
    this.sampler.stop();
    this.uploads?.stop();
    await this.server?.close();
    await this.osreapi?.close();
    await this.wsLink?.stop();
    await this.link.stop();
    await this.exec.stop();
    this.removeCrashHandlers();
  }
}

/** Builds the agent's object graph (see the module comment); nothing runs until `start`. */
export function buildAgent(cfg: AgentConfig, log: Logger, opts: AgentOptions = {}): AgentApp {
  return new AgentApp(cfg, log, opts);
}
