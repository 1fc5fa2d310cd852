/**
 * The instance controller (docs/scheduling.md "Instances", "Reconcile", "Across restarts"): holds
 * every business instance's desired state and managed components (put back from the store at
 * start), runs the reconcile step (./reconcile.ts) for each instance every
 * instances.reconcile_interval_ms (and at once after an apply, stop or rm), and carries out its
 * actions: placements through the scheduler, starts and stops through the Deployer, each recorded
 * in the instance's history.
 *
 * Idempotent across restarts: a component's uuid (`<instance>.<group>.<index>.<serial>`) and row
 * are written to the store *before* its start is sent, so a restarted manager knows every
 * component it may have started; one it finds `starting` is adopted when its node reports it (or
 * failed after instances.start_timeout_ms), never started twice.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AllocView, InstanceSpec, InstanceView, Plan, PlanStep } from '../../common/api/instances.js';
import { type Constraint, parseConstraints } from '../../common/constraints.js';
import type { Logger } from '../../common/log.js';
import type { ComponentState, ResourceData } from '../../common/protocol.js';
import { type Deployer, DeployRefused } from '../deploy.js';
import { Refused } from '../refused.js';
import type { NodeRegistry } from '../registry.js';
import { AGENT_INSUFFICIENT_RESOURCES } from '../scheduler/placer.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { Store } from '../store/store.js';
import {
  type Alloc,
  applyVersions,
  changedFields,
  groupHash,
  type Instance,
  type InstanceStatus,
  newState,
  restartOf,
  type SlotRestarts,
  slotKey,
} from './model.js';
import { type Action, type NodeObs, type Observation, reconcileStep } from './reconcile.js';

/** The instances section of the manager config (docs/configuration.md "instances"). */
export interface InstancesConfig {
  reconcile_interval_ms: number;
  reschedule_after_ms: number;
  start_timeout_ms: number;
  max_instances: number;
  max_components: number;
}

/** An apply or plan that cannot be taken: HTTP status, code and message. */
export class InstanceRefused extends Refused {}

/** What the controller uses. */
export interface ControllerDeps {
  store: Store;
  registry: NodeRegistry;
  scheduler: Scheduler;
  deployer: Pick<Deployer, 'start' | 'stop'>;
  log: Logger;
  metrics: Registry | null;
  cfg: InstancesConfig;
  now?: () => number;
}

const EMPTY = new Map<string, ComponentState>();

/** The restart bookkeeping of a slot, created empty when missing. */
function restartsOf(inst: Instance, key: string): SlotRestarts {
  let rs = inst.state.restarts[key];
  if (!rs) {
    rs = { times: [], failed_at: null };
    inst.state.restarts[key] = rs;
  }
  return rs;
}

/** Keeps business instances at their desired state. */
export class InstanceController {
  private readonly instances = new Map<string, Instance>();
  /** Allocs by instance id, then uuid. */
  private readonly allocs = new Map<string, Map<string, Alloc>>();
  private readonly busy = new Set<string>();
  private readonly seen = new Map<string, number>();
  /** Last placement failure explained per slot (recorded once per change). */
  private readonly lastExplain = new Map<string, string>();
  private readonly reportIndex = new WeakMap<ResourceData, Map<string, ComponentState>>();
  private readonly constraintCache = new Map<string, Constraint[]>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly actions: Counter | null;
  private readonly refusedSpecs: Counter | null;
  private cfg: InstancesConfig;

