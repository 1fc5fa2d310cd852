/**
 * The placement scheduler (docs/scheduling.md "Placement", "Constraints", "Scoring", "Races"):
 * the constraint grammar, the scorer and the filter against tables of nodes in a real registry,
 * the explanation of a placement that cannot be made, the reservation ledger, and two placements
 * racing for the last cores of a board, up to the agent's refusal and the retry elsewhere.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { DeploymentRecord } from '../../common/api/deploy.js';
import { ConstraintError, parseConstraint, parseConstraints } from '../../common/constraints.js';
import type { DeployRequestData, HeartbeatData } from '../../common/protocol.js';
import type { AgentClient, AgentTarget, DeployOutcome } from '../../manager/agents/client.js';
import { Deployer } from '../../manager/deploy.js';
import { NodeRegistry } from '../../manager/registry.js';
import { PlacementFailed, Placer, wireScheduler } from '../../manager/scheduler/placer.js';
import { explain, Scheduler } from '../../manager/scheduler/scheduler.js';
import { score } from '../../manager/scheduler/score.js';
import { component, heartbeatData, resourceData } from '../../testkit/bodies.js';

const log = pino({ level: 'silent' });
const GiB = 1024 ** 3;
const CFG = {
  reserve_memory_bytes: 0,
  reservation_ttl_ms: 60_000,
  refused_cooldown_ms: 30_000,
  default_scoring: 'binpack' as const,
};

/** One row of a node table. */
interface Row {
  box: number;
  slot: number;
  cpu?: number;
  board_type?: string;
  cpu_arch?: string;
  os_type?: string;
  resource_type?: string;
  labels?: Record<string, string>;
  cores: number;
  allocated?: number;
  memGiB: number;
  /** memory held by components (their mem_limit), GiB */
  heldGiB?: number;
  gpus?: number;
  state?: 'online' | 'suspect' | 'offline';
  noReport?: boolean;
}

/** A registry holding the table's nodes (address 10.9.<box>.<slot>). */
function fleet(rows: Row[], now: () => number = Date.now): NodeRegistry {
  const reg = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 }, now);
  for (const r of rows) {
    const ip = `10.9.${r.box}.${r.slot}`;
    const hb = heartbeatData({
      box_id: r.box,
      slot_id: r.slot,
      cpu_id: r.cpu ?? 0,
      host_ip: ip,
      board_type: r.board_type ?? 'CPU',
      cpu_arch: r.cpu_arch ?? 'aarch64',
      os_type: r.os_type ?? 'Kylin Linux Advanced Server V10',
      resource_type: r.resource_type ?? 'CPU I',
      gpu: Array.from({ length: r.gpus ?? 0 }, (_, i) => ({ index: i, name: 'JM9271' })),
      ...(r.labels ? { labels: r.labels } : {}),
    } as Partial<HeartbeatData>);
    reg.ingestHeartbeat(hb);
    if (!r.noReport) {
      reg.ingestResource(
        resourceData({
          host_ip: ip,
          cpu: { core_count: r.cores, core_allocated: r.allocated ?? 0 },
          memory: { total: r.memGiB * GiB },
          component: r.heldGiB
            ? [
                component({
                  uuid: `held-${ip}`,
                  resource: {
                    cpu: { load: 1 },
                    memory: { mem_used: 1, mem_limit: r.heldGiB * GiB },
                    network: { tx: null, rx: null },
                  },
                }),
              ]
            : [],
        }),
      );
    }
    const n = reg.nodes.get(`${r.box}-${r.slot}-${r.cpu ?? 0}`);
    if (n && r.state && r.state !== 'online') n.state = r.state;
  }
  return reg;
}

const need = (cpu: number, memGiB: number, gpu = 0) => ({ cpu, memory: memGiB * GiB, gpu });

