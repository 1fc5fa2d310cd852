/**
 * The manager daemon's composition root (`muster manager`, docs/operations.md): builds the object
 * graph in order — the Prometheus registry, the store opened (manager/store), the alert engine,
 * the component tracker, the node registry put back from the store, the deployer and its agent
 * client, the telemetry, the ingest, the query rounds, the event wiring, the HTTP server — and
 * returns the daemon's start, stop and reload.
 *
 * Its state (nodes, history, deployments, alerts, rules) is kept in the SQLite store under
 * data_dir and put back at start; every report also goes to the telemetry (in-memory recent
 * history, and InfluxDB when enabled), off the request path.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import { installCrashHandlers } from '../common/crash.js';
import type { Logger } from '../common/log.js';
import { interfaceAddress, primaryAddress } from '../common/net.js';
import { VERSION } from '../common/version.js';
import { AgentCredentials } from './agents/credentials.js';
import { HttpAgentClient } from './agents/http.js';
import { AlertEngine, alertMetrics } from './alerts/engine.js';
import { Access } from './auth/access.js';
import { ComponentTracker } from './components.js';
import type { ManagerConfig } from './config.js';
import { Deployer } from './deploy.js';
import { Pusher } from './files/push.js';
import { Staging } from './files/staging.js';
import { Ingest } from './ingest.js';
import { InstanceController } from './instances/controller.js';
import { LinkAgentClient, RoutingAgentClient } from './link/client.js';
import { LinkHub } from './link/hub.js';
import type { Transition } from './liveness.js';
import { createMetricsRegistry } from './metrics.js';
import { NodePruner } from './prune.js';
import { Querier } from './querier.js';
import { nodeRow, parseHeartbeat, parseLink } from './records.js';
import { NodeRegistry, registryMetrics } from './registry.js';
import { RelayAgentClient } from './relay/client.js';
import { RelayHub } from './relay/hub.js';
import { SecretBox } from './relay/secrets.js';
import { QueryRounds } from './rounds.js';
import { SseClients } from './routes/tasks.js';
import { Placer, wireScheduler } from './scheduler/placer.js';
import { Scheduler } from './scheduler/scheduler.js';
import { buildApiServer, buildReportServer, buildServer, type ServerOptions } from './server.js';
import { Store } from './store/store.js';
import { CommandCatalog } from './tasks/catalog.js';
import { wireTasks } from './tasks/persist.js';
import { TaskRunner } from './tasks/runner.js';
import { Telemetry } from './telemetry/index.js';
import { managerHistory, wireEvents } from './wiring.js';

/**
 * Accept backlog of the report port: the kernel caps it at net.core.somaxconn (4096 on current
 * Linux; docs/operations.md "Sizing").
 */
const REPORT_BACKLOG = 8192;

/** A built manager: the daemon's handle (cli/daemon.ts runs it). */
export interface Manager {
  /** The HTTP server of the reports (and of the API unless http.api.port is set); not listening before start(). */
  readonly http: FastifyInstance;
  /** The API's own listener when http.api.port is set, else null. */
  readonly api: FastifyInstance | null;
  /** Users, sessions and tokens. */
  readonly access: Access;
  /** Starts the telemetry writer, opens the query socket and the HTTP port, starts the rounds. */
  start(): Promise<void>;
  /** Stops the rounds, closes the port, flushes the telemetry and closes the store. */
  stop(): Promise<void>;
  /**
   * Applies a reloaded config (SIGHUP): alert rules and event severities, store retention and
   * flush. Other keys need a restart; those that differ are logged.
   * @throws RuleError when a rule is invalid (the running rules stay)
   */
  reload(next: ManagerConfig): void;
}

/**
 * Builds the manager for `config`: opens the store and puts back the previous run's state (nodes,
 * transitions, open alerts, rules then the config's rules, components, deployments). The first
 * admin is created by start() when there is no user (docs/operations.md "First start").
 * @throws StoreError when the database cannot be opened; Error naming deploy.token_file when it cannot be read,
 *   or the file of http.api.tls when it cannot be read
 */