  constructor(private readonly d: ControllerDeps) {
    this.now = d.now ?? Date.now;
    this.cfg = d.cfg;
    this.actions = d.metrics
      ? new Counter({
          name: 'muster_manager_instance_actions_total',
          help: 'Actions the instance reconcile took, by action (start, stop, restart, reschedule, update, stale, failed, lost, placement_failed, ...)',
          labelNames: ['action'],
          registers: [d.metrics],
        })
      : null;
    this.refusedSpecs = d.metrics
      ? new Counter({
          name: 'muster_manager_instance_specs_refused_total',
          help: 'Applies and plans refused beyond their schema, by reason (id_mismatch, bad_constraint, too_many_components, too_many_instances)',
          labelNames: ['reason'],
          registers: [d.metrics],
        })
      : null;
    if (d.metrics) {
      const self = this;
      new Gauge({
        name: 'muster_manager_instances',
        help: 'Business instances, by desired status',
        labelNames: ['status'],
        registers: [d.metrics],
        collect() {
          const c: Record<string, number> = { running: 0, stopped: 0, removing: 0 };
          for (const i of self.instances.values()) c[i.status] = (c[i.status] ?? 0) + 1;
          for (const [status, n] of Object.entries(c)) this.set({ status }, n);
        },
      });
      new Gauge({
        name: 'muster_manager_instance_components',
        help: 'Components managed by instances, by phase',
        labelNames: ['phase'],
        registers: [d.metrics],
        collect() {
          const c: Record<string, number> = { starting: 0, running: 0, failed: 0, lost: 0, stopping: 0 };
          for (const m of self.allocs.values()) for (const a of m.values()) c[a.phase] = (c[a.phase] ?? 0) + 1;
          for (const [phase, n] of Object.entries(c)) this.set({ phase }, n);
        },
      });
    }
  }

  /** Puts back the instances and their components from the store. */
  restore(): { instances: number; components: number } {
    let components = 0;
    for (const r of this.d.store.instances.list()) {
      try {
        this.instances.set(r.id, {
          id: r.id,
          status: r.status as InstanceStatus,
          version: r.version,
          spec: JSON.parse(r.spec) as InstanceSpec,
          state: { ...newState(), ...(JSON.parse(r.state) as object) },
          who: r.who,
          created_at: r.created_at,
          updated_at: r.updated_at,
        });
        this.allocs.set(r.id, new Map());
      } catch (err) {
        this.d.log.error({ instance: r.id, err: (err as Error).message }, 'stored instance unreadable; left alone');
      }
    }
    for (const row of this.d.store.instances.allocs()) {
      const m = this.allocs.get(row.instance_id);
      if (!m) continue;
      try {
        const a = JSON.parse(row.record) as Alloc;
        m.set(a.uuid, a);
        components++;
        // Its resources count until a report shows it (a start sent just before the restart).
        if (a.phase === 'starting') {
          const g = this.instances.get(a.instance_id)?.spec.groups[a.group];
          if (g) this.d.scheduler.reserve(a.node, a.uuid, g.require);
        }
      } catch {
        // unreadable row: left in the database
      }
    }
    return { instances: this.instances.size, components };
  }

  /** Applies new settings (a config reload). */
  reconfigure(cfg: InstancesConfig): void {
    this.cfg = cfg;
  }

  /** Starts the reconcile loop. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.cfg.reconcile_interval_ms);
    this.timer.unref();
  }

  /** Stops the reconcile loop (operations under way finish on their own). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  // Operator actions ------------------------------------------------------------------------------

  /**
   * Checks a spec beyond its schema: the id matches, constraints parse, the total count and the
   * number of instances are within bounds.
   * @throws InstanceRefused 400 (bad spec) or 409 (instances.max_instances reached)
   */
  private check(id: string, spec: InstanceSpec): void {
    if (spec.instance_id !== id) {
      this.refusedSpecs?.inc({ reason: 'id_mismatch' });
      throw new InstanceRefused(
        400,
        'bad_request',
        `instance_id ${spec.instance_id} differs from the path's ${id}`,
        '/instance_id',
      );
    }
    let total = 0;
    for (const [name, g] of Object.entries(spec.groups)) {
      total += g.count;
      try {
        parseConstraints(g.constraints ?? []);
      } catch (err) {
        this.refusedSpecs?.inc({ reason: 'bad_constraint' });
        throw new InstanceRefused(
          400,
          'bad_request',
          `groups.${name}.${(err as Error).message}`,
          `/groups/${name}/constraints`,
        );
      }
    }
    if (total > this.cfg.max_components) {
      this.refusedSpecs?.inc({ reason: 'too_many_components' });
      throw new InstanceRefused(
        400,
        'bad_request',
        `${total} components in all; instances.max_components is ${this.cfg.max_components}`,
        '/groups',
      );
    }
    if (!this.instances.has(id) && this.instances.size >= this.cfg.max_instances) {
      this.refusedSpecs?.inc({ reason: 'too_many_instances' });
      throw new InstanceRefused(
        409,
        'too_many_instances',
        `instances.max_instances (${this.cfg.max_instances}) reached`,
      );
    }
  }

