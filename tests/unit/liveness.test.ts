/**
 * Liveness (manager/liveness.ts) and the node registry (manager/registry.ts) over sequences of
 * heartbeat rounds: online → suspect → offline by missed rounds, recovery, identity conflicts,
 * re-addressed boards, and resource reports that arrive before any heartbeat.
 *
 * The manager's cycle (manager/manager.ts) is: send the first /heartbeat query; then every
 * heartbeat interval, `endRound()` and send the next query. A round's heartbeats therefore arrive
 * between two `endRound()` calls; `cycle()` below plays one interval.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HeartbeatData, ResourceData } from '../../common/protocol.js';
import { evaluate, type LivenessThresholds, stateFor, type Transition } from '../../manager/liveness.js';
import { NodeRegistry } from '../../manager/registry.js';
import { listNodes, summarize } from '../../manager/views.js';
import { heartbeatData, resourceData } from '../../testkit/bodies.js';

const T: LivenessThresholds = { suspect_after_rounds: 2, offline_after_rounds: 5 };

function hb(ip: string, pos: [number, number, number] = [1, 3, 0]): HeartbeatData {
  const [box_id, slot_id, cpu_id] = pos;
  return heartbeatData({ box_id, slot_id, cpu_id, host_ip: ip, hostname: `board-${ip.replace(/\./g, '-')}` });
}

function res(ip: string, usage = 12.5): ResourceData {
  return resourceData({ host_ip: ip, cpu: { usage_percent: usage, temperature: 45 }, memory: { usage_percent: 25 } });
}

/** A registry with every event recorded, and a fake clock. */
function setup(t: LivenessThresholds = T) {
  let clock = Date.parse('2025-05-30T08:00:00Z');
  const reg = new NodeRegistry(t, () => clock);
  const events: { kind: string; payload: unknown; round: number }[] = [];
  for (const kind of ['transition', 'conflict', 'conflict-cleared', 'moved', 'address-shared'])
    reg.on(kind, (payload: unknown) => events.push({ kind, payload, round: reg.round }));
  const transitions = () => events.filter((e) => e.kind === 'transition').map((e) => e.payload as Transition);
  /** One heartbeat interval: the round ends, then the boards in `answering` answer the new query. */
  const cycle = (...answering: (string | HeartbeatData)[]) => {
    clock += 2000;
    const out = reg.endRound();
    for (const a of answering) reg.ingestHeartbeat(typeof a === 'string' ? hb(a) : a);
    return out;
  };
  return { reg, events, transitions, cycle, kinds: (k: string) => events.filter((e) => e.kind === k) };
}

describe('stateFor', () => {
  it('maps missed rounds to a state at the thresholds', () => {
    assert.equal(stateFor(0, T), 'online');
    assert.equal(stateFor(1, T), 'online');
    assert.equal(stateFor(2, T), 'suspect');
    assert.equal(stateFor(4, T), 'suspect');
    assert.equal(stateFor(5, T), 'offline');
    assert.equal(stateFor(1000, T), 'offline');
    assert.equal(stateFor(Number.POSITIVE_INFINITY, T), 'offline');
  });
});

describe('evaluate', () => {
  it('moves a node down with the number of missed rounds as the reason', () => {
    assert.deepEqual(evaluate('online', 2, T), { to: 'suspect', reason: 'missed 2 heartbeat rounds' });
    assert.deepEqual(evaluate('suspect', 5, T), { to: 'offline', reason: 'missed 5 heartbeat rounds' });
    assert.deepEqual(evaluate('online', 7, T), { to: 'offline', reason: 'missed 7 heartbeat rounds' });
    assert.deepEqual(evaluate('online', 1, { suspect_after_rounds: 1, offline_after_rounds: 3 }), {
      to: 'suspect',
      reason: 'missed 1 heartbeat round',
    });
  });

  it('returns null when the state does not change', () => {
    assert.equal(evaluate('online', 0, T), null);
    assert.equal(evaluate('online', 1, T), null);
    assert.equal(evaluate('suspect', 3, T), null);
    assert.equal(evaluate('offline', 9, T), null);
  });

  it('never raises a node: only a heartbeat does', () => {
    assert.equal(evaluate('suspect', 0, T), null);
    assert.equal(evaluate('offline', 0, T), null);
    assert.equal(evaluate('offline', 3, T), null);
  });
});

