/**
 * The shapes of alerts, alert rules and the operation history as the REST API returns them
 * (GET /api/v1/alerts, /api/v1/alert-rules, /api/v1/history) and the CLI reads them. Times are
 * ISO-8601 strings; values keep the metric's unit (%, °C, V, A, W, bytes).
 */
import type { RuleOp, Severity } from '../config.js';

export type { RuleOp, Severity };

/** What raised an alert. */
export type AlertKind = 'node_offline' | 'identity_conflict' | 'component_failed' | 'threshold' | 'agent';

/** One alert, open or resolved (seed 000 查看报警记录). */
export interface AlertView {
  /** Row id; ids grow with time, pages go by id. */
  id: number;
  kind: AlertKind;
  /** Rule name for `threshold`, the agent's alert name for `agent`, else the kind. */
  rule: string;
  severity: Severity;
  /** Node id `box-slot-cpu`; null when the alert is not about one node. */
  node: string | null;
  /** Metric of a threshold rule (e.g. `disk.usage_percent`), or what the agent named; else null. */
  metric: string | null;
  /** Which one of several: a disk's mount point, a GPU index, a component uuid, an interface; else null. */
  instance: string | null;
  /** The latest value seen while open (the metric's unit); null for event alerts. */
  value: number | null;
  threshold: number | null;
  op: RuleOp | null;
  message: string;
  /** `manager` or `agent` (POST /alert). */
  source: 'manager' | 'agent';
  state: 'open' | 'resolved';
  first_seen: string;
  last_seen: string;
  resolved_at: string | null;
}

/** A threshold rule as the API shows it. */
export interface RuleView {
  name: string;
  metric: string;
  op: RuleOp;
  threshold: number;
  /** Hold time, ms. */
  for_ms: number;
  severity: Severity;
  enabled: boolean;
  /** `config` rules come from the manager's YAML and change there; `api` rules were PUT. */
  source: 'config' | 'api';
  updated_at: string;
}

/** What a history entry records. */
export type HistoryKind = 'state' | 'operation' | 'component' | 'manager';

/** One line of the operation and state history (seed 000 查看节点运行记录). */
export interface HistoryEntry {
  id: number;
  at: string;
  /** Node id, or null for what concerns no single node (a query to all, a rule change). */
  node: string | null;
  kind: HistoryKind;
  /**
   * What happened: `online`/`suspect`/`offline` (state), `deploy.start`, `deploy.stop`, `query`,
   * `alert-rule.put`, `alert-rule.delete` (operation), the new component state (component),
   * `start`/`stop` (manager).
   */
  operation: string;
  /** Arguments: the deploy request, the query, the rule; the transition's from/reason; or null. */
  args: Record<string, unknown> | null;
  /** The result code (deploy: the agent's result or a negative manager code; query: answers); null when none or under way. */
  result: number | null;
  message: string | null;
  /** Who ran it: the x-muster-user header, `cli`, or `manager` for what the manager did itself. */
  who: string;
  /** A related record: the deployment id. */
  ref: string | null;
}

/** A page of a list, newest first. `next` is the `before` value of the next (older) page, null at the end. */
export interface Page<T> {
  items: T[];
  next: number | null;
}