describe('constraints', () => {
  it('parses every operator and matches globs, lists, regexps and labels', () => {
    const t = (text: string, v: string | undefined) => parseConstraint(text).test(v);
    assert.equal(t('board_type = GPU', 'GPU'), true);
    assert.equal(t('board_type == GPU', 'CPU'), false);
    assert.equal(t('board_type != GPU', 'CPU'), true);
    assert.equal(t('board_type != GPU', undefined), true);
    assert.equal(t('board_type = GPU', undefined), false);
    assert.equal(t('node = 1-*-0', '1-7-0'), true);
    assert.equal(t('node = 1-*-0', '2-7-0'), false);
    assert.equal(t('slot in 1,2,5', '5'), true);
    assert.equal(t('slot in 1, 2', '3'), false);
    assert.equal(t('cpu_arch not_in x86_64,i686', 'aarch64'), true);
    assert.equal(t('os_type =~ ^Kylin', 'Kylin Linux'), true);
    assert.equal(t('hostname !~ -test$', 'a-test'), false);
    assert.equal(t('label.zone = east', 'east'), true);
    const c = parseConstraint('cpu = 1');
    assert.equal(c.attribute, 'cpu_id');
    assert.equal(parseConstraint('box_id in 1,2').text, 'box in 1,2');
  });

  it('refuses bad input with a message naming what is wrong', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['board_type', /expected "<attribute> <operator> <value>"/],
      ['colour = red', /unknown attribute "colour"/],
      ['board_type = ', /no value|expected/],
      ['slot in 1,,2', /empty value/],
      ['os_type =~ (', /bad regexp/],
      ['hostname =~ (a+)+$', /nests quantifiers/],
      [`hostname = ${'x'.repeat(300)}`, /longer than 256/],
    ];
    for (const [text, re] of bad) assert.throws(() => parseConstraint(text), re, text);
    assert.throws(() => parseConstraints(Array(33).fill('box = 1')), /more than 32/);
    assert.throws(
      () => parseConstraints(['box = 1', 'nope']),
      (e: Error) => e instanceof ConstraintError && /constraints\[1\]/.test(e.message),
    );
  });
});

describe('scorer', () => {
  it("is Nomad's bin-pack 20 − (10^freeCpu + 10^freeMem), normalized, and spread its mirror", () => {
    const table: [number, number, number, number][] = [
      // freeCpu, freeMem, binpack, spread
      [0, 0, 1, 0],
      [1, 1, 0, 1],
      [0.5, 0.5, (20 - 2 * 10 ** 0.5) / 18, (2 * 10 ** 0.5 - 2) / 18],
      [0.25, 1, (20 - 10 ** 0.25 - 10) / 18, (10 ** 0.25 + 10 - 2) / 18],
      [-1, 2, (20 - 1 - 10) / 18, (1 + 10 - 2) / 18],
    ];
    for (const [c, m, b, s] of table) {
      assert.ok(Math.abs(score('binpack', c, m) - b) < 1e-12, `binpack ${c},${m}`);
      assert.ok(Math.abs(score('spread', c, m) - s) < 1e-12, `spread ${c},${m}`);
    }
  });

  it('binpack picks the fullest node that fits, spread the emptiest', () => {
    const reg = fleet([
      { box: 1, slot: 1, cores: 8, allocated: 6, memGiB: 16, heldGiB: 12 },
      { box: 1, slot: 2, cores: 8, allocated: 2, memGiB: 16, heldGiB: 4 },
      { box: 1, slot: 3, cores: 8, allocated: 0, memGiB: 16 },
      { box: 1, slot: 4, cores: 8, allocated: 7, memGiB: 16, heldGiB: 15 }, // too full for 2 cores
    ]);
    const s = new Scheduler(reg, CFG);
    const b = s.place({ require: need(2, 2) });
    assert.ok(b.ok);
    assert.equal(b.node, '1-1-0');
    assert.equal(b.feasible, 3);
    const sp = s.place({ require: need(2, 2), scoring: 'spread' });
    assert.ok(sp.ok);
    assert.equal(sp.node, '1-3-0');
  });
});

