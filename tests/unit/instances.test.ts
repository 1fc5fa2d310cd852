/**
 * Business instances (docs/scheduling.md "Reconcile", "Restart policy", "Rolling updates",
 * "Across restarts"): the pure reconcile step against recorded observations (missing, extra,
 * failed, offline, returned, update, stopped), then the controller on a real store, registry,
 * scheduler and Deployer, with an in-memory agent whose components are fed back as resource
 * reports: a whole life (place, fail and restart, board lost and rescheduled, board back and its
 * stale copy stopped, rolling update one at a time), and a manager restart that starts no duplicate.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import type { InstanceSpec } from '../../common/api/instances.js';
import type { Component, ComponentState, DeployRequestData } from '../../common/protocol.js';
import type { AgentClient, AgentTarget, DeployOutcome } from '../../manager/agents/client.js';
import { Deployer } from '../../manager/deploy.js';
import { InstanceController } from '../../manager/instances/controller.js';
import { type Alloc, applyVersions, type Instance, newState } from '../../manager/instances/model.js';
import { type Action, type NodeObs, reconcileStep } from '../../manager/instances/reconcile.js';
import { createMetricsRegistry } from '../../manager/metrics.js';
import { NodeRegistry } from '../../manager/registry.js';
import { wireScheduler } from '../../manager/scheduler/placer.js';
import { Scheduler } from '../../manager/scheduler/scheduler.js';
import { Store } from '../../manager/store/store.js';
import { component, heartbeatData, resourceData } from '../../testkit/bodies.js';
import { TEST_INSTANCES_CONFIG, TEST_SCHEDULER_CONFIG, TEST_STORE_CONFIG } from '../../testkit/server.js';

const log = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const CFG = { reschedule_after_ms: 5000, start_timeout_ms: 30_000 };

function group(over: Partial<InstanceSpec['groups'][string]> = {}): InstanceSpec['groups'][string] {
  return {
    count: 2,
    type: 'bar',
    url: 'http://files/b',
    file: 'app-1.bar',
    require: { cpu: 1, memory: 64 * MiB, gpu: 0 },
    restart: { attempts: 2, interval_ms: 60_000, delay_ms: 1000, backoff: 2, max_delay_ms: 10_000 },
    update: { max_parallel: 1, min_healthy_ms: 1000 },
    ...over,
  };
}

function instance(g = group(), status: Instance['status'] = 'running'): Instance {
  const spec: InstanceSpec = { instance_id: 'app', groups: { web: g } };
  const state = newState();
  applyVersions(state, spec, 1);
  return { id: 'app', status, version: 1, spec, state, who: 't', created_at: 0, updated_at: 0 };
}

function alloc(index: number, over: Partial<Alloc> = {}): Alloc {
  return {
    uuid: `app.web.${index}.${index + 1}`,
    instance_id: 'app',
    group: 'web',
    index,
    node: `1-${index + 1}-0`,
    type: 'bar',
    version: 1,
    phase: 'running',
    phase_at: 0,
    created_at: 0,
    running_since: 0,
    reason: null,
    replaces: null,
    ...over,
  };
}

/** A recorded observation: node states and the components each node's latest report lists. */
function world(
  nodes: Record<string, Partial<NodeObs>>,
  reports: Record<string, Record<string, ComponentState>>,
  seen: Record<string, number> = {},
  busy: string[] = [],
) {
  return {
    node: (id: string): NodeObs => ({ state: 'online', since: 0, reportAt: 100, ...(nodes[id] ?? {}) }),
    reported: (node: string, uuid: string) => reports[node]?.[uuid],
    seenAt: (uuid: string) => seen[uuid] ?? 0,
    busy: (uuid: string) => busy.includes(uuid),
  };
}

const kinds = (acts: Action[]) =>
  acts.map((a) => {
    if (a.kind === 'start') return `start ${a.group}[${a.index}] ${a.reason}${a.replaces ? ` ${a.replaces}` : ''}`;
    if (a.kind === 'phase') return `${a.uuid} → ${a.phase}`;
    if (a.kind === 'stop') return `stop ${a.uuid} (${a.event})`;
    if (a.kind === 'forget') return `forget ${a.uuid}`;
    return a.kind;
  });