  /**
   * Stores `spec` as the desired state of its instance (created, or a new version when it
   * changed; a stopped instance runs again) and reconciles at once.
   * @returns the instance and the plan that was applied
   * @throws InstanceRefused (see check), 409 while the instance is being removed
   */
  apply(id: string, spec: InstanceSpec, who: string): { instance: InstanceView; plan: Plan } {
    this.check(id, spec);
    const cur = this.instances.get(id);
    if (cur?.status === 'removing') throw new InstanceRefused(409, 'removing', `instance ${id} is being removed`);
    const plan = this.plan(id, spec);
    const now = this.now();
    const same = cur !== undefined && JSON.stringify(cur.spec) === JSON.stringify(spec);
    let inst: Instance;
    if (!cur) {
      inst = { id, status: 'running', version: 1, spec, state: newState(), who, created_at: now, updated_at: now };
      applyVersions(inst.state, spec, 1);
      this.instances.set(id, inst);
      this.allocs.set(id, new Map());
    } else {
      inst = cur;
      if (!same) {
        inst.version++;
        inst.spec = spec;
        applyVersions(inst.state, spec, inst.version);
      }
      inst.status = 'running';
      inst.who = who;
      inst.updated_at = now;
    }
    this.save(inst);
    const what = !cur
      ? 'created'
      : same
        ? cur.status === 'running'
          ? 'unchanged'
          : 'started again'
        : `version ${inst.version}`;
    this.event(inst, 'apply', `applied by ${who}: ${what}`, who);
    this.d.store.addHistory({
      at: now,
      node: null,
      kind: 'operation',
      operation: 'instance.apply',
      args: { instance_id: id, version: inst.version },
      message: `instance ${id} applied (${what})`,
      who,
    });
    this.reconcile(inst);
    return { instance: this.view(inst), plan };
  }

  /**
   * Stops every component of an instance and keeps its spec (apply runs it again).
   * @returns the instance, or undefined when unknown
   */
  stopInstance(id: string, who: string): InstanceView | undefined {
    const inst = this.instances.get(id);
    if (!inst) return undefined;
    if (inst.status === 'running') {
      inst.status = 'stopped';
      inst.updated_at = this.now();
      this.save(inst);
      this.event(inst, 'stop', `stopped by ${who}`, who);
      this.d.store.addHistory({
        at: this.now(),
        node: null,
        kind: 'operation',
        operation: 'instance.stop',
        args: { instance_id: id },
        message: `instance ${id} stopped`,
        who,
      });
    }
    this.reconcile(inst);
    return this.view(inst);
  }

  /**
   * Stops every component of an instance, then forgets it (spec and components; its history
   * stays until retention).
   * @returns the instance (status removing), or undefined when unknown
   */
  remove(id: string, who: string): InstanceView | undefined {
    const inst = this.instances.get(id);
    if (!inst) return undefined;
    const view = () => this.view(inst);
    if (inst.status !== 'removing') {
      inst.status = 'removing';
      inst.updated_at = this.now();
      this.save(inst);
      this.event(inst, 'rm', `removal asked by ${who}`, who);
      this.d.store.addHistory({
        at: this.now(),
        node: null,
        kind: 'operation',
        operation: 'instance.rm',
        args: { instance_id: id },
        message: `instance ${id} removed`,
        who,
      });
    }
    const v = view();
    this.reconcile(inst);
    return v;
  }

  // Reads ----------------------------------------------------------------------------------------