describe('NodeRegistry liveness', () => {
  it('a first heartbeat creates the node online, with a transition from null', () => {
    const { reg, transitions } = setup();
    assert.equal(reg.ingestHeartbeat(hb('10.0.0.1')), '1-3-0');
    const n = reg.nodes.get('1-3-0');
    assert.equal(n?.state, 'online');
    assert.deepEqual(
      transitions().map((t) => [t.node, t.from, t.to, t.reason]),
      [['1-3-0', null, 'online', 'first heartbeat']],
    );
    assert.deepEqual(n?.transitions, transitions());
  });

  it('a board that answers every round stays online without transitions', () => {
    const { reg, transitions, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    for (let i = 0; i < 20; i++) assert.deepEqual(cycle('10.0.0.1'), []);
    assert.equal(reg.nodes.get('1-3-0')?.state, 'online');
    assert.equal(transitions().length, 1);
  });

  it('goes online → suspect → offline as missed rounds reach the thresholds, each step once', () => {
    const { reg, transitions, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    cycle('10.0.0.1');
    const board = reg.boards.get('10.0.0.1|1-3-0');
    assert.ok(board);
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      const out = cycle();
      const missed = reg.missed(board);
      const n = reg.nodes.get('1-3-0');
      // The state always follows the missed-round count...
      assert.equal(n?.state, stateFor(missed, T), `after ${missed} missed rounds`);
      // ...and changes exactly when the count reaches a threshold.
      if (missed === T.suspect_after_rounds)
        assert.deepEqual(
          out.map((t) => t.to),
          ['suspect'],
        );
      else if (missed === T.offline_after_rounds)
        assert.deepEqual(
          out.map((t) => t.to),
          ['offline'],
        );
      else assert.deepEqual(out, [], `no change at ${missed} missed rounds`);
      for (const t of out) seen.push(`${t.from}->${t.to}: ${t.reason}`);
    }
    assert.deepEqual(seen, [
      `online->suspect: missed ${T.suspect_after_rounds} heartbeat rounds`,
      `suspect->offline: missed ${T.offline_after_rounds} heartbeat rounds`,
    ]);
    assert.equal(transitions().length, 3);
    assert.equal(summarize(reg, reg.nodes.get('1-3-0')!).state, 'offline');
  });

  it('a heartbeat brings a suspect node back online with a transition', () => {
    const { reg, transitions, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    while (reg.nodes.get('1-3-0')?.state !== 'suspect') cycle();
    cycle('10.0.0.1');
    const last = transitions().at(-1);
    assert.deepEqual([last?.from, last?.to, last?.reason], ['suspect', 'online', 'heartbeat received']);
    assert.equal(reg.nodes.get('1-3-0')?.state, 'online');
  });

  it('a heartbeat brings an offline node back online with a transition saying so', () => {
    const { reg, transitions, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    for (let i = 0; i < 10; i++) cycle();
    assert.equal(reg.nodes.get('1-3-0')?.state, 'offline');
    cycle('10.0.0.1');
    const last = transitions().at(-1);
    assert.deepEqual([last?.from, last?.to, last?.reason], ['offline', 'online', 'heartbeat received after offline']);
    assert.equal(reg.countByState().online, 1);
    // ...and it starts counting afresh.
    cycle('10.0.0.1');
    assert.equal(reg.nodes.get('1-3-0')?.state, 'online');
  });

  it('keeps each node on its own count', () => {
    const { reg, cycle } = setup();
    const a = hb('10.0.0.1', [1, 1, 0]);
    const b = hb('10.0.0.2', [1, 2, 0]);
    reg.ingestHeartbeat(a);
    reg.ingestHeartbeat(b);
    for (let i = 0; i < 8; i++) cycle(a);
    assert.equal(reg.nodes.get('1-1-0')?.state, 'online');
    assert.equal(reg.nodes.get('1-2-0')?.state, 'offline');
    assert.deepEqual(reg.countByState(), { online: 1, suspect: 0, offline: 1 });
    assert.deepEqual(
      listNodes(reg).map((n) => [n.id, n.state]),
      [
        ['1-1-0', 'online'],
        ['1-2-0', 'offline'],
      ],
    );
  });

  it('one missed round never changes state (one lost query datagram)', () => {
    const { reg, transitions, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    cycle('10.0.0.1');
    cycle('10.0.0.1');
    cycle(); // this round's query was lost
    assert.equal(reg.nodes.get('1-3-0')?.state, 'online');
    cycle('10.0.0.1');
    assert.equal(reg.nodes.get('1-3-0')?.state, 'online');
    assert.equal(transitions().length, 1, JSON.stringify(transitions()));
  });

  it('with suspect_after_rounds=1, a board that answers every round never leaves online', () => {
    const { reg, transitions, cycle } = setup({ suspect_after_rounds: 1, offline_after_rounds: 3 });
    reg.ingestHeartbeat(hb('10.0.0.1'));
    for (let i = 0; i < 5; i++) cycle('10.0.0.1');
    assert.equal(transitions().length, 1, JSON.stringify(transitions().map((t) => `${t.from}->${t.to}`)));
  });

  it('a node no heartbeat ever named is never created by a resource report', () => {
    const { reg } = setup();
    assert.equal(reg.ingestResource(res('10.0.0.9')), null);
    assert.equal(reg.nodes.size, 0);
    assert.deepEqual(listNodes(reg), []);
  });
});

describe('NodeRegistry identity', () => {
  it('two boards claiming one position: a conflict event, both shown, the first claimant first', () => {
    const { reg, kinds, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    reg.ingestResource(res('10.0.0.1', 11));
    reg.ingestHeartbeat(hb('10.0.0.2'));
    reg.ingestResource(res('10.0.0.2', 22));
    assert.deepEqual(
      kinds('conflict').map((e) => e.payload),
      [{ node: '1-3-0', claimants: ['10.0.0.1', '10.0.0.2'] }],
    );
    for (let i = 0; i < 3; i++) cycle('10.0.0.1', '10.0.0.2');
    assert.equal(kinds('conflict').length, 1, 'raised once, not every round');
    const n = reg.nodes.get('1-3-0');
    assert.ok(n);
    assert.equal(reg.inConflict(n), true);
    assert.equal(n.state, 'online');
    const s = summarize(reg, n);
    assert.equal(s.host_ip, '10.0.0.1');
    assert.equal(s.cpu_percent, 11, "the shown figures are the first claimant's");
    assert.deepEqual(
      s.conflict?.map((c) => [c.host_ip, c.hostname]),
      [
        ['10.0.0.1', 'board-10-0-0-1'],
        ['10.0.0.2', 'board-10-0-0-2'],
      ],
    );
    assert.equal(reg.nodes.size, 1, 'one position, not two nodes');
  });

  it('the second claimant going quiet past the offline threshold clears the conflict', () => {
    const { reg, kinds, transitions, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    reg.ingestHeartbeat(hb('10.0.0.2'));
    cycle('10.0.0.1', '10.0.0.2');
    const quiet = reg.boards.get('10.0.0.2|1-3-0');
    assert.ok(quiet);
    let clearedAt: number | undefined;
    for (let i = 0; i < 10 && clearedAt === undefined; i++) {
      cycle('10.0.0.1');
      const cleared = kinds('conflict-cleared');
      if (cleared.length > 0) clearedAt = reg.missed(quiet);
      else assert.ok(reg.missed(quiet) < T.offline_after_rounds, 'cleared once past the offline threshold');
    }
    assert.equal(clearedAt, T.offline_after_rounds);
    assert.deepEqual(
      kinds('conflict-cleared').map((e) => e.payload),
      [{ node: '1-3-0' }],
    );
    const n = reg.nodes.get('1-3-0');
    assert.ok(n);
    assert.equal(reg.inConflict(n), false);
    assert.equal(summarize(reg, n).conflict, null);
    assert.equal(n.state, 'online');
    assert.equal(transitions().length, 1, 'the live claimant kept the node online throughout');
    // The quiet board coming back claims the position again: a new conflict.
    reg.ingestHeartbeat(hb('10.0.0.2'));
    assert.equal(kinds('conflict').length, 2);
  });

  it('the first claimant going quiet past the offline threshold clears the conflict too', () => {
    const { reg, kinds, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    reg.ingestHeartbeat(hb('10.0.0.2'));
    for (let i = 0; i < 10; i++) cycle('10.0.0.2');
    const n = reg.nodes.get('1-3-0');
    assert.ok(n);
    assert.equal(kinds('conflict-cleared').length, 1);
    assert.equal(reg.inConflict(n), false);
    assert.equal(summarize(reg, n).host_ip, '10.0.0.2');
    assert.equal(n.state, 'online');
  });

  it('a board re-addressed: old ip quiet past suspect, new ip claims → moved, node back online', () => {
    const { reg, kinds, transitions, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    reg.ingestResource(res('10.0.0.1', 11));
    const old = reg.boards.get('10.0.0.1|1-3-0');
    assert.ok(old);
    while (reg.missed(old) < T.suspect_after_rounds) cycle();
    assert.equal(reg.nodes.get('1-3-0')?.state, 'suspect');
    reg.ingestHeartbeat(hb('10.0.0.77'));
    assert.deepEqual(
      kinds('moved').map((e) => e.payload),
      [{ node: '1-3-0', from: '10.0.0.1', to: '10.0.0.77' }],
    );
    assert.equal(kinds('conflict').length, 0, 'a move is not a conflict');
    const n = reg.nodes.get('1-3-0');
    assert.ok(n);
    assert.equal(n.state, 'online');
    assert.equal(n.primary, '10.0.0.77');
    assert.deepEqual([...n.claimants], ['10.0.0.77']);
    assert.deepEqual(transitions().at(-1)?.to, 'online');
    const s = summarize(reg, n);
    assert.equal(s.host_ip, '10.0.0.77');
    assert.equal(s.conflict, null);
    assert.equal(s.cpu_percent, null, "the old address's figures are not shown as the new board's");
    reg.ingestResource(res('10.0.0.77', 33));
    assert.equal(summarize(reg, n).cpu_percent, 33);
    for (let i = 0; i < 3; i++) cycle('10.0.0.77');
    assert.equal(n.state, 'online');
  });

  it('a new address while the old one still answers is a conflict, not a move', () => {
    const { reg, kinds, cycle } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1'));
    cycle('10.0.0.1');
    reg.ingestHeartbeat(hb('10.0.0.77'));
    assert.equal(kinds('moved').length, 0);
    assert.equal(kinds('conflict').length, 1);
  });

  it('a board that changes its claimed position: the old one goes quiet, then offline; reports go to the new one', () => {
    const { reg, cycle, kinds } = setup();
    reg.ingestHeartbeat(hb('10.0.0.1', [1, 3, 0]));
    cycle(hb('10.0.0.1', [1, 3, 0]));
    reg.ingestHeartbeat(hb('10.0.0.1', [1, 4, 0]));
    for (let i = 0; i < T.offline_after_rounds + 1; i++) cycle(hb('10.0.0.1', [1, 4, 0]));
    assert.equal(reg.nodes.get('1-3-0')?.state, 'offline');
    assert.equal(reg.nodes.get('1-4-0')?.state, 'online');
    assert.equal(reg.ingestResource(res('10.0.0.1', 77)), '1-4-0');
    assert.equal(reg.boards.get('10.0.0.1|1-4-0')?.resource?.resource.cpu.usage_percent, 77);
    assert.notEqual(reg.boards.get('10.0.0.1|1-3-0')?.resource?.resource.cpu.usage_percent, 77);
    assert.equal(kinds('address-shared').length, 0);
  });

  it('two agents sharing one address for two positions: both stay online, reported once', () => {
    const { reg, cycle, kinds, transitions } = setup();
    const a = hb('10.0.0.1', [1, 3, 0]);
    const b = hb('10.0.0.1', [1, 3, 1]);
    reg.ingestHeartbeat(a);
    reg.ingestHeartbeat(b);
    for (let i = 0; i < 10; i++) cycle(a, b);
    assert.equal(reg.nodes.get('1-3-0')?.state, 'online');
    assert.equal(reg.nodes.get('1-3-1')?.state, 'online');
    assert.equal(transitions().length, 2);
    assert.equal(kinds('address-shared').length, 1);
  });
});

describe('NodeRegistry resource reports', () => {
  it('a resource report before any heartbeat is kept unmatched, then matched after the heartbeat', () => {
    const { reg } = setup();
    assert.equal(reg.ingestResource(res('10.0.0.5', 42)), null);
    assert.equal(reg.nodes.size, 0);
    reg.ingestHeartbeat(hb('10.0.0.5', [2, 1, 0]));
    const n = reg.nodes.get('2-1-0');
    assert.ok(n);
    // The report that came first is shown once a heartbeat names the address.
    assert.equal(summarize(reg, n).cpu_percent, 42);
    assert.equal(reg.ingestResource(res('10.0.0.5', 43)), '2-1-0');
    const s = summarize(reg, n);
    assert.equal(s.cpu_percent, 43);
    assert.equal(s.memory_percent, 25);
    assert.equal(s.temperature, 45);
    assert.notEqual(s.resource_at, null);
  });

  it("a resource report from another address does not touch this node's figures", () => {
    const { reg } = setup();
    reg.ingestHeartbeat(hb('10.0.0.5'));
    reg.ingestResource(res('10.0.0.5', 10));
    assert.equal(reg.ingestResource(res('10.0.0.6', 90)), null);
    assert.equal(summarize(reg, reg.nodes.get('1-3-0')!).cpu_percent, 10);
  });
});
