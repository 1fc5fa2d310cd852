/**
 * Alerts (docs/operations.md "Alerts and history"): raised by the manager for events (a node offline, an
 * identity conflict, a component FAILED), by threshold rules on any reported metric, and by
 * agents (POST /alert). Each alert is about one thing, its *key* (`kind|node|rule|instance`): at
 * most one alert per key is open; while it is open, new occurrences update its value and last
 * seen time; it is resolved when the condition clears, and a later occurrence opens a new one.
 *
 * Threshold rules have a hold time (`for_ms`): the condition must hold on every report for
 * `for_ms` before the alert fires, so that one sample does not; the first report on which it no
 * longer holds resolves it (and resets a pending hold). A reading the board does not have (null)
 * never satisfies a condition.
 *
 * Open alerts live in memory and in the store (manager/store/store.ts), so that they are the same
 * after a restart; pending holds are memory only (a hold starts again after a restart).
 *
 * Open alerts per kind are bounded (alerts.max_open_per_kind, docs/configuration.md "alerts"):
 * beyond the bound a new alert of that kind is not opened but counted
 * (`muster_manager_alerts_dropped_total{kind}`, a `dropped` event) and logged at a rate limit, and
 * one summary alert of the kind (node null, rule `alerts_capped`) says how many were not opened; it
 * is resolved once the kind's open alerts are below the bound again.
 */
import { EventEmitter } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RuleOp } from '../../common/api/alerts.js';
import { RULE_NAME_PATTERN } from '../../common/api/alerts.js';
import { SEVERITIES, type Severity } from '../../common/api/primitives.js';
import type { LinkMetrics } from '../../common/link.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import type { ResourceData } from '../../common/protocol.js';
import type { AlertRuleConfig } from '../config.js';
import type { OpenAlert, Store, StoredRule } from '../store/store.js';
import { anyMetricValue, isMetric, metricCatalog, metricNames, readMetric, type Test } from './catalog.js';
import type { AlertKind, RuleView } from './types.js';

const RULE_NAME_RE = new RegExp(RULE_NAME_PATTERN);

/** The rule of the summary alert a kind gets when alerts.max_open_per_kind bites (its node is null). */
export const CAPPED_RULE = 'alerts_capped';

/** Whether `a` is the summary alert of a capped kind (not counted against the bound). */
const isCapSummary = (a: Pick<OpenAlert, 'node' | 'rule'>): boolean => a.node === null && a.rule === CAPPED_RULE;

/** A threshold rule in force. */
export type Rule = StoredRule;

/** What to raise: an event alert, a rule firing, or an agent's alert. Times are ms since the epoch. */
export interface AlertSpec {
  kind: AlertKind;
  /** Rule name, agent alert name, or the kind for built-in events. */
  rule: string;
  severity: Severity;
  node: string | null;
  metric?: string | null;
  instance?: string | null;
  value?: number | null;
  threshold?: number | null;
  op?: RuleOp | null;
  message: string;
  source?: 'manager' | 'agent';
  /** When the condition began (a rule's hold start); defaults to `at`. */
  since?: number;
}

/** A rule refused: `field` names the bad field (`/metric`, `/name`), `message` says why. */
export class RuleError extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'RuleError';
  }
}

/** The key of an alert: what it is about. */
export const alertKey = (kind: AlertKind, node: string | null, rule: string, instance: string | null = null): string =>
  `${kind}|${node ?? ''}|${rule}|${instance ?? ''}`;

const TEST: Record<RuleOp, Test> = {
  '>': (v, t) => v > t,
  '>=': (v, t) => v >= t,
  '<': (v, t) => v < t,
  '<=': (v, t) => v <= t,
};

/** Formats a value with its unit for a message: `91.5 °C`, `95 %`. */
function withUnit(metric: string, v: number): string {
  const unit = metricCatalog().find((m) => m.name === metric)?.unit ?? '';
  const n = Number.isInteger(v) ? String(v) : v.toFixed(1);
  return unit ? `${n} ${unit}` : n;
}

