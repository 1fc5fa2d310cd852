/**
 * The manager's HTTP server built in-process with small real dependencies (a store in a temporary
 * directory, a registry, alerts, telemetry without InfluxDB, a deployer whose agents are
 * unreachable), as the composition root (manager/app.ts) builds them: for route tests, the
 * route-table test of access control, and the e2e access test's list of every API route.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { AgentClient, AgentFileCalls, DeployOutcome } from '../manager/agents/client.js';
import { AlertEngine, alertMetrics } from '../manager/alerts/engine.js';
import { Access } from '../manager/auth/access.js';
import { ComponentTracker } from '../manager/components.js';
import { Deployer } from '../manager/deploy.js';
import { Pusher } from '../manager/files/push.js';
import { Staging } from '../manager/files/staging.js';
import { Ingest } from '../manager/ingest.js';
import { InstanceController } from '../manager/instances/controller.js';
import { createMetricsRegistry } from '../manager/metrics.js';
import { NodeRegistry, registryMetrics } from '../manager/registry.js';
import { QueryRounds } from '../manager/rounds.js';
import { SseClients } from '../manager/routes/tasks.js';
import { Placer, wireScheduler } from '../manager/scheduler/placer.js';
import { Scheduler } from '../manager/scheduler/scheduler.js';
import { API_PREFIX, buildServer } from '../manager/server.js';
import { Store } from '../manager/store/store.js';
import { CommandCatalog } from '../manager/tasks/catalog.js';
import { wireTasks } from '../manager/tasks/persist.js';
import { type ExecConfig, TaskRunner } from '../manager/tasks/runner.js';
import { Telemetry } from '../manager/telemetry/index.js';
import { AUTH_DEFAULTS } from './auth.js';

const log = pino({ level: 'silent' });

/** A store config for tests: flush every second, no retention (docs/configuration.md "store"). */
export const TEST_STORE_CONFIG = {
  file: 'muster.db',
  flush_interval_ms: 1000,
  retention: { days: 0, max_rows: 0 },
  cleanup_interval_ms: 60000,
  cleanup_batch_rows: 100,
};

/** A telemetry config for tests: a small recent window, InfluxDB off (docs/telemetry.md). */
export const TEST_TELEMETRY_CONFIG = {
  recent: { window_ms: 60_000, max_samples: 10 },
  influxdb: {
    enabled: false,
    url: 'http://127.0.0.1:1',
    database: 'muster',
    username: '',
    password: '',
    retention_policy: '',
    batch_points: 10,
    flush_interval_ms: 100,
    buffer_points: 100,
    timeout_ms: 100,
    retry_max_ms: 100,
    query: { max_points: 1000, timeout_ms: 1000, max_concurrent: 2, max_reply_bytes: 1 << 20 },
  },
};

/** The scheduler settings of in-process tests (config/manager.yaml's defaults). */
export const TEST_SCHEDULER_CONFIG = {
  reserve_memory_bytes: 268435456,
  reservation_ttl_ms: 660000,
  refused_cooldown_ms: 30000,
  default_scoring: 'binpack' as const,
};

/** The instance settings of in-process tests. */
export const TEST_INSTANCES_CONFIG = {
  reconcile_interval_ms: 2000,
  reschedule_after_ms: 60000,
  start_timeout_ms: 660000,
  max_instances: 1000,
  max_components: 1024,
};
/** The exec config for tests: the shipped defaults (config/manager.yaml) with short waits. */
export const TEST_EXEC_CONFIG: ExecConfig = {
  max_nodes_per_task: 5000,
  max_concurrent_tasks: 64,
  max_buffered_lines: 10000,
  max_sse_clients: 64,
  status_wait_ms: 1000,
  call_timeout_ms: 1000,
  lost_after_ms: 2000,
  task_timeout_ms: 86_400_000,
  max_reply_bytes: 4 << 20,
  max_file_bytes: 8 << 20,
  max_tail_bytes: 65536,
  keep_tasks: 200,
  push_concurrency: 32,
};

/** File and screen calls to boards that cannot be reached (status 0, `unreachable`). */
export function unreachableFileCalls(): AgentFileCalls {
  const lost = async () => ({ ok: false as const, status: 0, error: 'unreachable' as const, message: 'unreachable' });
  return { fileOffset: lost, filePut: lost, fileList: lost, fileGet: lost, fileDelete: lost, screen: lost };
}

/** Agents that cannot be reached: every exec call fails as unreachable (-1), every file call too. */
export function unreachableAgents(): AgentClient {
  const no = async () => ({ ok: false as const, result: -1, message: 'unreachable' });
  return {
    ...unreachableFileCalls(),
    deploy: no,
    progress: async () => null,
    exec: no,
    execStatus: no,
    execKill: no,
    execFile: no,
    commandSet: no,
  };
}

/** Files limits for tests: small, no waits between retries (docs/configuration.md "files"). */
export const TEST_FILES_CONFIG = {
  max_upload_bytes: 1 << 20,
  max_stored_bytes: 4 << 20,
  upload_ttl_ms: 60_000,
  push_concurrency: 4,
  retries: 1,
  retry_backoff_ms: 0,
  retry_backoff_max_ms: 0,
  pushes_kept: 10,
  max_pull_bytes: 1 << 20,
};

