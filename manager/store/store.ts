/**
 * The manager's memory across restarts (docs/operations.md#across-restarts,
 * docs/configuration.md#data_dir-and-store-the-managers-database): one SQLite database (Node's
 * built-in `node:sqlite`) under `data_dir`, in WAL mode, with the versioned schema of
 * ./migrations.ts. It holds the nodes, the history, the deployments, the components the manager
 * drove, the alerts and the alert rules.
 *
 * `Store` is a thin composition: ./core.ts opens the database and runs what is shared (migrations,
 * the write guard, transactions, the batched flush, timers, metrics); one module per table group
 * owns its statements and row types (./nodes.ts, ./history.ts, ./alerts.ts, ./deployments.ts);
 * ./retention.ts runs the tables' retention rules. The methods below keep the API callers use and
 * delegate; the table objects are also readonly properties (`store.nodes`, `store.history`, ...).
 * How to add a table: see the header of ./core.ts.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../../common/log.js';
import type { AlertView, HistoryEntry, Page } from '../alerts/types.js';
import type { DeploymentRecord } from '../deploy.js';
import { type AlertFilter, AlertsTable, type NewAlert, type OpenAlert, RulesTable, type StoredRule } from './alerts.js';
import { type StoreConfig, StoreCore } from './core.js';
import { type ComponentRow, ComponentsTable, DeploymentsTable } from './deployments.js';
import { type HistoryFilter, HistoryTable, type NewHistory } from './history.js';
import { InstancesTable } from './instances.js';
import { LinkTokensTable } from './links.js';
import { type NodeRow, NodesTable } from './nodes.js';
import { RelaysTable } from './relays.js';
import { Retention } from './retention.js';
import { SessionsTable } from './sessions.js';
import { CommandsTable, TasksTable } from './tasks.js';
import { TokensTable } from './tokens.js';
import { UsersTable } from './users.js';

export {
  type AlertFilter,
  type AlertRow,
  alertView,
  type NewAlert,
  type OpenAlert,
  type StoredRule,
} from './alerts.js';
export { type StoreConfig, StoreError } from './core.js';
export type { ComponentRow } from './deployments.js';
export type { HistoryFilter, NewHistory } from './history.js';
export type { AllocRow, InstanceRow, NewInstanceEvent } from './instances.js';
export type { LinkTokenRow } from './links.js';
export type { NodeRow, StoredLink } from './nodes.js';
export type { SessionRow } from './sessions.js';
export type { CommandRow, TaskFileRow } from './tasks.js';
export type { TokenRow } from './tokens.js';
export type { UserRow } from './users.js';

/** store.touch_interval_ms when the config leaves it out, ms (docs/configuration.md "store"). */
export const TOUCH_INTERVAL_DEFAULT_MS = 60_000;

/** The manager database. Create with `Store.open`. */
export class Store {
  /** Nodes: identity, heartbeat, liveness state, last seen. */
  readonly nodes: NodesTable;
  /** History entries. */
  readonly history: HistoryTable;
  /** Alerts, open and resolved. */
  readonly alerts: AlertsTable;
  /** Alert rules. */
  readonly rules: RulesTable;
  /** Deployment records. */
  readonly deployments: DeploymentsTable;
  /** Components the manager started or saw reported. */
  readonly components: ComponentsTable;
  /** Users: name, role, password hash (docs/operations.md "Users and access"). */
  readonly users: UsersTable;
  /** Login sessions, by token prefix. */
  readonly sessions: SessionsTable;
  /** API tokens, by prefix. */
  readonly tokens: TokensTable;
  /** Business instances: specs, managed components, their history (docs/scheduling.md "Instances"). */
  readonly instances: InstancesTable;
  /** Tasks, their per-node results and fetched files (docs/exec.md). */
  readonly tasks: TasksTable;
  /** The command-set catalog (docs/exec.md "Command-set catalog"). */
  readonly commands: CommandsTable;
  /** Tokens of the WebSocket node link (docs/links.md "Link tokens"). */
  readonly linkTokens: LinkTokensTable;
  /** SSH relays and the servers behind them (docs/links.md "The SSH relay"). */
  readonly relays: RelaysTable;
  /** Retention of every table that declares rules. */
  readonly retention: Retention;

  private constructor(private readonly core: StoreCore) {
    // One line per table module; the order is the flush order and the retention order.
    this.nodes = core.register(
      new NodesTable(core, () => core.cfg.touch_interval_ms ?? TOUCH_INTERVAL_DEFAULT_MS, core.now),
    );
    this.history = core.register(new HistoryTable(core));
    this.alerts = core.register(new AlertsTable(core));
    this.rules = core.register(new RulesTable(core));
    this.deployments = core.register(new DeploymentsTable(core));
    this.components = core.register(new ComponentsTable(core));
    this.users = core.register(new UsersTable(core));
    this.sessions = core.register(new SessionsTable(core));
    this.tokens = core.register(new TokensTable(core));
    this.instances = core.register(new InstancesTable(core));
    this.tasks = core.register(new TasksTable(core));
    this.commands = core.register(new CommandsTable(core));
    this.linkTokens = core.register(new LinkTokensTable(core));
    this.relays = core.register(new RelaysTable(core));
    this.retention = new Retention(core);
  }