/**
 * Checks a rule written by an operator (config or API).
 * @throws RuleError naming the field: an unknown metric lists the known ones
 */
export function checkRule(name: string, r: AlertRuleConfig): void {
  if (!RULE_NAME_RE.test(name)) {
    throw new RuleError(
      '/name',
      `rule name ${JSON.stringify(name)}: use lower case letters, digits and _ (at most 64)`,
    );
  }
  if (!isMetric(r.metric)) {
    throw new RuleError('/metric', `unknown metric ${JSON.stringify(r.metric)}; known: ${metricNames().join(', ')}`);
  }
  if (!Number.isFinite(r.threshold)) throw new RuleError('/threshold', 'threshold must be a finite number');
}

/**
 * The alert engine. Events: `raised` (OpenAlert), `resolved` ({ alert: OpenAlert, at, message }).
 */
export class AlertEngine extends EventEmitter {
  private rules = new Map<string, Rule>();
  /** Open alerts by key. */
  private readonly open = new Map<string, OpenAlert>();
  /** Keys of open threshold alerts per node, to resolve instances that are no longer reported. */
  private readonly openByNode = new Map<string, Set<string>>();
  /** Holds under way, per node: key → when the condition began. */
  private readonly pending = new Map<string, Map<string, { since: number }>>();
  /** Open alerts per kind, summary alerts left out (the count alerts.max_open_per_kind bounds). */
  private readonly openPerKind = new Map<AlertKind, number>();
  /** Alerts not opened per kind since its summary alert opened. */
  private readonly droppedSince = new Map<AlertKind, number>();
  private readonly rl: RateLimitedLog;