describe('reconcile step against recorded reports', () => {
  it('missing: starts every slot', () => {
    assert.deepEqual(kinds(reconcileStep(instance(), [], world({}, {}), 1000, CFG)), [
      'start web[0] missing',
      'start web[1] missing',
    ]);
  });

  it('starting → running when reported RUNNING; PENDING waits; not reported past start_timeout fails', () => {
    const a = alloc(0, { phase: 'starting', running_since: null });
    const b = alloc(1, { phase: 'starting', running_since: null });
    const w = world({}, { '1-1-0': { [a.uuid]: 'RUNNING' }, '1-2-0': { [b.uuid]: 'PENDING' } });
    assert.deepEqual(kinds(reconcileStep(instance(), [a, b], w, 1000, CFG)), [`${a.uuid} → running`]);
    const late = world({}, { '1-1-0': { [a.uuid]: 'RUNNING' } });
    assert.deepEqual(kinds(reconcileStep(instance(), [a, b], late, 40_000, CFG)), [
      `${a.uuid} → running`,
      `${b.uuid} → failed`,
      `stop ${b.uuid} (stop-component)`,
    ]);
  });

  it('extra: a component beyond count, or of a removed group, is stopped', () => {
    const inst = instance(group({ count: 1 }));
    const a = alloc(0);
    const b = alloc(1);
    const c = alloc(0, { group: 'old', uuid: 'app.old.0.9' });
    const w = world({}, { '1-1-0': { [a.uuid]: 'RUNNING', [c.uuid]: 'RUNNING' }, '1-2-0': { [b.uuid]: 'RUNNING' } });
    assert.deepEqual(kinds(reconcileStep(inst, [a, b, c], w, 1000, CFG)), [
      `stop ${b.uuid} (stop-component)`,
      `stop ${c.uuid} (stop-component)`,
    ]);
  });

  it('failed: cleaned up at once, restarted after the delay, backing off, then waits out the interval', () => {
    const inst = instance(group({ count: 1 }));
    const a = alloc(0);
    const w = world({}, { '1-1-0': { [a.uuid]: 'FAILED' } });
    assert.deepEqual(kinds(reconcileStep(inst, [a], w, 1000, CFG)), [
      `${a.uuid} → failed`,
      `stop ${a.uuid} (stop-component)`,
    ]);
    // The controller recorded the failure time; the slot is empty now.
    inst.state.restarts['web/0'] = { times: [], failed_at: 1000 };
    assert.deepEqual(kinds(reconcileStep(inst, [], world({}, {}), 1500, CFG)), [], 'delay_ms 1000 not over');
    assert.deepEqual(kinds(reconcileStep(inst, [], world({}, {}), 2000, CFG)), ['start web[0] restart']);
    inst.state.restarts['web/0'] = { times: [2000], failed_at: 3000 };
    assert.deepEqual(kinds(reconcileStep(inst, [], world({}, {}), 4500, CFG)), [], 'backoff: 2000 ms now');
    assert.deepEqual(kinds(reconcileStep(inst, [], world({}, {}), 5000, CFG)), ['start web[0] restart']);
    inst.state.restarts['web/0'] = { times: [2000, 5000], failed_at: 6000 };
    assert.deepEqual(kinds(reconcileStep(inst, [], world({}, {}), 50_000, CFG)), [], '2 attempts in the interval');
    assert.deepEqual(kinds(reconcileStep(inst, [], world({}, {}), 62_001, CFG)), ['start web[0] restart']);
  });

  it('a running component missing from a newer report has failed; from an older one, not yet', () => {
    const inst = instance(group({ count: 1 }));
    const a = alloc(0);
    const w = world({ '1-1-0': { reportAt: 500 } }, {}, { [a.uuid]: 400 });
    assert.deepEqual(kinds(reconcileStep(inst, [a], w, 1000, CFG)).slice(0, 1), [`${a.uuid} → failed`]);
    const old = world({ '1-1-0': { reportAt: 400 } }, {}, { [a.uuid]: 400 });
    assert.deepEqual(kinds(reconcileStep(inst, [a], old, 1000, CFG)), []);
  });

  it('offline: nothing within reschedule_after, then lost and started elsewhere', () => {
    const inst = instance(group({ count: 1, reschedule_after_ms: 5000 }));
    const a = alloc(0);
    const w = world({ '1-1-0': { state: 'offline', since: 10_000 } }, {});
    assert.deepEqual(kinds(reconcileStep(inst, [a], w, 14_000, CFG)), []);
    assert.deepEqual(kinds(reconcileStep(inst, [a], w, 15_000, CFG)), [
      `${a.uuid} → lost`,
      `start web[0] reschedule ${a.uuid}`,
    ]);
    // A suspect node is never rescheduled from.
    const s = world({ '1-1-0': { state: 'suspect', since: 0 } }, {});
    assert.deepEqual(kinds(reconcileStep(inst, [a], s, 99_000, CFG)), []);
  });

  it('returned: the stale copy is stopped; one not running any more is forgotten', () => {
    const inst = instance(group({ count: 1 }));
    const lost = alloc(0, { phase: 'lost' });
    const repl = alloc(0, { uuid: 'app.web.0.7', node: '1-3-0' });
    const back = world(
      { '1-1-0': { state: 'online', since: 20_000, reportAt: 21_000 } },
      {
        '1-1-0': { [lost.uuid]: 'RUNNING' },
        '1-3-0': { [repl.uuid]: 'RUNNING' },
      },
    );
    assert.deepEqual(kinds(reconcileStep(inst, [lost, repl], back, 22_000, CFG)), [`stop ${lost.uuid} (stale)`]);
    const noReportYet = world({ '1-1-0': { state: 'online', since: 20_000, reportAt: 19_000 } }, {});
    assert.deepEqual(kinds(reconcileStep(inst, [lost, repl], noReportYet, 22_000, CFG)), []);
    const empty = world(
      { '1-1-0': { state: 'online', since: 20_000, reportAt: 21_000 } },
      {
        '1-3-0': { [repl.uuid]: 'RUNNING' },
      },
    );
    assert.deepEqual(kinds(reconcileStep(inst, [lost, repl], empty, 22_000, CFG)), [`forget ${lost.uuid}`]);
  });

  it('update: max_parallel slots at a time, the old stopped once the new is RUNNING for min_healthy_ms', () => {
    const inst = instance(group({ count: 3 }));
    inst.state.versions.web = 2;
    const olds = [alloc(0), alloc(1), alloc(2)];
    const w = world({}, {});
    assert.deepEqual(kinds(reconcileStep(inst, olds, w, 1000, CFG)), [`start web[0] update ${olds[0]?.uuid}`]);
    const fresh = alloc(0, { uuid: 'app.web.0.9', version: 2, phase: 'starting', running_since: null, node: '1-4-0' });
    assert.deepEqual(kinds(reconcileStep(inst, [...olds, fresh], w, 1500, CFG)), [], 'one at a time');
    const up = { ...fresh, phase: 'running' as const, running_since: 2000 };
    assert.deepEqual(kinds(reconcileStep(inst, [...olds, up], w, 2500, CFG)), [], 'not healthy long enough');
    assert.deepEqual(kinds(reconcileStep(inst, [...olds, up], w, 3000, CFG)), [`stop ${olds[0]?.uuid} (replaced)`]);
    // With the old one gone, the next slot goes.
    assert.deepEqual(kinds(reconcileStep(inst, [olds[1] as Alloc, olds[2] as Alloc, up], w, 3100, CFG)), [
      `start web[1] update ${olds[1]?.uuid}`,
    ]);
    inst.spec.groups.web = group({ count: 3, update: { max_parallel: 2, min_healthy_ms: 0 } });
    assert.deepEqual(kinds(reconcileStep(inst, olds, w, 1000, CFG)), [
      `start web[0] update ${olds[0]?.uuid}`,
      `start web[1] update ${olds[1]?.uuid}`,
    ]);
  });

  it('a replacement that fails is retried per the restart policy, holding the update back', () => {
    const inst = instance(group({ count: 2 }));
    inst.state.versions.web = 2;
    const olds = [alloc(0), alloc(1)];
    // web[0]'s new component failed at 1000 (the controller recorded it); the old one still runs.
    inst.state.restarts['web/0'] = { times: [], failed_at: 1000 };
    const w = world({}, {});
    assert.deepEqual(kinds(reconcileStep(inst, olds, w, 1500, CFG)), [], 'delay not over; web[1] waits too');
    assert.deepEqual(kinds(reconcileStep(inst, olds, w, 2000, CFG)), [`start web[0] update ${olds[0]?.uuid}`]);
    inst.state.restarts['web/0'] = { times: [500, 2000], failed_at: 3000 };
    assert.deepEqual(kinds(reconcileStep(inst, olds, w, 50_000, CFG)), [], 'attempts spent: the update waits');
  });

  it('stopped and removing instances stop everything; a removal ends when nothing is left', () => {
    const a = alloc(0);
    assert.deepEqual(kinds(reconcileStep(instance(group(), 'stopped'), [a], world({}, {}), 1, CFG)), [
      `stop ${a.uuid} (stop-component)`,
    ]);
    assert.deepEqual(kinds(reconcileStep(instance(group(), 'removing'), [], world({}, {}), 1, CFG)), [
      'remove-instance',
    ]);
  });

  it('a removal lets go of components on unreachable nodes; a forgotten node forgets its lost ones', () => {
    const a = alloc(0, { phase: 'lost' });
    const b = alloc(1);
    const w = world(
      { '1-1-0': { state: 'offline', since: 0 }, '1-2-0': { state: 'online' } },
      { '1-2-0': { [b.uuid]: 'RUNNING' } },
    );
    assert.deepEqual(kinds(reconcileStep(instance(group(), 'removing'), [a, b], w, 1, CFG)), [
      `stop ${b.uuid} (stop-component)`,
    ]);
    assert.deepEqual(kinds(reconcileStep(instance(group(), 'removing'), [a], w, 1, CFG)), [
      `forget ${a.uuid}`,
      'remove-instance',
    ]);
    const gone = world({ '1-1-0': { state: 'unknown' } }, {});
    assert.deepEqual(kinds(reconcileStep(instance(group({ count: 0 })), [a], gone, 1, CFG)), [`forget ${a.uuid}`]);
  });

  it('an operation under way is left alone', () => {
    const a = alloc(0, { phase: 'starting' });
    const w = world({ '1-1-0': { state: 'offline', since: 0 } }, {}, {}, [a.uuid]);
    assert.deepEqual(kinds(reconcileStep(instance(group({ count: 1 })), [a], w, 99_000, CFG)), []);
  });
});

