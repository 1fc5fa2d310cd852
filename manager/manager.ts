/**
 * The manager daemon (`muster manager`): sends the multicast queries of seed 003, ingests the
 * agents' reports into the node registry, runs liveness rounds, and serves the REST API. Its
 * state (nodes, history, deployments, alerts, rules) is kept in the SQLite store under data_dir
 * and put back at start; every report also goes to the telemetry (in-memory recent history, and
 * InfluxDB when enabled), off the request path.
 */
import type { FastifyInstance } from 'fastify';
import type { ReportUrl } from '../common/constants.js';
import { type Logger, RateLimitedLog } from '../common/log.js';
import { interfaceAddress, primaryAddress } from '../common/net.js';
import type { HeartbeatData, ResourceData } from '../common/protocol.js';
import { MAX_JITTER_MS } from '../common/protocol.js';
import { VERSION } from '../common/version.js';
import { AlertEngine, alertKey } from './alerts/engine.js';
import { ComponentTracker } from './components.js';
import type { ManagerConfig } from './config.js';
import { Deployer, type DeploymentRecord } from './deploy.js';
import type { Transition } from './liveness.js';
import { managerMetrics } from './metrics.js';
import { Querier } from './querier.js';
import { type NodeRecord, NodeRegistry } from './registry.js';
import { buildServer } from './server.js';
import { type NodeRow, Store } from './store/store.js';
import { type NodeTags, Telemetry } from './telemetry/index.js';

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
  readonly deployer: Deployer;
  readonly telemetry: Telemetry;
  /** Opened by start(). */
  store!: Store;
  /** Created by start(), once the store is open. */
  alerts!: AlertEngine;
  private components!: ComponentTracker;
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
    this.deployer = new Deployer(cfg.deploy, this.registry, log);
    this.telemetry = new Telemetry(cfg.telemetry, log, this.metrics.registry);
    this.registry.on('transition', (t: Transition) => this.onTransition(t));
    this.registry.on('conflict', (c: { node: string; claimants: string[] }) => {
      this.log.error(c, 'identity conflict: more than one board claims this position');
      const at = Date.now();
      const message = `identity conflict: ${c.claimants.join(', ')} all claim position ${c.node}`;
      this.history(c.node, 'state', 'conflict', { claimants: c.claimants }, message, at);
      this.alerts.raise(
        {
          kind: 'identity_conflict',
          rule: 'identity_conflict',
          severity: this.cfg.alerts.events.identity_conflict,
          node: c.node,
          message,
        },
        at,
      );
      this.saveNode(c.node);
    });
    this.registry.on('conflict-cleared', (c: { node: string }) => {
      this.log.info(c, 'identity conflict cleared');
      const at = Date.now();
      const n = this.registry.nodes.get(c.node);
      const message = `identity conflict cleared: only ${n?.primary ?? '?'} claims position ${c.node}`;
      this.history(c.node, 'state', 'conflict-cleared', null, message, at);
      this.alerts.resolve(alertKey('identity_conflict', c.node, 'identity_conflict'), at, message);
      this.saveNode(c.node);
    });
    this.registry.on('address-shared', (c: { host_ip: string; nodes: string[] }) =>
      this.log.error(
        c,
        'one address reports for several positions: resource reports cannot be told apart (give each agent its own report.host_ip)',
      ),
    );
    this.registry.on('moved', (c: { node: string; from: string; to: string }) => {
      this.log.warn(c, 'node now reports from another address');
      this.history(c.node, 'state', 'moved', { from: c.from, to: c.to }, `now reported by ${c.to} (was ${c.from})`);
      this.saveNode(c.node);
    });
    this.deployer.on('deployment', (rec: DeploymentRecord) => {
      this.store.saveDeployment(rec);
      this.store.addHistory({
        at: Date.parse(rec.at),
        node: rec.node,
        kind: 'operation',
        operation: `deploy.${rec.mode}`,
        args: { ...rec.request },
        who: rec.who,
        ref: rec.id,
      });
    });
    this.deployer.on('finished', (rec: DeploymentRecord) => {
      this.store.saveDeployment(rec);
      this.store.finishHistory(rec.id, rec.result as number, rec.message ?? '');
      if (rec.result === 0) {
        const at = Date.now();
        this.store.saveComponent({
          node: rec.node,
          uuid: rec.uuid,
          type: rec.type,
          name: null,
          cid: rec.reply?.id !== undefined ? String(rec.reply.id) : null,
          state: null,
          deployment: rec.id,
          first_seen: at,
          last_seen: at,
        });
      }
    });
  }

  /** A transition: history, the node row, alerts, telemetry. */
  private onTransition(t: Transition): void {
    this.metrics.transitions.inc({ to: t.to });
    const level = t.to === 'online' ? 'info' : 'warn';
    this.log[level]({ node: t.node, from: t.from, to: t.to, reason: t.reason }, 'node state changed');
    const at = Date.parse(t.at);
    this.history(
      t.node,
      'state',
      t.to,
      { from: t.from, reason: t.reason },
      `${t.from ?? 'new'} → ${t.to}: ${t.reason}`,
      at,
    );
    this.saveNode(t.node);
    const key = alertKey('node_offline', t.node, 'node_offline');
    // A node that stopped reporting: threshold holds must see the condition again from the start.
    if (t.to !== 'online') this.alerts.forgetHolds(t.node);
    if (t.to === 'offline') {
      this.alerts.raise(
        {
          kind: 'node_offline',
          rule: 'node_offline',
          severity: this.cfg.alerts.events.node_offline,
          node: t.node,
          message: `node ${t.node} is offline: ${t.reason}`,
        },
        at,
      );
    } else if (t.to === 'online') {
      this.alerts.resolve(key, at, `node ${t.node} is back online: ${t.reason}`);
    }
    const n = this.registry.nodes.get(t.node);
    const tags = n && this.tagsOf(n);
    if (n && tags) {
      const b = this.registry.boardOf(n);
      // A position no board claims any more has no missed-round count (the point leaves it out).
      this.telemetry.nodeState(tags, t.to, b ? this.registry.missed(b) : Number.POSITIVE_INFINITY, at, t.reason);
    }
  }

  /** Writes a history entry done by the manager itself. */
  private history(
    node: string | null,
    kind: 'state' | 'manager',
    operation: string,
    args: Record<string, unknown> | null,
    message: string,
    at = Date.now(),
  ): void {
    this.store.addHistory({ at, node, kind, operation, args, message, who: 'manager' });
  }

  /** The store row of a node as it is now. */
  private nodeRow(id: string): NodeRow | undefined {
    const n = this.registry.nodes.get(id);
    if (!n) return undefined;
    const b = this.registry.boardOf(n);
    return {
      id,
      box_id: n.box_id,
      slot_id: n.slot_id,
      cpu_id: n.cpu_id,
      host_ip: n.primary,
      claimants: [...n.claimants],
      hostname: b?.heartbeat?.hostname ?? null,
      heartbeat: b?.heartbeat ? JSON.stringify(b.heartbeat) : null,
      state: n.state,
      state_since: n.since,
      first_seen: n.first_seen,
      last_seen: b?.heartbeatAt || n.since,
    };
  }

  /** Writes a node now (after a transition or a conflict: it must survive a SIGKILL). */
  private saveNode(id: string): void {
    const row = this.nodeRow(id);
    if (row) this.store.saveNode(row);
  }

  /** The telemetry tags of a node, from its shown board's heartbeat (undefined before one). */
  private tagsOf(n: NodeRecord): NodeTags | undefined {
    const hb = this.registry.boardOf(n)?.heartbeat;
    if (!hb) return undefined;
    return { node: n.id, box: n.box_id, slot: n.slot_id, cpu: n.cpu_id, hostname: hb.hostname, host_ip: n.primary };
  }

  /**
   * Opens the store and puts back the previous run's state: nodes, transitions, open alerts,
   * rules (then the config's rules), components, deployments.
   */
  private restore(): void {
    const t0 = performance.now();
    this.store = Store.open(this.cfg.data_dir, this.cfg.store, this.log, this.metrics.registry);
    this.store.setNodeSource((id) => this.nodeRow(id));
    this.alerts = new AlertEngine(this.store, this.log);
    this.alerts.on('raised', (a: { kind: string }) => this.metrics.alertsRaised.inc({ kind: a.kind }));
    this.components = new ComponentTracker(this.store, this.alerts, this.cfg.alerts.events.component_failed);

    const rows = this.store.loadNodes();
    const transitions = new Map<string, Transition[]>();
    for (const [node, entries] of this.store.recentTransitions(50)) {
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
    this.registry.restore(
      rows.map((r) => ({ ...r, heartbeat: parseHeartbeat(r.heartbeat) })),
      transitions,
    );
    const { open, rules } = this.alerts.restore();
    this.alerts.syncConfigRules(this.cfg.alerts.rules, Date.now());
    this.components.restore();
    this.deployer.restore(this.store.loadDeployments(this.deployer.keep));
    const restored = {
      file: this.store.file,
      schema: this.store.version,
      nodes: rows.length,
      open_alerts: open,
      stored_rules: rules,
      rules: this.alerts.listRules().length,
      ms: Math.round(performance.now() - t0),
    };
    this.log.info(restored, 'state restored from the database');
    this.history(null, 'manager', 'start', { version: VERSION, ...restored }, `manager ${VERSION} started`);
  }

  /**
   * Applies a reloaded config (SIGHUP): alert rules and event severities, store retention and
   * flush. Other keys need a restart; those that differ are logged.
   * @throws RuleError when a rule is invalid (the running rules stay)
   */
  reload(next: ManagerConfig): void {
    this.alerts.syncConfigRules(next.alerts.rules, Date.now());
    this.components.setSeverity(next.alerts.events.component_failed);
    this.store.reconfigure(next.store);
    const needRestart = Object.keys(next).filter(
      (k) =>
        !['alerts', 'store', 'log'].includes(k) &&
        JSON.stringify(next[k as keyof ManagerConfig]) !== JSON.stringify(this.cfg[k as keyof ManagerConfig]),
    );
    (this as { cfg: ManagerConfig }).cfg = { ...this.cfg, alerts: next.alerts, store: next.store };
    this.log.info(
      { rules: this.alerts.listRules().length, ...(needRestart.length ? { need_restart: needRestart } : {}) },
      needRestart.length
        ? 'config reloaded: alerts and store applied; the other changed keys take effect at the next restart'
        : 'config reloaded',
    );
  }

  /** Opens the HTTP port and starts the query rounds. */
  async start(): Promise<void> {
    this.restore();
    this.store.start();
    await this.telemetry.start();
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
    await this.telemetry.stop();
    if (this.store) {
      this.history(null, 'manager', 'stop', null, `manager ${VERSION} stopped`);
      this.store.close();
    }
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
    this.store.touchNode(node);
    this.telemetry.heartbeat(
      { node, box: h.box_id, slot: h.slot_id, cpu: h.cpu_id, hostname: h.hostname, host_ip: h.host_ip },
      h,
      Date.now(),
    );
    this.metrics.ingested.inc({ url: '/heartbeat' });
    this.metrics.ingest.observe({ url: '/heartbeat' }, (performance.now() - t0) / 1000);
    for (const w of this.reportWatchers) w('/heartbeat', { node, host_ip: h.host_ip });
  }

  /** Stores a validated resource report (called by POST /resource). */
  ingestResource(r: ResourceData): void {
    const t0 = performance.now();
    const node = this.registry.ingestResource(r);
    if (node === null) this.metrics.unmatched.inc();
    else {
      const n = this.registry.nodes.get(node);
      // Alerts and components follow the board a node shows; a conflicting claimant's reports do not count.
      if (n && n.primary === r.host_ip) {
        const at = Date.now();
        this.components.observe(node, r.component, at);
        this.alerts.evaluate(node, r, at);
        const tags = this.tagsOf(n);
        if (tags) this.telemetry.resource(tags, r, at);
      }
    }
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
    if (this.alerts)
      for (const [severity, n] of Object.entries(this.alerts.countOpen())) this.metrics.alertsOpen.set({ severity }, n);
  }

  /**
   * Sends one query now and collects the reports that answer it.
   * @param waitMs how long to collect, ms; default the reply window plus 1 s
   */
  async queryNow(
    url: ReportUrl,
    waitMs?: number,
    who = 'cli',
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
    this.store.addHistory({
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

/** A stored heartbeat, or null when there is none or it cannot be read. */
function parseHeartbeat(text: string | null): HeartbeatData | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as HeartbeatData;
  } catch {
    return null;
  }
}