  /**
   * @param maxOpenPerKind most open alerts of one kind (alerts.max_open_per_kind); a new alert of a
   *   kind that has this many open is not opened (raise returns null) but counted
   */
  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private maxOpenPerKind = Number.POSITIVE_INFINITY,
  ) {
    super();
    this.rl = new RateLimitedLog(log);
  }

  /** Changes the bound on open alerts per kind (a config reload); open alerts beyond it stay. */
  setMaxOpenPerKind(n: number): void {
    this.maxOpenPerKind = n;
  }

  /** Loads the open alerts and the rules from the store (at start). */
  restore(): { open: number; rules: number } {
    for (const a of this.store.loadOpenAlerts()) {
      this.index(a);
      if (isCapSummary(a)) this.droppedSince.set(a.kind, a.value ?? 0);
    }
    for (const kind of [...this.droppedSince.keys()]) this.uncap(kind, Date.now());
    for (const r of this.store.loadRules()) {
      if (isMetric(r.metric)) this.rules.set(r.name, r);
      else this.log.error({ rule: r.name, metric: r.metric }, 'stored alert rule names an unknown metric; ignored');
    }
    return { open: this.open.size, rules: this.rules.size };
  }

  private index(a: OpenAlert): void {
    this.open.set(a.key, a);
    if (!isCapSummary(a)) this.openPerKind.set(a.kind, (this.openPerKind.get(a.kind) ?? 0) + 1);
    if (a.kind === 'threshold' && a.node !== null) {
      let keys = this.openByNode.get(a.node);
      if (!keys) {
        keys = new Set();
        this.openByNode.set(a.node, keys);
      }
      keys.add(a.key);
    }
  }

  private unindex(a: OpenAlert): void {
    this.open.delete(a.key);
    if (a.node !== null) this.openByNode.get(a.node)?.delete(a.key);
    if (!isCapSummary(a)) this.openPerKind.set(a.kind, (this.openPerKind.get(a.kind) ?? 1) - 1);
  }

  /** Open alerts of `kind`, its summary alert left out. */
  openOf(kind: AlertKind): number {
    return this.openPerKind.get(kind) ?? 0;
  }

  /**
   * A new alert of `spec.kind` while the kind holds maxOpenPerKind open: counted (`dropped`
   * event), logged at a rate limit, and the kind's summary alert opened or updated.
   */
  private drop(spec: AlertSpec, at: number): void {
    const n = (this.droppedSince.get(spec.kind) ?? 0) + 1;
    this.droppedSince.set(spec.kind, n);
    this.emit('dropped', { kind: spec.kind, rule: spec.rule, node: spec.node });
    this.rl.warn(
      `alerts-capped:${spec.kind}`,
      { kind: spec.kind, rule: spec.rule, node: spec.node, max_open_per_kind: this.maxOpenPerKind },
      `alert not opened: ${this.maxOpenPerKind} ${spec.kind} alerts are open (alerts.max_open_per_kind)`,
    );
    const key = alertKey(spec.kind, null, CAPPED_RULE);
    const message = `${n} new ${spec.kind} alert${n === 1 ? '' : 's'} not opened: ${this.maxOpenPerKind} are open (alerts.max_open_per_kind)`;
    const had = this.open.get(key);
    if (had) {
      had.value = n;
      had.last_seen = at;
      had.message = message;
      this.store.touchAlert(had.id, n, at, message);
      return;
    }
    this.openAlert({ kind: spec.kind, rule: CAPPED_RULE, severity: 'warning', node: null, value: n, message }, key, at);
  }

  /** Resolves the summary alert of `kind` once its open alerts are below the bound again. */
  private uncap(kind: AlertKind, at: number): void {
    if (this.openOf(kind) >= this.maxOpenPerKind) return;
    const summary = this.open.get(alertKey(kind, null, CAPPED_RULE));
    if (!summary) return;
    const n = this.droppedSince.get(kind) ?? 0;
    this.droppedSince.delete(kind);
    this.resolveAlert(
      summary,
      at,
      `fewer than ${this.maxOpenPerKind} ${kind} alerts are open again; ${n} were not opened meanwhile`,
    );
  }

  // ------------------------------------------------------------------------------------------
  // Rules
  // ------------------------------------------------------------------------------------------

  /** Rules in force, by name. */
  listRules(): RuleView[] {
    return [...this.rules.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => ({
        name: r.name,
        metric: r.metric,
        op: r.op,
        threshold: r.threshold,
        for_ms: r.for_ms,
        severity: r.severity,
        enabled: r.enabled,
        source: r.source,
        updated_at: new Date(r.updated_at).toISOString(),
      }));
  }

  /** One rule in force. */
  getRule(name: string): RuleView | undefined {
    return this.listRules().find((r) => r.name === name);
  }

  /**
   * Makes the config file's rules the `config` rules in force (at start and on a reload): new and
   * changed ones are written, config rules no longer in the file are removed; a rule PUT through
   * the API under a name the file now uses is replaced (logged).
   * @throws RuleError when a rule is invalid (the config loader checks them first)
   */
  syncConfigRules(cfgRules: Record<string, AlertRuleConfig>, at: number): void {
    for (const [name, r] of Object.entries(cfgRules)) checkRule(name, r);
    for (const [name, r] of Object.entries(cfgRules)) {
      const rule = toRule(name, r, 'config', at);
      const had = this.rules.get(name);
      if (had && sameRule(had, rule)) continue;
      if (had?.source === 'api')
        this.log.warn(
          { rule: name },
          'the config file now defines this alert rule: it replaces the one set through the API',
        );
      this.store.putRule(rule);
      this.setRule(rule);
    }
    for (const r of [...this.rules.values()]) {
      if (r.source === 'config' && !(r.name in cfgRules)) {
        this.store.deleteRule(r.name);
        this.dropRule(r.name, at, 'rule removed from the config file');
      }
    }
  }

  /**
   * Adds or replaces a rule through the API.
   * @throws RuleError 400 for a bad rule, 409 when the config file defines the rule
   */
  putRule(name: string, body: AlertRuleConfig, at: number): RuleView {
    checkRule(name, body);
    if (this.rules.get(name)?.source === 'config') {
      throw new RuleError(
        '/name',
        `rule ${name} is defined in the manager's config file (alerts.rules.${name}); change it there`,
        409,
      );
    }
    const rule = toRule(name, body, 'api', at);
    this.store.putRule(rule);
    this.setRule(rule);
    return this.getRule(name) as RuleView;
  }

  /**
   * Deletes an API rule; its open alerts are resolved.
   * @throws RuleError 404 when there is no such rule, 409 when the config file defines it
   */
  deleteRule(name: string, at: number): void {
    const r = this.rules.get(name);
    if (!r) throw new RuleError('/name', `no alert rule ${name}`, 404);
    if (r.source === 'config') {
      throw new RuleError(
        '/name',
        `rule ${name} is defined in the manager's config file (alerts.rules.${name}); remove or disable it there`,
        409,
      );
    }
    this.store.deleteRule(name);
    this.dropRule(name, at, 'rule deleted');
  }

  private setRule(rule: Rule): void {
    const before = this.rules.get(rule.name);
    this.rules.set(rule.name, rule);
    // A changed condition starts its holds again; open alerts are re-checked by the next report.
    if (before && !sameRule(before, rule)) this.clearPending(rule.name);
    if (!rule.enabled) this.resolveRule(rule.name, rule.updated_at, 'rule disabled');
  }

  private dropRule(name: string, at: number, why: string): void {
    this.rules.delete(name);
    this.clearPending(name);
    this.resolveRule(name, at, why);
  }

  private clearPending(rule: string): void {
    for (const holds of this.pending.values())
      for (const k of [...holds.keys()]) if (k.split('|')[2] === rule) holds.delete(k);
  }

  /**
   * Ends the holds under way on `node` (it stopped reporting: a hold must see the condition on
   * every report, and a gap is not seen). Open alerts stay as they are until a report clears them.
   */
  forgetHolds(node: string): void {
    this.pending.delete(node);
  }

  private resolveRule(rule: string, at: number, why: string): void {
    for (const a of [...this.open.values()])
      if (a.kind === 'threshold' && a.rule === rule) this.resolveAlert(a, at, why);
  }

  // ------------------------------------------------------------------------------------------
  // Raising and resolving
  // ------------------------------------------------------------------------------------------

  /** Open alerts, oldest first. */
  openAlerts(): OpenAlert[] {
    return [...this.open.values()].sort((a, b) => a.id - b.id);
  }

  /** Open alerts about `node`, in no order (node removal; no sort, so removing many nodes stays linear). */
  openOn(node: string): OpenAlert[] {
    const out: OpenAlert[] = [];
    for (const a of this.open.values()) if (a.node === node) out.push(a);
    return out;
  }

  /** Count of open alerts by severity. */
  countOpen(): Record<Severity, number> {
    const c = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
    for (const a of this.open.values()) c[a.severity]++;
    return c;
  }

  /**
   * Opens an alert for `spec`, or updates the open one with the same key (value, last seen,
   * message).
   * @returns the open alert, or null when it is new and its kind already has
   *   alerts.max_open_per_kind open (it is counted, not opened)
   */
  raise(spec: AlertSpec, at: number): OpenAlert | null {
    const key = alertKey(spec.kind, spec.node, spec.rule, spec.instance ?? null);
    const had = this.open.get(key);
    if (had) {
      had.value = spec.value ?? had.value;
      had.last_seen = at;
      had.message = spec.message;
      this.store.touchAlert(had.id, had.value, at, had.message);
      return had;
    }
    if (this.openOf(spec.kind) >= this.maxOpenPerKind) {
      this.drop(spec, at);
      return null;
    }
    return this.openAlert(spec, key, at);
  }

  private openAlert(spec: AlertSpec, key: string, at: number): OpenAlert {
    const a: OpenAlert = {
      id: 0,
      key,
      kind: spec.kind,
      rule: spec.rule,
      severity: spec.severity,
      node: spec.node,
      metric: spec.metric ?? null,
      instance: spec.instance ?? null,
      value: spec.value ?? null,
      threshold: spec.threshold ?? null,
      op: spec.op ?? null,
      message: spec.message,
      source: spec.source ?? 'manager',
      first_seen: spec.since ?? at,
      last_seen: at,
    };
    a.id = this.store.openAlert(a);
    this.index(a);
    const { key: _k, ...fields } = a;
    this.log[a.severity === 'info' ? 'info' : 'warn']({ alert: fields }, `alert raised: ${a.message}`);
    this.emit('raised', a);
    return a;
  }

  /** Whether the alert of `key` (alertKey) is open. */
  isOpen(key: string): boolean {
    return this.open.has(key);
  }

  /** Resolves the open alert with this key, if any. Returns whether one was open. */
  resolve(key: string, at: number, message: string): boolean {
    const a = this.open.get(key);
    if (!a) return false;
    this.resolveAlert(a, at, message);
    return true;
  }

  private resolveAlert(a: OpenAlert, at: number, message: string, value?: number | null): void {
    this.unindex(a);
    if (value !== undefined) a.value = value;
    this.store.resolveAlert(a.id, at, message, value);
    this.log.info(
      { alert: { id: a.id, kind: a.kind, rule: a.rule, node: a.node, instance: a.instance } },
      `alert resolved: ${message}`,
    );
    this.emit('resolved', { alert: a, at, message });
    if (!isCapSummary(a)) this.uncap(a.kind, at);
  }

  /**
   * Evaluates the rules on the metrics of a link-specification node's heartbeat (docs/links.md
   * "Linked nodes", docs/operations.md "Alerts"), read as the figures of a resource report:
   * `cpu_usage` → cpu.usage_percent, `load_average` → cpu.load_avg_1m, `memory_usage` →
   * memory.usage_percent, `disk_usage` → disk.usage_percent of instance `/`. A rule on a figure
   * the link does not carry (temperatures, GPUs, …) has no reading and never fires here. Only for
   * nodes that send no resource report (a muster agent's full reports are evaluated instead).
   * @param m the heartbeat's `metrics` (%, load average)
   * @param at arrival time, ms
   */
  evaluateLinked(node: string, m: LinkMetrics, at: number): void {
    const r = {
      resource: {
        cpu: { usage_percent: m.cpu_usage, load_avg_1m: m.load_average },
        memory: { usage_percent: m.memory_usage },
        disk: m.disk_usage === undefined ? [] : [{ mount_point: '/', usage_percent: m.disk_usage }],
        gpu: [],
        network: [],
      },
      component: [],
    } as unknown as ResourceData;
    this.evaluate(node, r, at);
  }

  /** Whether a threshold alert is open on `node`. */
  private openThreshold(node: string): boolean {
    const keys = this.openByNode.get(node);
    if (keys === undefined) return false;
    for (const k of keys) if (k.startsWith('threshold|')) return true;
    return false;
  }

  /** Whether any figure of `r` is past an enabled rule's threshold. */
  private anyHolding(r: ResourceData): boolean {
    for (const rule of this.rules.values()) {
      if (!rule.enabled) continue;
      if (anyMetricValue(rule.metric, r, TEST[rule.op], rule.threshold)) return true;
    }
    return false;
  }

  /**
   * Evaluates every enabled rule on a node's resource report (arrived at `at`, ms): holds start,
   * alerts fire once their hold is over, and open alerts whose condition no longer holds (or
   * whose instance is no longer reported) are resolved.
   */
  evaluate(node: string, r: ResourceData, at: number): void {
    // Most reports change nothing: no hold under way, no threshold alert open on the node, no
    // figure past a threshold. They cost one pass over the figures, no key built.
    const held = this.pending.get(node);
    if ((held === undefined || held.size === 0) && !this.openThreshold(node) && !this.anyHolding(r)) return;
    const seen = new Set<string>();
    let holds = this.pending.get(node);
    if (!holds) {
      holds = new Map();
      this.pending.set(node, holds);
    }
    for (const rule of this.rules.values()) {
      if (!rule.enabled) continue;
      for (const s of readMetric(rule.metric, r)) {
        const key = alertKey('threshold', node, rule.name, s.instance);
        seen.add(key);
        const holding = s.value !== null && TEST[rule.op](s.value, rule.threshold);
        const open = this.open.get(key);
        // Messages are built only when an alert opens, changes or resolves: most reports do neither.
        const what = () => `${rule.metric}${s.instance !== null ? ` of ${s.instance}` : ''} on ${node}`;
        if (!holding) {
          holds.delete(key);
          if (open) {
            const now = s.value === null ? 'has no reading' : `is ${withUnit(rule.metric, s.value)}`;
            this.resolveAlert(open, at, `${what()} ${now}: ${rule.op} ${rule.threshold} no longer holds`, s.value);
          }
          continue;
        }
        const v = s.value as number;
        const message = () =>
          `${what()} is ${withUnit(rule.metric, v)} (${rule.op} ${withUnit(rule.metric, rule.threshold)})`;
        if (open) {
          this.raise(
            {
              kind: 'threshold',
              rule: rule.name,
              severity: rule.severity,
              node,
              instance: s.instance,
              value: v,
              message: open.value === v ? open.message : message(),
            },
            at,
          );
          continue;
        }
        let p = holds.get(key);
        if (!p) {
          p = { since: at };
          holds.set(key, p);
        }
        if (at - p.since >= rule.for_ms) {
          holds.delete(key);
          this.raise(
            {
              kind: 'threshold',
              rule: rule.name,
              severity: rule.severity,
              node,
              metric: rule.metric,
              instance: s.instance,
              value: v,
              threshold: rule.threshold,
              op: rule.op,
              message: rule.for_ms > 0 ? `${message()} for ${Math.round((at - p.since) / 1000)} s` : message(),
              since: p.since,
            },
            at,
          );
        }
      }
    }
    // Instances gone from the report (a disk unmounted, a component removed): their holds and
    // their alerts end.
    for (const key of [...holds.keys()]) if (!seen.has(key)) holds.delete(key);
    for (const key of [...(this.openByNode.get(node) ?? [])]) {
      if (seen.has(key)) continue;
      const a = this.open.get(key);
      if (a && this.rules.has(a.rule))
        this.resolveAlert(a, at, `${a.metric} of ${a.instance ?? node} is no longer reported by ${node}`);
    }
  }
}