describe('feasibility and constraints against a table of nodes', () => {
  const rows: Row[] = [
    { box: 1, slot: 1, board_type: 'GPU', cores: 8, memGiB: 16, gpus: 2, labels: { zone: 'east' } },
    { box: 1, slot: 2, board_type: 'GPU', cores: 8, allocated: 8, memGiB: 16, gpus: 2 },
    { box: 1, slot: 3, board_type: 'CPU', cores: 8, memGiB: 16 },
    { box: 2, slot: 1, board_type: 'CPU', cores: 8, memGiB: 16, labels: { zone: 'west' } },
    { box: 2, slot: 2, board_type: 'CPU', cores: 8, memGiB: 2 },
    { box: 2, slot: 3, board_type: 'CPU', cores: 8, memGiB: 16, state: 'suspect' },
    { box: 3, slot: 1, board_type: 'CPU', cores: 8, memGiB: 16, state: 'offline' },
    { box: 3, slot: 2, board_type: 'GPU', cores: 8, memGiB: 16, noReport: true },
  ];

  it('places by each attribute and operator', () => {
    const s = new Scheduler(fleet(rows), CFG);
    const where = (constraints: string[], req = need(1, 1)) => {
      const p = s.place({ require: req, constraints: parseConstraints(constraints) });
      return p.ok ? p.node : null;
    };
    assert.equal(where(['board_type = GPU']), '1-1-0');
    assert.equal(where(['label.zone = west']), '2-1-0');
    assert.equal(where(['box = 2', 'slot != 1']), '2-2-0');
    assert.equal(where(['node = 1-*-0', 'board_type != GPU']), '1-3-0');
    assert.equal(where(['slot in 3,7', 'box in 1']), '1-3-0');
    assert.equal(where(['hostname =~ ^board-2-']), '2-2-0', 'binpack: the smaller board is fuller after');
    assert.equal(where(['cpu_arch = x86_64']), null);
    assert.equal(where([], need(1, 0, 1)), '1-1-0', 'a GPU: only 1-1-0 has a free one');
  });

  it('explains a placement that cannot be made, Nomad style', () => {
    const s = new Scheduler(fleet(rows), CFG);
    const p = s.place({ require: need(2, 4, 3), constraints: parseConstraints(['board_type = GPU']) });
    assert.equal(p.ok, false);
    if (p.ok) return;
    assert.deepEqual(p.reasons, {
      'filtered by board_type = GPU': 3,
      'exhausted on cpu': 1,
      'exhausted on gpu': 1,
      suspect: 1,
      offline: 1,
      'no resource report': 1,
    });
    assert.equal(
      p.explain,
      '8 nodes: 3 filtered by board_type = GPU, 1 exhausted on cpu, 1 exhausted on gpu, 1 no resource report, 1 offline, 1 suspect',
    );
    const big = s.place({ require: need(9, 1) });
    assert.ok(!big.ok && /5 exhausted on cpu/.test(big.explain));
    const mem = s.place({ require: need(1, 8), constraints: parseConstraints(['box = 2', 'slot != 1']) });
    assert.ok(!mem.ok);
    assert.equal(
      mem.explain,
      '8 nodes: 3 filtered by box = 2, 1 exhausted on memory, 1 filtered by slot != 1, 1 no resource report, 1 offline, 1 suspect',
    );
    assert.equal(explain(0, {}), 'no nodes: the registry is empty');
  });

  it('distinct node and box keep siblings apart, and say so', () => {
    const s = new Scheduler(fleet(rows), CFG);
    const a = s.place({ require: need(1, 1), distinct: 'box', avoid: ['1-1-0'] });
    assert.ok(a.ok && a.node.startsWith('2-'));
    const b = s.place({ require: need(1, 1), distinct: 'node', avoid: ['1-1-0', '1-3-0', '2-1-0', '2-2-0'] });
    assert.ok(!b.ok && /4 filtered by distinct node/.test(b.explain));
  });
});

describe('cached views', () => {
  it('a changed heartbeat re-evaluates constraints; distinct marks do not outlive their decision', () => {
    const reg = fleet([
      { box: 1, slot: 1, cores: 4, memGiB: 8 },
      { box: 2, slot: 1, cores: 4, memGiB: 8 },
    ]);
    const s = new Scheduler(reg, CFG);
    const gpu = parseConstraints(['board_type = GPU']);
    assert.equal(s.place({ require: need(1, 1), constraints: gpu }).ok, false);
    reg.ingestHeartbeat(heartbeatData({ box_id: 2, slot_id: 1, host_ip: '10.9.2.1', board_type: 'GPU' }));
    const p = s.place({ require: need(1, 1), constraints: gpu });
    assert.ok(p.ok && p.node === '2-1-0');
    const a = s.place({ require: need(1, 1), distinct: 'box', avoid: ['1-1-0'] });
    assert.ok(a.ok && a.node === '2-1-0');
    const b = s.place({ require: need(1, 1), distinct: 'node', avoid: ['2-1-0'] });
    assert.ok(b.ok && b.node === '1-1-0', 'the box mark of the decision before is gone');
    const c = s.place({ require: need(1, 1), distinct: 'box', avoid: ['1-1-0', '2-1-0'] });
    assert.ok(!c.ok && c.explain === '2 nodes: 2 filtered by distinct box');
  });
});