/**
 * Every dependency of the server (and `close`, which closes the store and removes its directory), built as the composition root does (manager/app.ts).
 * @param opts maxNodes: registry.max_nodes (default no cap); agents: the AgentClient of the task
 *   runner and the catalog (default: unreachable); exec: the exec config (default TEST_EXEC_CONFIG);
 *   reports: the `reports` config section (default none: no report source check)
 */
export function serverDeps(
  opts: {
    maxNodes?: number;
    agents?: AgentClient;
    exec?: ExecConfig;
    reports?: { require_source_match: boolean };
  } = {},
) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-routes-'));
  const metrics = createMetricsRegistry();
  const store = Store.open(dir, TEST_STORE_CONFIG, log, metrics);
  const alerts = new AlertEngine(store, log);
  alertMetrics(metrics, alerts);
  const components = new ComponentTracker(store, alerts, 'warning');
  const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 }, Date.now, opts.maxNodes);
  registryMetrics(metrics, registry);
  const telemetry = new Telemetry(TEST_TELEMETRY_CONFIG, log, metrics);
  const access = new Access(store, AUTH_DEFAULTS, log, metrics);
  const ingest = new Ingest({
    registry,
    store,
    components,
    alerts,
    telemetry,
    log,
    metrics,
    ...(opts.reports ? { reports: opts.reports } : {}),
  });
  const unreachable = async (): Promise<DeployOutcome> => ({ ok: false, result: -1, message: 'unreachable' });
  const deployer = new Deployer(
    { progress_poll_ms: 50 },
    registry,
    { deploy: unreachable, progress: async () => null },
    log,
  );
  const scheduler = new Scheduler(registry, TEST_SCHEDULER_CONFIG, metrics);
  wireScheduler(deployer, scheduler);
  const placer = new Placer(scheduler, deployer, log, 3);
  const instances = new InstanceController({
    store,
    registry,
    scheduler,
    deployer,
    log,
    metrics,
    cfg: TEST_INSTANCES_CONFIG,
  });
  const agents = opts.agents ?? unreachableAgents();
  const exec = opts.exec ?? TEST_EXEC_CONFIG;
  const catalog = new CommandCatalog(store, registry, agents, log, metrics, () => exec.push_concurrency);
  const runner = new TaskRunner(() => exec, registry, agents, catalog, log, metrics);
  wireTasks(runner, store);
  const sse = new SseClients(() => exec.max_sse_clients, metrics);
  // Files and screens: a staging directory of its own, boards that cannot be reached.
  const fileAgents = unreachableFileCalls();
  mkdirSync(path.join(dir, 'files'));
  const staging = new Staging(path.join(dir, 'files'), TEST_FILES_CONFIG, log);
  const history = (e: Parameters<Store['addHistory']>[0]) => void store.addHistory(e);
  const pusher = new Pusher(
    TEST_FILES_CONFIG,
    registry,
    fileAgents,
    staging,
    store,
    { bytes() {}, resumed() {}, board() {} },
    log,
  );
  const rounds = new QueryRounds({
    cfg: { heartbeat_interval_ms: 1000, resource_interval_ms: 1000, jitter_ms: 0, jitter_per_node_ms: 0 },
    querier: { send: async () => {} },
    registry,
    ingest,
    store,
    log,
    metrics,
  });
  return {
    access,
    registry,
    alerts,
    store,
    telemetry,
    deployer,
    scheduler,
    placer,
    instances,
    runner,
    catalog,
    sse,
    rounds,
    ingest,
    metrics,
    files: { pusher, staging, agents: fileAgents, history, maxPullBytes: TEST_FILES_CONFIG.max_pull_bytes },
    database: store.file,
    managerIp: '10.0.0.1',
    managerPort: 3926,
    bodyLimit: 1 << 20,
    log,
    close: () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An API route: its method and full url (with the /api/v1 prefix and `:params`). */
export interface RouteEntry {
  method: string;
  url: string;
  /** The role it declares (`public` for login). */
  role: string | undefined;
}

/**
 * Every route the real server registers (an onRoute hook on a fresh build; HEAD routes that
 * fastify adds beside each GET are left out), and whether it is under the API prefix.
 */
export async function routeTable(): Promise<{ all: RouteEntry[]; api: RouteEntry[] }> {
  const d = serverDeps();
  const all: RouteEntry[] = [];
  const app: FastifyInstance = buildServer(d);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) {
      if (method === 'HEAD') continue;
      all.push({ method, url: r.url, role: (r.config as { role?: string } | undefined)?.role });
    }
  });
  await app.ready();
  await app.close();
  d.close();
  return { all, api: all.filter((r) => r.url.startsWith(`${API_PREFIX}/`)) };
}

/** A concrete path for a route url: each `:param` filled with a plausible value. */
export function samplePath(url: string): string {
  return url.replace(/:id\b/g, '1-1-0').replace(/:(\w+)/g, 'x');
}