/** Agents in memory: each node's components, started and stopped by deploy calls, reported by `report()`. */
class FakeAgents implements AgentClient {
  readonly comps = new Map<string, Map<string, Component>>();
  starts: string[] = [];
  stops: string[] = [];
  async deploy(target: AgentTarget, req: DeployRequestData): Promise<DeployOutcome> {
    let m = this.comps.get(target.node);
    if (!m) {
      m = new Map();
      this.comps.set(target.node, m);
    }
    if (req.mode === 'start') {
      this.starts.push(`${req.uuid}@${target.node}`);
      m.set(
        req.uuid,
        component({
          uuid: req.uuid,
          instance_id: req.instance_id ?? '',
          index: req.index ?? 0,
          state: 'RUNNING',
          config: { name: req.file ?? '', id: '100' },
        }),
      );
    } else {
      this.stops.push(`${req.uuid}@${target.node}`);
      const c = m.get(req.uuid);
      if (c) c.state = 'STOPPED';
    }
    return { ok: true, reply: { ...req, id: 100, result: 0, message: 'ok' } as never };
  }
  async progress() {
    return null;
  }
  running(): string[] {
    const out: string[] = [];
    for (const [node, m] of this.comps)
      for (const c of m.values()) if (c.state === 'RUNNING') out.push(`${c.uuid}@${node}`);
    return out.sort();
  }
}

