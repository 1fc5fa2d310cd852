/**
 * The live stream's diff encoder (manager/events.ts diffSummaries, docs/dashboard.md "Live
 * updates"): new nodes whole, known ones as patches of the changed fields only, removed ids; a
 * patch applied to the previous state gives the new one; and the hub sends a new subscriber the
 * very state its next diff is computed against.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodesEvent } from '../../common/api/events.js';
import type { NodeSummary } from '../../common/api/nodes.js';
import { diffSummaries, EventHub, type EventSink } from '../../manager/events.js';
import { fleetHeartbeat, fleetResource } from '../../testkit/fleet.js';
import { serverDeps } from '../../testkit/server.js';

const node = (id: string, over: Partial<NodeSummary> = {}): NodeSummary => ({
  id,
  box_id: 1,
  slot_id: Number(id.split('-')[1] ?? 1),
  cpu_id: 0,
  state: 'online',
  state_since: '2026-12-01T00:00:00.000Z',
  host_ip: '10.0.0.1',
  hostname: `h-${id}`,
  last_seen: '2026-12-01T00:00:01.000Z',
  missed_rounds: 0,
  cpu_percent: 10,
  memory_percent: 20,
  temperature: 50,
  gpu_count: 2,
  component_count: 1,
  resource_at: '2026-12-01T00:00:01.000Z',
  conflict: null,
  link: 'mcast',
  ...over,
});

const apply = (prev: Map<string, NodeSummary>, ev: NodesEvent) => {
  const next = new Map(ev.full ? [] : prev);
  for (const n of ev.changed) next.set(n.id, n);
  for (const p of ev.patched) next.set(p.id, { ...next.get(p.id)!, ...p });
  for (const id of ev.removed) next.delete(id);
  return next;
};

describe('diffSummaries', () => {
  it('sends only the fields that changed, new nodes whole, removed ids', () => {
    const prev = new Map([
      ['1-1-0', node('1-1-0')],
      ['1-2-0', node('1-2-0')],
      ['1-3-0', node('1-3-0')],
    ]);
    const next = [
      node('1-1-0', { cpu_percent: 11, last_seen: '2026-12-01T00:00:03.000Z' }),
      node('1-2-0'),
      node('1-4-0'),
    ];
    const d = diffSummaries(prev, next);
    assert.deepEqual(d.patched, [{ id: '1-1-0', cpu_percent: 11, last_seen: '2026-12-01T00:00:03.000Z' }]);
    assert.deepEqual(
      d.changed.map((n) => n.id),
      ['1-4-0'],
    );
    assert.deepEqual(d.removed, ['1-3-0']);
    const after = apply(prev, { round: 1, full: false, ...d });
    assert.deepEqual(
      [...after.values()].sort((a, b) => a.id.localeCompare(b.id)),
      next,
    );
  });

  it('null and 0 differ; a conflict list compares by value; nothing changed is nothing sent', () => {
    const claim = { host_ip: '10.0.0.2', hostname: null, last_seen: null, missed_rounds: 0 };
    const prev = new Map([['1-1-0', node('1-1-0', { temperature: 0, conflict: [claim] })]]);
    assert.deepEqual(diffSummaries(prev, [node('1-1-0', { temperature: 0, conflict: [{ ...claim }] })]).patched, []);
    assert.deepEqual(diffSummaries(prev, [node('1-1-0', { temperature: null, conflict: [claim] })]).patched, [
      { id: '1-1-0', temperature: null },
    ]);
    assert.deepEqual(diffSummaries(prev, [node('1-1-0', { temperature: 0, conflict: null })]).patched, [
      { id: '1-1-0', conflict: null },
    ]);
    assert.deepEqual(diffSummaries(new Map(), []), { changed: [], patched: [], removed: [] });
  });

  it('1,000 boards whose figures all change: the diff is far smaller than the snapshot', () => {
    const prev = new Map<string, NodeSummary>();
    const next: NodeSummary[] = [];
    for (let i = 0; i < 1000; i++) {
      const id = `${1 + Math.floor(i / 64)}-${1 + (i % 64)}-0`;
      prev.set(id, node(id));
      next.push(node(id, { cpu_percent: 10 + (i % 7), last_seen: '2026-12-01T00:00:03.000Z' }));
    }
    const d = diffSummaries(prev, next);
    const diff = JSON.stringify(d).length;
    const full = JSON.stringify(next).length;
    assert.equal(d.patched.length, 1000);
    assert.ok(diff * 3 < full, `diff ${diff} B, snapshot ${full} B`);
  });
});

describe('EventHub with diffs', () => {
  it('a new subscriber gets the state the next diff is computed against; then only patches', () => {
    const d = serverDeps();
    try {
      const hub = new EventHub(d.registry, d.alerts, {
        interval_ms: 60_000,
        ping_ms: 60_000,
        max_clients: 4,
        max_buffer_bytes: 1 << 20,
      });
      for (const i of [0, 1]) {
        d.ingest.heartbeat(fleetHeartbeat(i).data);
        d.ingest.resource(fleetResource(i).data);
      }
      const frames: string[] = [];
      const sink: EventSink = { write: (c) => frames.push(c) > 0, writableLength: 0, end() {} };
      assert.ok(hub.subscribe(sink));
      const nodesOf = () =>
        frames
          .filter((f) => f.startsWith('event: nodes'))
          .map((f) => JSON.parse(/^data: (.*)$/m.exec(f)![1]!) as NodesEvent);
      const [snap] = nodesOf();
      assert.equal(snap!.full, true);
      assert.equal(snap!.changed.length, 2);
      let state = apply(new Map(), snap!);

      // Board 1 reports new figures: the next event patches it alone, with the changed fields only.
      d.ingest.resource(fleetResource(1, 7).data);
      hub.refresh();
      const ev = nodesOf()[1]!;
      assert.equal(ev.full, false);
      assert.equal(ev.changed.length, 0);
      assert.equal(ev.patched.length, 1);
      const p = ev.patched[0]!;
      assert.ok(Object.keys(p).length < Object.keys(snap!.changed[0]!).length);
      assert.ok(!('hostname' in p) && !('box_id' in p));
      state = apply(state, ev);
      // Applied, the page's state is the manager's.
      const sub2: string[] = [];
      hub.subscribe({ write: (c) => sub2.push(c) > 0, writableLength: 0, end() {} });
      const snap2 = JSON.parse(
        /^data: (.*)$/m.exec(sub2.find((f) => f.startsWith('event: nodes'))!)![1]!,
      ) as NodesEvent;
      assert.deepEqual(state, apply(new Map(), snap2));
      hub.close();
    } finally {
      d.close();
    }
  });
});