/**
 * The alert metrics (docs/operations.md "Prometheus metrics") in the daemon's Prometheus registry:
 * `muster_manager_alerts_open{severity}`, read from `engine` at each scrape,
 * `muster_manager_alerts_raised_total{kind}`, counted on its `raised` events, and
 * `muster_manager_alerts_dropped_total{kind}`, counted on its `dropped` events (alerts.max_open_per_kind).
 */
export function alertMetrics(prom: Registry, engine: AlertEngine): void {
  new Gauge({
    name: 'muster_manager_alerts_open',
    help: 'Open alerts, by severity',
    labelNames: ['severity'],
    registers: [prom],
    collect() {
      for (const [severity, n] of Object.entries(engine.countOpen())) this.set({ severity }, n);
    },
  });
  const raised = new Counter({
    name: 'muster_manager_alerts_raised_total',
    help: 'Alerts opened, by kind',
    labelNames: ['kind'],
    registers: [prom],
  });
  engine.on('raised', (a: { kind: string }) => raised.inc({ kind: a.kind }));
  const dropped = new Counter({
    name: 'muster_manager_alerts_dropped_total',
    help: 'New alerts not opened because their kind had alerts.max_open_per_kind open, by kind',
    labelNames: ['kind'],
    registers: [prom],
  });
  engine.on('dropped', (d: { kind: string }) => dropped.inc({ kind: d.kind }));
}

function toRule(name: string, r: AlertRuleConfig, source: 'config' | 'api', at: number): Rule {
  return {
    name,
    source,
    metric: r.metric,
    op: r.op,
    threshold: r.threshold,
    for_ms: r.for_ms ?? 0,
    severity: r.severity ?? 'warning',
    enabled: r.enabled ?? true,
    updated_at: at,
  };
}

function sameRule(a: Rule, b: Rule): boolean {
  return (
    a.source === b.source &&
    a.metric === b.metric &&
    a.op === b.op &&
    a.threshold === b.threshold &&
    a.for_ms === b.for_ms &&
    a.severity === b.severity &&
    a.enabled === b.enabled
  );
}