describe('instance controller on a real store, registry, scheduler and deployer', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function setup(dir = mkdtempSync(path.join(os.tmpdir(), 'muster-inst-')), agents = new FakeAgents()) {
    dirs.push(dir);
    const clock = { now: 1_000_000 };
    const now = () => clock.now;
    const metrics = createMetricsRegistry();
    const store = Store.open(dir, TEST_STORE_CONFIG, log, metrics);
    const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 }, now);
    const nodes = ['1-1-0', '1-2-0', '1-3-0', '1-4-0'];
    const ipOf = (id: string) => `10.7.0.${Number(id.split('-')[1])}`;
    for (const id of nodes) {
      const [, slot] = id.split('-');
      registry.ingestHeartbeat(heartbeatData({ box_id: 1, slot_id: Number(slot), host_ip: ipOf(id) }));
    }
    const deployer = new Deployer({ progress_poll_ms: 10_000 }, registry, agents, log);
    const scheduler = new Scheduler(registry, TEST_SCHEDULER_CONFIG, null, now);
    wireScheduler(deployer, scheduler);
    const ctl = new InstanceController({
      store,
      registry,
      scheduler,
      deployer,
      log,
      metrics,
      cfg: { ...TEST_INSTANCES_CONFIG, reschedule_after_ms: 5000 },
      now,
    });
    ctl.restore();
    /** Every node that is up reports its components (as a /resource round does). */
    const report = (down: string[] = []) => {
      for (const id of nodes) {
        if (down.includes(id)) continue;
        const comps = [...(agents.comps.get(id)?.values() ?? [])];
        const held = comps.filter((c) => c.state === 'RUNNING').length;
        registry.ingestResource(
          resourceData({
            host_ip: ipOf(id),
            cpu: { core_count: 4, core_allocated: held },
            memory: { total: 8 * 1024 * MiB },
            component: comps,
          }),
        );
      }
    };
    const settle = () => new Promise((r) => setTimeout(r, 20));
    /** One round: reports, a reconcile pass, the agent calls answered. */
    const round = async (down: string[] = [], ms = 1000) => {
      clock.now += ms;
      report(down);
      ctl.tick();
      await settle();
    };
    return { store, registry, ctl, agents, clock, round, report, dir, ipOf };
  }

  const spec = (over: Partial<InstanceSpec['groups'][string]> = {}): InstanceSpec => ({
    instance_id: 'radar',
    groups: { track: group({ count: 3, distinct: 'node', ...over }) },
  });

  it('places, restarts, reschedules, stops the stale copy and rolls an update out, one at a time', async () => {
    const t = setup();
    const { ctl, agents, round } = t;
    const applied = ctl.apply('radar', spec(), 'ops');
    assert.equal(applied.plan.steps.filter((s) => s.action === 'start').length, 3);
    await round();
    await round();
    let v = ctl.get('radar');
    assert.equal(v?.groups.track?.running, 3);
    const nodes = new Set(v?.components.map((c) => c.node));
    assert.equal(nodes.size, 3, 'distinct: node');

    // Failed: the agent reports it FAILED → stopped, restarted after delay_ms.
    const victim = v?.components[0];
    assert.ok(victim);
    const rec = agents.comps.get(victim.node)?.get(victim.uuid);
    assert.ok(rec);
    rec.state = 'FAILED';
    await round([], 100);
    v = ctl.get('radar');
    assert.equal(v?.components.find((c) => c.uuid === victim.uuid)?.phase, undefined, 'stopped and forgotten');
    assert.equal(v?.groups.track?.running, 2);
    await round([], 1000);
    await round([], 100);
    v = ctl.get('radar');
    assert.equal(v?.groups.track?.running, 3, 'restarted');

    // Offline past reschedule_after: started on the fourth board.
    const lostNode = v?.components[1]?.node as string;
    const lostUuid = v?.components[1]?.uuid as string;
    const n = t.registry.nodes.get(lostNode);
    assert.ok(n);
    n.state = 'offline';
    n.since = t.clock.now;
    await round([lostNode], 2000);
    assert.equal(ctl.get('radar')?.components.find((c) => c.uuid === lostUuid)?.phase, 'running');
    await round([lostNode], 4000);
    await round([lostNode], 100);
    v = ctl.get('radar');
    assert.equal(v?.components.find((c) => c.uuid === lostUuid)?.phase, 'lost');
    assert.equal(v?.groups.track?.running, 3);
    const spare = ['1-1-0', '1-2-0', '1-3-0', '1-4-0'].find((x) => !nodes.has(x));
    assert.ok(
      v?.components.some((c) => c.node === spare && c.phase === 'running'),
      'rescheduled to the spare board',
    );

    // The board returns, still running its copy: stopped, count holds.
    t.registry.ingestHeartbeat(
      heartbeatData({ box_id: 1, slot_id: Number(lostNode.split('-')[1]), host_ip: t.ipOf(lostNode) }),
    );
    await round([], 100);
    await round([], 100);
    v = ctl.get('radar');
    assert.equal(
      v?.components.find((c) => c.uuid === lostUuid),
      undefined,
    );
    assert.ok(agents.stops.includes(`${lostUuid}@${lostNode}`));
    assert.equal(agents.running().length, 3);

    // Rolling update: never more than count + max_parallel running, each old stopped after its new one.
    const before = new Set(agents.running());
    ctl.apply('radar', spec({ file: 'app-2.bar' }), 'ops');
    let peak = 0;
    for (let i = 0; i < 30 && ctl.get('radar')?.groups.track?.outdated !== 0; i++) {
      await round([], 600);
      peak = Math.max(peak, agents.running().length);
      assert.ok(agents.running().length >= 3, 'never fewer than count running');
    }
    await round([], 600);
    v = ctl.get('radar');
    assert.equal(v?.version, 2);
    assert.equal(v?.groups.track?.outdated, 0);
    assert.equal(v?.groups.track?.running, 3);
    assert.equal(peak, 4, 'max_parallel 1: one extra at a time');
    assert.equal(agents.running().filter((r) => before.has(r)).length, 0, 'all three replaced');
    const hist = ctl.history('radar', 200).items.map((e) => e.action);
    for (const a of [
      'apply',
      'start',
      'running',
      'failed',
      'restart',
      'lost',
      'reschedule',
      'stale',
      'update',
      'replaced',
      'removed',
    ])
      assert.ok(hist.includes(a), `history has ${a}: ${hist.join(',')}`);
  });

  it('a restarted manager starts no duplicate of what it already started', async () => {
    const t = setup();
    t.ctl.apply('radar', spec(), 'ops');
    await t.round();
    const started = t.agents.starts.length;
    assert.equal(started, 3);
    t.ctl.stop();
    t.store.close();
    // The same database and agents, a new manager; the components are in the reports.
    const again = setup(t.dir, t.agents);
    await again.round();
    await again.round();
    assert.equal(t.agents.starts.length, 3, 'no new start');
    assert.equal(again.ctl.get('radar')?.groups.track?.running, 3);
  });

  it('stop and rm stop every component; rm forgets the instance', async () => {
    const t = setup();
    t.ctl.apply('radar', spec({ count: 2 }), 'ops');
    await t.round();
    await t.round();
    t.ctl.stopInstance('radar', 'ops');
    await t.round();
    assert.equal(t.agents.running().length, 0);
    assert.equal(t.ctl.get('radar')?.status, 'stopped');
    t.ctl.apply('radar', spec({ count: 2 }), 'ops');
    await t.round();
    assert.equal(t.agents.running().length, 2);
    t.ctl.remove('radar', 'ops');
    await t.round();
    await t.round();
    assert.equal(t.agents.running().length, 0);
    assert.equal(t.ctl.get('radar'), undefined);
    assert.ok(t.ctl.history('radar', 10).items.some((e) => e.action === 'removed'));
  });

  it('instances.max_instances and max_components bound applies (409, 400), counted', async () => {
    const t = setup();
    const mk = (id: string, count = 1): InstanceSpec => ({ instance_id: id, groups: { g: group({ count }) } });
    const small = new InstanceController({
      store: t.store,
      registry: t.registry,
      scheduler: new Scheduler(t.registry, TEST_SCHEDULER_CONFIG),
      deployer: { start: () => assert.fail('no start'), stop: () => assert.fail('no stop') },
      log,
      metrics: null,
      cfg: { ...TEST_INSTANCES_CONFIG, max_instances: 1, max_components: 4 },
    });
    small.plan('one', mk('one'));
    assert.throws(() => small.plan('one', mk('one', 5)), /5 components in all; instances.max_components is 4/);
    assert.throws(() => small.plan('one', mk('two')), /differs from the path/);
    assert.throws(
      () => small.plan('one', { instance_id: 'one', groups: { g: group({ constraints: ['x = 1'] }) } }),
      /groups\.g\.constraints\[0\]: unknown attribute/,
    );
    small.apply('one', mk('one', 0), 'ops');
    assert.throws(
      () => small.plan('two', mk('two')),
      (e: Error & { status?: number }) => e.status === 409,
    );
  });

  it('hostile agents that refuse every start: one try per board, then each is passed over', async () => {
    class Refusing extends FakeAgents {
      override async deploy(target: AgentTarget, req: DeployRequestData): Promise<DeployOutcome> {
        this.starts.push(`${req.uuid}@${target.node}`);
        return { ok: true, reply: { ...req, result: 2, message: 'insufficient resources: cpu' } as never };
      }
    }
    const agents = new Refusing();
    const t = setup(undefined, agents);
    t.ctl.apply('radar', spec({ count: 1 }), 'ops');
    for (let i = 0; i < 6; i++) await t.round([], 500);
    assert.equal(agents.starts.length, 4, `one start per board: ${agents.starts.join(' ')}`);
    assert.equal(new Set(agents.starts.map((s) => s.split('@')[1])).size, 4);
    const ev = t.ctl.history('radar', 100).items;
    assert.equal(ev.filter((e) => e.action === 'refused').length, 4);
    assert.ok(
      ev.some((e) => e.action === 'placement-failed' && /4 nodes: 4 refused by its agent/.test(e.message)),
      ev.map((e) => e.message).join('\n'),
    );
  });

  it('a placement that cannot fit is recorded once with its explanation', async () => {
    const t = setup();
    t.ctl.apply(
      'big',
      { instance_id: 'big', groups: { x: group({ count: 1, require: { cpu: 64, memory: 1, gpu: 0 } }) } },
      'ops',
    );
    await t.round();
    await t.round();
    await t.round();
    // Applied before any report (4 no resource report), then each round: recorded when it changes only.
    const ev = t.ctl.history('big', 10).items.filter((e) => e.action === 'placement-failed');
    assert.equal(ev.length, 2);
    assert.match(ev[0]?.message ?? '', /x\[0\] \(missing\) cannot be placed: 4 nodes: 4 exhausted on cpu/);
    assert.match(ev[1]?.message ?? '', /4 nodes: 4 no resource report/);
    const plan = t.ctl.plan('big', {
      instance_id: 'big',
      groups: { x: group({ count: 1, require: { cpu: 64, memory: 1, gpu: 0 } }) },
    });
    assert.equal(plan.changed, false);
    assert.match(
      plan.steps.find((s) => s.action === 'start')?.message ?? '',
      /cannot be placed: 4 nodes: 4 exhausted on cpu/,
    );
  });
});