export function createManager(config: ManagerConfig, log: Logger): Manager {
  let cfg = config;
  const t0 = performance.now();
  const metrics = createMetricsRegistry();
  // A bug nobody caught: logged and counted; an uncaught exception also exits (common/crash.ts).
  const removeCrashHandlers = installCrashHandlers(log, 'manager', {
    counter: new Counter({
      name: 'muster_manager_uncaught_total',
      help: 'Uncaught exceptions and unhandled rejections (bugs), by kind',
      labelNames: ['kind'],
      registers: [metrics],
    }),
  });
  const advertiseIp =
    cfg.advertise_ip || (cfg.multicast.interface && interfaceAddress(cfg.multicast.interface)) || primaryAddress();

  const store = Store.open(cfg.data_dir, cfg.store, log, metrics);
  const alerts = new AlertEngine(store, log, cfg.alerts.max_open_per_kind);
  alertMetrics(metrics, alerts);
  const components = new ComponentTracker(store, alerts, cfg.alerts.events.component_failed);
  const registry = new NodeRegistry(cfg.liveness, Date.now, cfg.registry.max_nodes);
  registryMetrics(metrics, registry);
  store.setNodeSource((id) => nodeRow(registry, id));

  // The previous run's state.
  const rows = store.loadNodes();
  const transitions = new Map<string, Transition[]>();
  for (const [node, entries] of store.recentTransitions(50)) {
    transitions.set(
      node,
      entries.map((e) => ({
        node,
        from: (e.args?.from as Transition['from']) ?? null,
        to: e.operation as Transition['to'],
        at: e.at,
        reason: String(e.args?.reason ?? ''),
      })),
    );
  }
  registry.restore(
    rows.map((r) => ({ ...r, heartbeat: parseHeartbeat(r.heartbeat), link: parseLink(r.link) })),
    transitions,
  );
  const { open, rules } = alerts.restore();
  alerts.syncConfigRules(cfg.alerts.rules, Date.now());
  components.restore();

  const httpAgents = new HttpAgentClient(
    {
      timeout_ms: cfg.deploy.timeout_ms,
      progress_timeout_ms: Math.max(1000, cfg.deploy.progress_poll_ms * 4),
      max_reply_bytes: cfg.deploy.max_reply_bytes,
      exec: {
        call_timeout_ms: cfg.exec.call_timeout_ms,
        max_reply_bytes: cfg.exec.max_reply_bytes,
        max_file_bytes: cfg.exec.max_file_bytes,
      },
      files: cfg.files,
    },
    new AgentCredentials(cfg.deploy, log),
    metrics,
  );
  const telemetry = new Telemetry(cfg.telemetry, log, metrics);
  const ingest = new Ingest({ registry, store, components, alerts, telemetry, log, metrics, reports: cfg.reports });
  const link = new LinkHub({ cfg: cfg.link, registry, ingest, store, telemetry, alerts, log, metrics });
  // SSH servers behind relays (docs/links.md "The SSH relay"); the credential key file is
  // created on first use.
  const relayHub = new RelayHub({ cfg: cfg.relay, store, log, metrics });
  let box: SecretBox | null = null;
  const secretBox = () => {
    box ??= SecretBox.open(cfg.data_dir);
    return box;
  };
  const relayAgents = new RelayAgentClient({
    hub: relayHub,
    store,
    get box() {
      return secretBox();
    },
    alerts,
    cfg: () => cfg.relay,
    log,
  });
  // Per node: the WebSocket link when the node reports over it, else HTTP (docs/links.md).
  const agents = new RoutingAgentClient(
    httpAgents,
    new LinkAgentClient(link, {
      deploy_timeout_ms: cfg.deploy.timeout_ms,
      exec: {
        call_timeout_ms: cfg.exec.call_timeout_ms,
        max_reply_bytes: cfg.exec.max_reply_bytes,
        max_file_bytes: cfg.exec.max_file_bytes,
      },
    }),
    link,
    registry,
    relayAgents,
  );
  const deployer = new Deployer(cfg.deploy, registry, agents, log);
  // Files and screens (docs/files.md): uploads staged under data_dir, pushed to the boards.
  const staging = new Staging(path.join(cfg.data_dir, 'files'), cfg.files, log);
  const pushCounters = {
    bytes: new Counter({
      name: 'muster_manager_files_sent_bytes_total',
      help: 'Bytes of pushed files sent to boards',
      registers: [metrics],
    }),
    resumed: new Counter({
      name: 'muster_manager_files_resumed_total',
      help: 'File transfers to boards resumed from the offset a board held',
      registers: [metrics],
    }),
    boards: new Counter({
      name: 'muster_manager_files_push_boards_total',
      help: 'Boards a push finished on, by result: done, failed',
      labelNames: ['result'],
      registers: [metrics],
    }),
  };
  const fileHistory = (e: Parameters<Store['addHistory']>[0]) => void store.addHistory(e);
  const pusher = new Pusher(
    cfg.files,
    registry,
    agents,
    staging,
    store,
    {
      bytes: (n) => pushCounters.bytes.inc(n),
      resumed: () => pushCounters.resumed.inc(),
      board: (r) => pushCounters.boards.inc({ result: r }),
    },
    log,
  );
  const scheduler = new Scheduler(registry, cfg.scheduler, metrics);
  const placer = new Placer(scheduler, deployer, log, () => cfg.scheduler.max_attempts);
  const instances = new InstanceController({
    store,
    registry,
    scheduler,
    deployer,
    log,
    metrics,
    cfg: cfg.instances,
  });
  const catalog = new CommandCatalog(store, registry, agents, log, metrics, () => cfg.exec.push_concurrency);
  const runner = new TaskRunner(
    () => cfg.exec,
    registry,
    agents,
    catalog,
    log,
    metrics,
    () => store.relays.servers(),
  );
  wireTasks(runner, store);
  // After the wiring: a task found under way is recorded as interrupted.
  runner.restore(store.tasks.loadUnfinished());
  const sse = new SseClients(() => cfg.exec.max_sse_clients, metrics);
  const querier = new Querier(
    {
      group: cfg.multicast.group,
      port: cfg.multicast.port,
      interface: cfg.multicast.interface,
      ttl: cfg.multicast.ttl,
      loopback: cfg.multicast.loopback,
      managerIp: advertiseIp,
      managerPort: cfg.http.port,
    },
    log,
  );
  const rounds = new QueryRounds({ cfg: cfg.query, querier, registry, ingest, store, log, metrics });
  wireEvents({ registry, deployer, store, alerts, telemetry, severities: () => cfg.alerts.events, log });
  const pruner = new NodePruner({ registry, alerts, store, cfg: cfg.registry, log, metrics });
  // After the wiring: a deployment found unfinished is recorded as interrupted.
  deployer.restore(store.loadDeployments(deployer.keep));
  wireScheduler(deployer, scheduler);
  const restoredInstances = instances.restore();

  const restored = {
    file: store.file,
    schema: store.version,
    nodes: rows.length,
    open_alerts: open,
    stored_rules: rules,
    rules: alerts.listRules().length,
    instances: restoredInstances.instances,
    instance_components: restoredInstances.components,
    ms: Math.round(performance.now() - t0),
  };
  log.info(restored, 'state restored from the database');
  managerHistory(store, null, 'manager', 'start', { version: VERSION, ...restored }, `manager ${VERSION} started`);

  const access = new Access(store, cfg.auth, log, metrics);
  const serverOptions: ServerOptions = {
    access,
    metricsAuth: cfg.http.metrics_auth,
    registry,
    alerts,
    store,
    telemetry,
    deployer,
    placer,
    instances,
    runner,
    catalog,
    sse,
    rounds,
    ingest,
    metrics,
    files: { pusher, staging, agents, history: fileHistory, maxPullBytes: cfg.files.max_pull_bytes },
    database: store.file,
    managerIp: advertiseIp,
    managerPort: cfg.http.port,
    bodyLimit: cfg.http.body_limit_bytes,
    maxJsonDepth: cfg.http.max_json_depth,
    dashboard: cfg.dashboard,
    relayHub,
    secretBox,
    relayConfig: () => cfg.relay,
    log,
  };
  const split = cfg.http.api.port !== 0;
  const tls = cfg.http.api.tls.cert_file
    ? { cert: readFileSync(cfg.http.api.tls.cert_file), key: readFileSync(cfg.http.api.tls.key_file) }
    : undefined;
  const http = split ? buildReportServer(serverOptions) : buildServer(serverOptions);
  const api = split ? buildApiServer(serverOptions, tls) : null;
  // The WebSocket node link on the API listener (docs/links.md).
  link.attach((api ?? http).server);
  relayHub.attach((api ?? http).server);

  return {
    http,
    api,
    access,
    async start() {
      await access.bootstrap(cfg.data_dir);
      await staging.start();
      store.start();
      await telemetry.start();
      await querier.start();
      // A whole fleet connects within one reply window after a (re)start: Node's default accept
      // backlog (511) overflows at a few thousand boards (refused or timed-out connects).
      await http.listen({ host: cfg.http.host, port: cfg.http.port, backlog: REPORT_BACKLOG });
      if (api) {
        await api.listen({ host: cfg.http.api.host || cfg.http.host, port: cfg.http.api.port });
        log.info(
          { host: cfg.http.api.host || cfg.http.host, port: cfg.http.api.port, https: tls !== undefined },
          'REST API listening on its own port',
        );
      }
      rounds.start();
      pruner.start();
      instances.start();
      log.info(
        {
          manager_ip: advertiseIp,
          port: cfg.http.port,
          group: `${cfg.multicast.group}:${cfg.multicast.port}`,
          version: VERSION,
        },
        'manager started',
      );
    },

    async stop() {
      instances.stop();
      rounds.stop();
      pruner.stop();
      staging.stop();
      querier.stop();
      await link.close();
      await relayHub.close();
      await http.close();
      await api?.close();
      await telemetry.stop();
      managerHistory(store, null, 'manager', 'stop', null, `manager ${VERSION} stopped`);
      store.close();
      removeCrashHandlers();
    },

    reload(next) {
      alerts.syncConfigRules(next.alerts.rules, Date.now());
      alerts.setMaxOpenPerKind(next.alerts.max_open_per_kind);
      components.setSeverity(next.alerts.events.component_failed);
      store.reconfigure(next.store);
      access.reconfigure(next.auth);
      scheduler.reconfigure(next.scheduler);
      const needRestart = (Object.keys(next) as (keyof ManagerConfig)[]).filter(
        (k) =>
          !['alerts', 'store', 'log', 'auth', 'scheduler'].includes(k) &&
          JSON.stringify(next[k]) !== JSON.stringify(cfg[k]),
      );
      cfg = { ...cfg, alerts: next.alerts, store: next.store, auth: next.auth, scheduler: next.scheduler };
      log.info(
        { rules: alerts.listRules().length, ...(needRestart.length ? { need_restart: needRestart } : {}) },
        needRestart.length
          ? 'config reloaded: alerts and store applied; the other changed keys take effect at the next restart'
          : 'config reloaded',
      );
    },
  };
}