  /**
   * Opens (creating when missing) the database `cfg.file` under `dataDir` and brings its schema
   * up to date. A file that is not a database or is corrupt is moved aside to
   * `<file>.corrupt-<ms>` (logged as an error; nothing is overwritten) and a new one is created.
   * `now` is the clock of retention (ms since the epoch).
   * @throws StoreError when the directory cannot be created or written, or the schema is newer than this muster
   */
  static open(dataDir: string, cfg: StoreConfig, log: Logger, registry: Registry, now: () => number = Date.now): Store {
    return new Store(StoreCore.open(dataDir, cfg, log, registry, now));
  }

  /** The database file, absolute. */
  get file(): string {
    return this.core.file;
  }

  /** Schema version of the open database. */
  get version(): number {
    return this.core.version;
  }

  /** Writes waiting in the write queue (see `StoreCore.enqueue`). */
  get queueDepth(): number {
    return this.core.queueDepth;
  }

  /** Writes everything queued now (reads do it themselves). */
  drain(): void {
    this.core.drain();
  }

  /** Starts the batched flush and the retention timer. */
  start(): void {
    this.core.start();
  }

  /** Applies new retention and flush settings (a config reload). */
  reconfigure(cfg: StoreConfig): void {
    this.core.reconfigure(cfg);
  }

  /** Writes what is dirty and closes the database. */
  close(): void {
    this.core.close();
  }

  // Nodes ---------------------------------------------------------------------------------------

  /** Every node, as last written. */
  loadNodes(): NodeRow[] {
    const rows = this.nodes.load();
    this.nodes.restored(rows.map((r) => r.id));
    return rows;
  }

  /** Sets where the rows of dirty nodes come from (the registry), read at each flush. */
  setNodeSource(fn: (id: string) => NodeRow | undefined): void {
    this.nodes.setSource(fn);
  }

  /** Marks a node to be written at the next flush (O(1): called for every heartbeat). */
  touchNode(id: string): void {
    this.nodes.touch(id);
  }

  /** Deletes a node's row (DELETE /api/v1/nodes/:id). */
  removeNode(id: string): void {
    this.nodes.remove(id);
  }

  /** Writes a node through the write queue (a transition; written within store.write_queue.delay_ms). */
  saveNode(row: NodeRow): void {
    this.nodes.save(row);
  }

  /** Writes the queued writes, then dirty nodes and open alerts' latest values in one transaction. */
  flush(): void {
    this.core.flush();
  }

  // History -------------------------------------------------------------------------------------

  /** Appends a history entry through the write queue. Returns its id (0 when dropped or the write failed). */
  addHistory(e: NewHistory): number {
    return this.history.add(e);
  }

  /** Sets the result of the operation entry whose ref is `ref` (a deployment that finished). */
  finishHistory(ref: string, result: number, message: string): void {
    this.history.finish(ref, result, message);
  }

  /** A page of history, newest first. */
  listHistory(f: HistoryFilter): Page<HistoryEntry> {
    return this.history.list(f);
  }

  /** The latest `n` state transitions of every node, oldest first, by node. */
  recentTransitions(n: number): Map<string, HistoryEntry[]> {
    return this.history.recentTransitions(n);
  }

  // Deployments and components ------------------------------------------------------------------

  /** Writes a deployment record now (created, or finished). */
  saveDeployment(rec: DeploymentRecord): void {
    this.deployments.save(rec);
  }

  /** The newest `limit` deployments, oldest first. */
  loadDeployments(limit: number): DeploymentRecord[] {
    return this.deployments.load(limit);
  }

  /** Writes a component's latest known state through the write queue. */
  saveComponent(c: ComponentRow): void {
    this.components.save(c);
  }

  /** Every component known, by node then uuid. */
  loadComponents(): ComponentRow[] {
    return this.components.load();
  }

  // Alerts --------------------------------------------------------------------------------------

  /** Opens an alert through the write queue. Returns its id (0 when dropped or the write failed: the alert lives in memory only). */
  openAlert(a: NewAlert): number {
    return this.alerts.open(a);
  }

  /** Records an open alert's latest value and time at the next flush. */
  touchAlert(id: number, value: number | null, lastSeen: number, message: string): void {
    this.alerts.touch(id, value, lastSeen, message);
  }

  /** Resolves an alert through the write queue. */
  resolveAlert(id: number, at: number, message: string, value?: number | null): void {
    this.alerts.resolve(id, at, message, value);
  }

  /** Open alerts, oldest first. */
  loadOpenAlerts(): OpenAlert[] {
    return this.alerts.loadOpen();
  }

  /** One alert by id. */
  getAlert(id: number): AlertView | undefined {
    return this.alerts.get(id);
  }

  /** A page of alerts, newest first. */
  listAlerts(f: AlertFilter): Page<AlertView> {
    return this.alerts.list(f);
  }

  // Rules ---------------------------------------------------------------------------------------

  /** Every stored rule. */
  loadRules(): StoredRule[] {
    return this.rules.load();
  }

  /** Writes a rule now. */
  putRule(rule: StoredRule): void {
    this.rules.put(rule);
  }

  /** Deletes a rule now. Returns whether it existed. */
  deleteRule(name: string): boolean {
    return this.rules.delete(name);
  }

  // Retention -----------------------------------------------------------------------------------

  /**
   * Deletes rows past the retention (store.retention.days, store.retention.max_rows) in steps of
   * at most cleanup_batch_rows, yielding to the event loop between steps. Open alerts,
   * deployments under way and running components are never deleted. Returns rows deleted by table.
   */
  async cleanup(): Promise<Record<string, number>> {
    return this.retention.run();
  }
}