  /** Every instance, by id. */
  list(): InstanceView[] {
    return [...this.instances.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((i) => this.view(i));
  }

  /** One instance, or undefined. */
  get(id: string): InstanceView | undefined {
    const i = this.instances.get(id);
    return i ? this.view(i) : undefined;
  }

  /** Whether the instance exists (its history may outlive it). */
  has(id: string): boolean {
    return this.instances.has(id);
  }

  /**
   * What applying `spec` would do now (nothing is changed): per group, the components started
   * (with the node the scheduler would pick, or why none fits), stopped, updated or unchanged.
   * @throws InstanceRefused as apply does
   */
  plan(id: string, spec: InstanceSpec): Plan {
    this.check(id, spec);
    const cur = this.instances.get(id);
    const mine = [...(this.allocs.get(id)?.values() ?? [])];
    const live = mine.filter((a) => a.phase === 'starting' || a.phase === 'running');
    const steps: PlanStep[] = [];
    const temp: string[] = [];
    const avoid = live.map((a) => a.node);
    let n = 0;
    const preview = (group: string, index: number, action: 'start' | 'update', why: string) => {
      const g = spec.groups[group];
      if (!g) return;
      const uuid = `plan-${id}-${n++}`;
      const p = this.d.scheduler.place(
        {
          require: g.require,
          constraints: this.constraintsOf(g.constraints ?? []),
          scoring: g.scoring,
          distinct: g.distinct,
          avoid: avoid.filter((x) => !live.some((a) => a.group === group && a.index === index && a.node === x)),
        },
        uuid,
      );
      temp.push(uuid);
      if (p.ok) {
        avoid.push(p.node);
        steps.push({
          action,
          group,
          index,
          node: p.node,
          message: `${why}; on ${p.node} (score ${p.score.toFixed(3)})`,
        });
      } else steps.push({ action, group, index, node: null, message: `${why}; cannot be placed: ${p.explain}` });
    };
    try {
      if (!cur) steps.push({ action: 'create', group: '', index: null, node: null, message: `new instance ${id}` });
      for (const [name, g] of Object.entries(spec.groups)) {
        const old = cur?.spec.groups[name];
        const changed = old !== undefined && groupHash(old) !== groupHash(g);
        const fields = old && changed ? changedFields(old, g).join(', ') : '';
        let unchanged = 0;
        for (let i = 0; i < g.count; i++) {
          const has = live.filter((a) => a.group === name && a.index === i);
          if (has.length === 0) preview(name, i, 'start', old ? 'missing' : 'new');
          else if (changed || (cur && has.some((a) => a.version !== (cur.state.versions[name] ?? 0))))
            preview(
              name,
              i,
              'update',
              `replace ${has.map((a) => `${a.uuid} on ${a.node}`).join(', ')} (${fields || 'newer version'})`,
            );
          else if (cur?.status !== 'running') preview(name, i, 'start', 'instance stopped: started again');
          else unchanged++;
        }
        for (const a of live.filter((x) => x.group === name && x.index >= g.count))
          steps.push({
            action: 'stop',
            group: name,
            index: a.index,
            node: a.node,
            message: `${a.uuid}: index beyond count ${g.count}`,
          });
        if (unchanged > 0)
          steps.push({
            action: 'unchanged',
            group: name,
            index: null,
            node: null,
            message: `${unchanged} component(s) unchanged`,
          });
      }
      for (const a of live.filter((x) => !(x.group in spec.groups)))
        steps.push({
          action: 'stop',
          group: a.group,
          index: a.index,
          node: a.node,
          message: `${a.uuid}: group removed`,
        });
    } finally {
      for (const u of temp) this.d.scheduler.release(u);
    }
    const changed = !cur || JSON.stringify(cur.spec) !== JSON.stringify(spec);
    return { instance_id: id, version: cur ? cur.version + (changed ? 1 : 0) : 1, changed, steps };
  }

  /** A page of an instance's history, newest first. */
  history(id: string, limit: number, before?: number) {
    return this.d.store.instances.events(id, limit, before);
  }

  // The loop -------------------------------------------------------------------------------------

  /** One reconcile pass over every instance. Returns the number of actions taken. */
  tick(): number {
    let n = 0;
    for (const inst of [...this.instances.values()]) n += this.reconcile(inst);
    return n;
  }

  /** The component states of `node`'s latest report, indexed once per report. */
  private reportOf(node: string): { states: Map<string, ComponentState>; at: number } {
    const rec = this.d.registry.nodes.get(node);
    const b = rec ? this.d.registry.boardOf(rec) : undefined;
    const r = b?.resource;
    if (!b || !r) return { states: EMPTY, at: 0 };
    let m = this.reportIndex.get(r);
    if (!m) {
      m = new Map();
      for (const c of r.component) m.set(c.uuid, c.state);
      this.reportIndex.set(r, m);
    }
    return { states: m, at: b.resourceAt };
  }

  private observation(): Observation {
    const reg = this.d.registry;
    return {
      node: (id): NodeObs => {
        const rec = reg.nodes.get(id);
        if (!rec) return { state: 'unknown', since: 0, reportAt: 0 };
        return { state: rec.state, since: rec.since, reportAt: this.reportOf(id).at };
      },
      reported: (node, uuid) => this.reportOf(node).states.get(uuid),
      seenAt: (uuid) => this.seen.get(uuid) ?? 0,
      busy: (uuid) => this.busy.has(uuid),
    };
  }

  /** Runs one step for `inst` and carries its actions out. Returns how many were taken. */
  private reconcile(inst: Instance): number {
    const mine = this.allocs.get(inst.id) ?? new Map<string, Alloc>();
    const obs = this.observation();
    for (const a of mine.values()) {
      const r = this.reportOf(a.node);
      if (r.states.has(a.uuid)) this.seen.set(a.uuid, r.at);
    }
    const now = this.now();
    const actions = reconcileStep(inst, [...mine.values()], obs, now, {
      reschedule_after_ms: this.cfg.reschedule_after_ms,
      start_timeout_ms: this.cfg.start_timeout_ms,
    });
    for (const act of actions) {
      try {
        this.execute(inst, mine, act, now);
      } catch (err) {
        this.d.log.error(
          { instance: inst.id, action: act.kind, err: (err as Error).message },
          'reconcile action failed',
        );
      }
    }
    return actions.length;
  }

  private execute(inst: Instance, mine: Map<string, Alloc>, act: Action, now: number): void {
    switch (act.kind) {
      case 'phase': {
        const a = mine.get(act.uuid);
        if (!a) return;
        a.phase = act.phase;
        a.phase_at = now;
        a.reason = act.reason;
        if (act.phase === 'running') a.running_since = now;
        this.saveAlloc(a, now);
        if (act.phase === 'failed') {
          const key = slotKey(a.group, a.index);
          const rs = restartsOf(inst, key);
          rs.failed_at = now;
          this.save(inst);
        }
        if (act.phase === 'running') {
          const key = slotKey(a.group, a.index);
          const rs = inst.state.restarts[key];
          if (rs && rs.failed_at !== null) {
            rs.failed_at = null;
            this.save(inst);
          }
        }
        this.event(inst, act.event, `${a.uuid} on ${a.node}: ${act.reason}`, 'manager', a);
        return;
      }
      case 'start':
        this.startSlot(inst, mine, act, now);
        return;
      case 'stop':
        this.stopAlloc(inst, mine, act.uuid, act.reason, act.event, now);
        return;
      case 'forget': {
        const a = mine.get(act.uuid);
        if (!a) return;
        mine.delete(act.uuid);
        this.seen.delete(act.uuid);
        this.d.store.instances.deleteAlloc(act.uuid);
        this.event(inst, 'removed', `${a.uuid} on ${a.node}: ${act.reason}`, 'manager', a);
        return;
      }
      case 'remove-instance':
        this.instances.delete(inst.id);
        this.allocs.delete(inst.id);
        this.d.store.instances.remove(inst.id);
        for (const k of [...this.lastExplain.keys()]) if (k.startsWith(`${inst.id}/`)) this.lastExplain.delete(k);
        this.event(inst, 'removed', `instance ${inst.id} removed`, 'manager');
        return;
    }
  }

  private constraintsOf(texts: readonly string[]): Constraint[] {
    const key = JSON.stringify(texts);
    let c = this.constraintCache.get(key);
    if (!c) {
      c = parseConstraints(texts);
      if (this.constraintCache.size > 1000) this.constraintCache.clear();
      this.constraintCache.set(key, c);
    }
    return c;
  }

  private startSlot(inst: Instance, mine: Map<string, Alloc>, act: Extract<Action, { kind: 'start' }>, now: number) {
    const g = inst.spec.groups[act.group];
    if (!g) return;
    const key = slotKey(act.group, act.index);
    const avoid: string[] = [];
    for (const a of mine.values()) {
      if (a.phase !== 'starting' && a.phase !== 'running') continue;
      if (a.group === act.group && a.index === act.index) continue;
      avoid.push(a.node);
    }
    const uuid = `${inst.id}.${act.group}.${act.index}.${inst.state.serial + 1}`;
    const p = this.d.scheduler.place(
      {
        require: g.require,
        constraints: this.constraintsOf(g.constraints ?? []),
        scoring: g.scoring,
        distinct: g.distinct,
        avoid,
      },
      uuid,
    );
    const explainKey = `${inst.id}/${key}`;
    if (!p.ok) {
      if (this.lastExplain.get(explainKey) !== p.explain) {
        this.lastExplain.set(explainKey, p.explain);
        this.event(
          inst,
          'placement-failed',
          `${act.group}[${act.index}] (${act.reason}) cannot be placed: ${p.explain}`,
          'manager',
          {
            group: act.group,
            index: act.index,
          },
        );
      }
      return;
    }
    this.lastExplain.delete(explainKey);
    inst.state.serial++;
    if (act.reason === 'restart' || (inst.state.restarts[key]?.failed_at ?? null) !== null) {
      // A start after a failure (a restart, or the retry of a failed replacement) counts as a restart.
      const rs = restartsOf(inst, key);
      const interval = restartOf(g).interval_ms;
      rs.times = [...rs.times.filter((t) => now - t < interval), now];
      rs.failed_at = null;
    }
    this.save(inst);
    const a: Alloc = {
      uuid,
      instance_id: inst.id,
      group: act.group,
      index: act.index,
      node: p.node,
      type: g.type,
      version: inst.state.versions[act.group] ?? inst.version,
      phase: 'starting',
      phase_at: now,
      created_at: now,
      running_since: null,
      reason: act.reason,
      replaces: act.replaces,
    };
    if (!this.saveAlloc(a, now)) {
      // Never send a start the store does not know of: a restart could not account for it.
      this.d.scheduler.release(uuid);
      this.d.log.warn({ instance: inst.id, uuid }, 'start not sent: the database write failed');
      return;
    }
    mine.set(uuid, a);
    const verb = { missing: 'start', restart: 'restart', reschedule: 'reschedule', update: 'update' }[act.reason];
    this.event(
      inst,
      verb,
      `${act.group}[${act.index}] ${uuid} on ${p.node} (score ${p.score.toFixed(3)}, ${p.feasible} of ${p.total} nodes feasible)${act.replaces ? `, replacing ${act.replaces}` : ''}`,
      'manager',
      a,
    );
    this.busy.add(uuid);
    let sub: ReturnType<Deployer['start']>;
    try {
      sub = this.d.deployer.start(
        p.node,
        {
          type: g.type,
          uuid,
          url: g.url,
          file: g.file,
          require: g.require,
          instance_id: inst.id,
          index: act.index,
          placement: { score: Math.round(p.score * 1e4) / 1e4, feasible: p.feasible, total: p.total, attempt: 1 },
        },
        `instance:${inst.id}`,
      );
    } catch (err) {
      this.busy.delete(uuid);
      this.d.scheduler.release(uuid);
      this.startFailed(inst, mine, a, (err as Error).message, false);
      return;
    }
    void sub.done.then((rec) => {
      this.busy.delete(uuid);
      if (rec.result === 0) return;
      this.startFailed(
        inst,
        mine,
        a,
        `start refused (result ${rec.result}): ${rec.message ?? ''}`,
        rec.result === AGENT_INSUFFICIENT_RESOURCES,
      );
    });
  }

  /** A start that did not happen: a refusal for lack of resources is placed again at once, other failures count. */
  private startFailed(inst: Instance, mine: Map<string, Alloc>, a: Alloc, message: string, refused: boolean): void {
    if (!this.instances.has(inst.id) || mine.get(a.uuid) !== a) return;
    const now = this.now();
    if (refused) {
      this.d.scheduler.markRefused(a.node);
      mine.delete(a.uuid);
      this.d.store.instances.deleteAlloc(a.uuid);
      this.event(inst, 'refused', `${a.uuid} on ${a.node}: ${message}; placed again elsewhere`, 'manager', a);
      return;
    }
    a.phase = 'failed';
    a.phase_at = now;
    a.reason = message;
    this.saveAlloc(a, now);
    const rs = restartsOf(inst, slotKey(a.group, a.index));
    rs.failed_at = now;
    this.save(inst);
    this.event(inst, 'failed', `${a.uuid} on ${a.node}: ${message}`, 'manager', a);
  }

  private stopAlloc(
    inst: Instance,
    mine: Map<string, Alloc>,
    uuid: string,
    reason: string,
    event: string,
    now: number,
  ) {
    const a = mine.get(uuid);
    if (!a || this.busy.has(uuid)) return;
    const retry = a.phase === 'stopping';
    a.phase = 'stopping';
    a.phase_at = now;
    a.reason = reason;
    this.saveAlloc(a, now);
    if (!retry || event !== 'stop-retry') this.event(inst, event, `${a.uuid} on ${a.node}: ${reason}`, 'manager', a);
    this.busy.add(uuid);
    let sub: ReturnType<Deployer['stop']>;
    try {
      sub = this.d.deployer.stop(a.node, { uuid, type: a.type }, `instance:${inst.id}`);
    } catch (err) {
      this.busy.delete(uuid);
      if (err instanceof DeployRefused && err.status === 404) {
        mine.delete(uuid);
        this.d.store.instances.deleteAlloc(uuid);
        this.event(inst, 'removed', `${uuid}: node ${a.node} is no longer known`, 'manager', a);
      }
      return;
    }
    void sub.done.then((rec) => {
      this.busy.delete(uuid);
      if (rec.result !== 0 || mine.get(uuid) !== a) return;
      mine.delete(uuid);
      this.seen.delete(uuid);
      this.d.store.instances.deleteAlloc(uuid);
      this.event(inst, 'removed', `${uuid} stopped on ${a.node}`, 'manager', a);
    });
  }

  // Persistence and views -----------------------------------------------------------------------

  private save(inst: Instance): void {
    this.d.store.instances.put({
      id: inst.id,
      status: inst.status,
      version: inst.version,
      spec: JSON.stringify(inst.spec),
      state: JSON.stringify(inst.state),
      who: inst.who,
      created_at: inst.created_at,
      updated_at: inst.updated_at,
    });
  }

  private saveAlloc(a: Alloc, now: number): boolean {
    return this.d.store.instances.saveAlloc(a.uuid, a.instance_id, a, now);
  }

  private event(
    inst: Instance,
    action: string,
    message: string,
    who: string,
    a?: Partial<Pick<Alloc, 'group' | 'index' | 'node' | 'uuid'>>,
  ): void {
    this.actions?.inc({ action: action.replace(/-/g, '_') });
    this.d.store.instances.event({
      instance_id: inst.id,
      at: this.now(),
      action,
      group: a?.group ?? null,
      index: a?.index ?? null,
      node: a?.node ?? null,
      uuid: a?.uuid ?? null,
      message,
      who,
    });
    this.d.log.info({ instance: inst.id, action, uuid: a?.uuid, node: a?.node }, message);
  }

  private view(inst: Instance): InstanceView {
    const mine = [...(this.allocs.get(inst.id)?.values() ?? [])];
    const groups: InstanceView['groups'] = {};
    for (const [name, g] of Object.entries(inst.spec.groups)) {
      const v = inst.state.versions[name] ?? inst.version;
      const of = mine.filter((a) => a.group === name);
      const n = (p: string) => of.filter((a) => a.phase === p).length;
      groups[name] = {
        count: inst.status === 'running' ? g.count : 0,
        running: n('running'),
        starting: n('starting'),
        failed: n('failed'),
        lost: n('lost'),
        stopping: n('stopping'),
        outdated: of.filter((a) => (a.phase === 'running' || a.phase === 'starting') && a.version !== v).length,
      };
    }
    const components: AllocView[] = mine
      .sort((a, b) =>
        a.group < b.group ? -1 : a.group > b.group ? 1 : a.index - b.index || a.created_at - b.created_at,
      )
      .map((a) => ({
        uuid: a.uuid,
        group: a.group,
        index: a.index,
        node: a.node,
        version: a.version,
        phase: a.phase,
        reported: this.reportOf(a.node).states.get(a.uuid) ?? null,
        created_at: a.created_at,
        running_since: a.running_since,
        reason: a.reason,
      }));
    return {
      instance_id: inst.id,
      status: inst.status,
      version: inst.version,
      spec: inst.spec,
      created_at: inst.created_at,
      updated_at: inst.updated_at,
      who: inst.who,
      groups,
      components,
    };
  }
}
