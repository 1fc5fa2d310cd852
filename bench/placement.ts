/**
 * Placement and reconcile cost (docs/scheduling.md), in-process on the manager's real modules:
 *
 * 1. Placement decisions per second with 5,000 boards in the registry (heartbeats and resource
 *    reports of varied boards: 4–16 cores partly allocated, 4–32 GiB, CPU and GPU board types), on
 *    one core (this process's CPU time): a bin-pack decision with no constraint, one with two
 *    constraints and distinct, and a spread decision; each decision reserves and is then released,
 *    so the registry stays the same. Baseline (same run): one bare pass over the registry's nodes
 *    reading each node's state and report (the floor any decision over every node pays).
 *    Target ≥ 5,000 decisions/s.
 * 2. The reconcile of 1,000 instances (one group of 3 components each, 3,000 components on the
 *    5,000 boards) in steady state: the CPU of one pass of the controller over every instance
 *    when every component is reported RUNNING (nothing to do). Target ≤ 1 s of CPU.
 *   node --import tsx bench/placement.ts [--boards 5000] [--instances 1000] [--decisions 20000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { DeploymentRecord } from '../common/api/deploy.js';
import { parseConstraints } from '../common/constraints.js';
import type { Component } from '../common/protocol.js';
import type { Deployer, StartInput, StopInput } from '../manager/deploy.js';
import { InstanceController } from '../manager/instances/controller.js';
import { NodeRegistry } from '../manager/registry.js';
import { Scheduler } from '../manager/scheduler/scheduler.js';
import { Store } from '../manager/store/store.js';
import { component, heartbeatData, resourceData } from '../testkit/bodies.js';
import { mulberry32 } from '../testkit/fleet.js';
import { fx, isMain, progress } from './common.js';

const log = pino({ level: 'silent' });
const GiB = 1024 ** 3;

/** What {@link runPlacement} measured. */
export interface PlacementResult {
  boards: number;
  /** Decisions per CPU second, by kind. */
  rates: { binpack: number; constrained: number; spread: number };
  /** Bare passes over the registry per CPU second. */
  bareScans: number;
  /** µs of CPU per bin-pack decision. */
  usPerDecision: number;
  instances: number;
  components: number;
  /** CPU of one steady-state reconcile pass, ms (median of the passes measured). */
  reconcileMs: number;
  /** Actions the measured passes took (0 in a steady state). */
  reconcileActions: number;
  /** Placement failures seen while the instances were placed. */
  placementFailures: number;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Builds a registry of `n` varied boards with a resource report each (components: none). */
function buildRegistry(n: number, seed: number): { reg: NodeRegistry; ipOf: (id: string) => string } {
  const reg = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 }, Date.now, n + 1);
  const rnd = mulberry32(seed);
  const ips = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const box = 1 + Math.floor(i / 64);
    const slot = 1 + (i % 16);
    const cpu = Math.floor(i / 16) % 4;
    const ip = `10.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    const gpu = rnd() < 0.3;
    reg.ingestHeartbeat(
      heartbeatData({
        box_id: box,
        slot_id: slot,
        cpu_id: cpu,
        host_ip: ip,
        board_type: gpu ? 'GPU' : 'CPU',
        resource_type: gpu ? 'GPU I' : 'CPU I',
        gpu: gpu ? [{ index: 0, name: 'JM9271' }] : [],
      }),
    );
    ips.set(`${box}-${slot}-${cpu}`, ip);
  }
  const ipOf = (id: string) => ips.get(id) as string;
  for (const [, ip] of ips) {
    const cores = [4, 8, 8, 16][Math.floor(rnd() * 4)] as number;
    reg.ingestResource(
      resourceData({
        host_ip: ip,
        cpu: { core_count: cores, core_allocated: Math.floor(rnd() * (cores / 2)) },
        memory: { total: [4, 8, 16, 32][Math.floor(rnd() * 4)]! * GiB },
      }),
    );
  }
  return { reg, ipOf };
}

/** Runs both measurements. */
export async function runPlacement(
  opts: { boards?: number; instances?: number; decisions?: number } = {},
): Promise<PlacementResult> {
  const boards = opts.boards ?? 5000;
  const instances = opts.instances ?? 1000;
  const decisions = opts.decisions ?? 20_000;
  const { reg, ipOf } = buildRegistry(boards, 7);
  const cfg = {
    reserve_memory_bytes: 268435456,
    reservation_ttl_ms: 660_000,
    refused_cooldown_ms: 30_000,
    default_scoring: 'binpack' as const,
  };
  const sched = new Scheduler(reg, cfg);
  const need = { cpu: 1, memory: 256 * 1024 * 1024, gpu: 0 };
  const cons = parseConstraints(['board_type = CPU', 'slot not_in 15,16']);

  const measure = (fn: (i: number) => void, n: number): number => {
    for (let i = 0; i < Math.min(500, n); i++) fn(i); // warm-up (JIT)
    const t = cpuMs();
    for (let i = 0; i < n; i++) fn(i);
    return n / ((cpuMs() - t) / 1000);
  };
  progress(`placement: ${boards} boards, ${decisions} decisions of each kind`);
  const binpack = measure((i) => {
    const p = sched.place({ require: need }, `b${i}`);
    if (!p.ok) throw new Error(p.explain);
    sched.release(`b${i}`);
  }, decisions);
  const constrained = measure((i) => {
    const p = sched.place({ require: need, constraints: cons, distinct: 'node', avoid: ['1-1-0', '2-2-0'] }, `c${i}`);
    if (!p.ok) throw new Error(p.explain);
    sched.release(`c${i}`);
  }, decisions);
  const spread = measure((i) => {
    const p = sched.place({ require: need, scoring: 'spread' }, `s${i}`);
    if (!p.ok) throw new Error(p.explain);
    sched.release(`s${i}`);
  }, decisions);
  let sink = 0;
  const bareScans = measure(
    () => {
      for (const n of reg.nodes.values()) {
        const b = reg.boardOf(n);
        if (n.state === 'online' && b?.resource) sink += b.resource.resource.cpu.core_count;
      }
    },
    Math.max(200, decisions / 10),
  );
  if (sink < 0) progress('unreachable');

  // Reconcile: a controller on a real store, a deployer that "starts" at once, reports fed back.
  progress(`reconcile: ${instances} instances × 3 components`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-bench-placement-'));
  const store = Store.open(
    dir,
    {
      file: 'bench.db',
      flush_interval_ms: 60_000,
      retention: { days: 0, max_rows: 0 },
      cleanup_interval_ms: 3_600_000,
      cleanup_batch_rows: 1000,
    },
    log,
    (await import('../manager/metrics.js')).createMetricsRegistry(),
  );
  const running = new Map<string, Map<string, Component>>();
  let seq = 0;
  const fakeRecord = (node: string, uuid: string, mode: 'start' | 'stop'): DeploymentRecord =>
    ({ id: `d${++seq}`, node, mode, type: 'bar', uuid, result: 0, message: 'ok' }) as unknown as DeploymentRecord;
  const deployer: Pick<Deployer, 'start' | 'stop'> = {
    start(node: string, input: StartInput) {
      let m = running.get(node);
      if (!m) {
        m = new Map();
        running.set(node, m);
      }
      m.set(input.uuid as string, component({ uuid: input.uuid as string, instance_id: input.instance_id ?? '' }));
      const rec = fakeRecord(node, input.uuid as string, 'start');
      return { deployment: rec, done: Promise.resolve(rec) };
    },
    stop(node: string, input: StopInput) {
      running.get(node)?.delete(input.uuid);
      const rec = fakeRecord(node, input.uuid, 'stop');
      return { deployment: rec, done: Promise.resolve(rec) };
    },
  };
  const sched2 = new Scheduler(reg, cfg);
  const ctl = new InstanceController({
    store,
    registry: reg,
    scheduler: sched2,
    deployer,
    log,
    metrics: null,
    cfg: {
      reconcile_interval_ms: 1000,
      reschedule_after_ms: 60_000,
      start_timeout_ms: 660_000,
      max_instances: instances + 1,
      max_components: 1024,
    },
  });
  for (let i = 0; i < instances; i++) {
    ctl.apply(
      `app-${i}`,
      {
        instance_id: `app-${i}`,
        groups: {
          web: {
            count: 3,
            type: 'bar',
            url: 'http://files/b',
            file: `app-${i}.bar`,
            require: { cpu: 1, memory: 64 * 1024 * 1024, gpu: 0 },
            distinct: 'node',
          },
        },
      },
      'bench',
    );
  }
  await new Promise((r) => setImmediate(r));
  const report = () => {
    for (const n of reg.nodes.values()) {
      const comps = [...(running.get(n.id)?.values() ?? [])];
      const prev = reg.boardOf(n)?.resource;
      reg.ingestResource(
        resourceData({
          host_ip: ipOf(n.id),
          cpu: { core_count: prev?.resource.cpu.core_count ?? 8, core_allocated: comps.length },
          memory: { total: prev?.resource.memory.total ?? 8 * GiB },
          component: comps,
        }),
      );
    }
  };
  // Reach the steady state: every component reported RUNNING and seen so.
  for (let k = 0; k < 3; k++) {
    report();
    ctl.tick();
    await new Promise((r) => setImmediate(r));
  }
  report();
  const passes: number[] = [];
  let actions = 0;
  for (let k = 0; k < 7; k++) {
    const t = cpuMs();
    actions += ctl.tick();
    passes.push(cpuMs() - t);
  }
  passes.sort((a, b) => a - b);
  const list = ctl.list();
  const components = list.reduce((s, i) => s + (i.groups.web?.running ?? 0), 0);
  const placementFailures = list.reduce((s, i) => s + 3 - (i.groups.web?.running ?? 0), 0);
  ctl.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    boards,
    rates: { binpack, constrained, spread },
    bareScans,
    usPerDecision: 1e6 / binpack,
    instances,
    components,
    reconcileMs: passes[Math.floor(passes.length / 2)] as number,
    reconcileActions: actions,
    placementFailures,
  };
}

/** The figures as text. */
export function formatPlacement(r: PlacementResult): string {
  return [
    `placement over ${r.boards} boards (decisions per CPU second, one core):`,
    `  binpack, no constraint        ${fx(r.rates.binpack, 0)}/s  (${fx(r.usPerDecision, 1)} µs each)`,
    `  binpack, 2 constraints+distinct ${fx(r.rates.constrained, 0)}/s`,
    `  spread                        ${fx(r.rates.spread, 0)}/s`,
    `  bare registry pass (baseline) ${fx(r.bareScans, 0)}/s  → a decision costs ${fx(r.bareScans / r.rates.binpack, 2)} bare passes`,
    `reconcile of ${r.instances} instances (${r.components} components RUNNING) in steady state:`,
    `  CPU per pass ${fx(r.reconcileMs, 1)} ms (median of 7), actions taken ${r.reconcileActions}, unplaced ${r.placementFailures}`,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { boards: { type: 'string' }, instances: { type: 'string' }, decisions: { type: 'string' } },
  });
  runPlacement({
    ...(values.boards ? { boards: Number(values.boards) } : {}),
    ...(values.instances ? { instances: Number(values.instances) } : {}),
    ...(values.decisions ? { decisions: Number(values.decisions) } : {}),
  })
    .then((r) => {
      process.stdout.write(`${formatPlacement(r)}\n`);
      process.exit(0);
    })
    .catch((err: Error) => {
      process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    });
}