describe('reservations', () => {
  it('a placement reserves at once; the report listing it, a failure or the ttl end the reservation', () => {
    let now = 1_000_000;
    const reg = fleet([{ box: 1, slot: 1, cores: 4, memGiB: 8 }], () => now);
    const s = new Scheduler(reg, { ...CFG, reservation_ttl_ms: 10_000 }, null, () => now);
    assert.ok(s.place({ require: need(3, 1) }, 'a').ok);
    assert.deepEqual(s.free('1-1-0'), { cpu: 1, memory: 7 * GiB, gpu: 0 });
    const second = s.place({ require: need(2, 1) }, 'b');
    assert.ok(!second.ok && second.explain === '1 node: 1 exhausted on cpu');
    // The report now lists `a` and counts its cores: the reservation is done, the cores still held.
    reg.ingestResource(
      resourceData({
        host_ip: '10.9.1.1',
        cpu: { core_count: 4, core_allocated: 3 },
        memory: { total: 8 * GiB },
        component: [component({ uuid: 'a' })],
      }),
    );
    assert.equal(s.free('1-1-0')?.cpu, 1);
    assert.equal(s.reservations().length, 0);
    // A reservation not seen reported goes after the ttl; a released one at once.
    assert.ok(s.place({ require: need(1, 0) }, 'c').ok);
    assert.equal(s.free('1-1-0')?.cpu, 0);
    s.release('c');
    assert.equal(s.free('1-1-0')?.cpu, 1);
    assert.ok(s.place({ require: need(1, 0) }, 'd').ok);
    now += 10_001;
    assert.equal(s.free('1-1-0')?.cpu, 1);
  });
});

/** An agent that admits starts against its own cores, as the real admission does (agent/deploy/admission.ts). */
class CountingAgents implements AgentClient {
  free = new Map<string, number>();
  calls: string[] = [];
  async deploy(target: AgentTarget, request: DeployRequestData): Promise<DeployOutcome> {
    await new Promise((r) => setTimeout(r, 5));
    this.calls.push(target.node);
    const have = this.free.get(target.node) ?? 0;
    const want = request.require?.cpu ?? 0;
    if (want > have)
      return {
        ok: true,
        reply: {
          ...request,
          result: 2,
          message: `insufficient resources: cpu: need ${want} cores, ${have} free`,
        } as never,
      };
    this.free.set(target.node, have - want);
    return { ok: true, reply: { ...request, id: 1, result: 0, message: 'started' } as never };
  }
  async progress() {
    return null;
  }
}

describe('the race for the last cores of a board', () => {
  it('two placements never both land on a board with room for one', async () => {
    const reg = fleet([
      { box: 1, slot: 1, cores: 4, allocated: 2, memGiB: 8 },
      { box: 1, slot: 2, cores: 4, allocated: 0, memGiB: 8 },
    ]);
    const agents = new CountingAgents();
    agents.free.set('1-1-0', 2).set('1-2-0', 4);
    const deployer = new Deployer({ progress_poll_ms: 1000 }, reg, agents, log);
    const s = new Scheduler(reg, CFG);
    wireScheduler(deployer, s);
    const placer = new Placer(s, deployer, log, 3);
    // Both are decided before either call reaches an agent.
    const a = placer.start({ type: 'bar', url: 'http://x', file: 'a.bar', require: need(2, 1) }, 't');
    const b = placer.start({ type: 'bar', url: 'http://x', file: 'b.bar', require: need(2, 1) }, 't');
    assert.equal(a.node, '1-1-0', 'binpack takes the fuller board first');
    assert.equal(b.node, '1-2-0', 'the second sees the first one’s reservation');
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.result, 0);
    assert.equal(rb.result, 0);
    assert.throws(
      () => placer.start({ type: 'bar', url: 'http://x', file: 'c.bar', require: need(3, 1) }, 't'),
      (e: Error) => e instanceof PlacementFailed && /2 nodes: 2 exhausted on cpu/.test(e.explain),
    );
  });

  it('a stale view: the agent refuses, the manager places it again elsewhere and records the chain', async () => {
    const reg = fleet([
      { box: 1, slot: 1, cores: 4, allocated: 2, memGiB: 8 },
      { box: 1, slot: 2, cores: 4, allocated: 0, memGiB: 8 },
    ]);
    const agents = new CountingAgents();
    // 1-1-0 has given its cores away to someone the report does not show yet.
    agents.free.set('1-1-0', 0).set('1-2-0', 4);
    const deployer = new Deployer({ progress_poll_ms: 1000 }, reg, agents, log);
    const s = new Scheduler(reg, CFG);
    wireScheduler(deployer, s);
    const placer = new Placer(s, deployer, log, 3);
    const a = placer.start({ type: 'bar', url: 'http://x', file: 'a.bar', require: need(2, 1) }, 't');
    assert.equal(a.node, '1-1-0');
    const last: DeploymentRecord = await a.done;
    assert.equal(last.result, 0);
    assert.equal(last.node, '1-2-0');
    assert.equal(last.placement?.attempt, 2);
    assert.equal(a.deployment.result, 2);
    assert.equal(a.deployment.placement?.next, last.id);
    assert.deepEqual(agents.calls, ['1-1-0', '1-2-0']);
    // The refusing node is passed over for the cooldown.
    const p = s.place({ require: need(1, 0), constraints: parseConstraints(['node = 1-1-0']) });
    assert.ok(!p.ok && /refused by its agent/.test(p.explain));
  });
});
