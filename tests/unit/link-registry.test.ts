/**
 * Linked nodes in the registry (docs/links.md "Linked nodes"): ids, liveness counted in the node's
 * own heartbeat intervals (not in query rounds), the views' LINK and metrics, max_nodes; and the
 * agent's link config check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAgentConfig } from '../../agent/config.js';
import { NODE_ID_RE } from '../../common/api/primitives.js';
import { NO_POSITION, NodeRegistry } from '../../manager/registry.js';
import { detail, summarize } from '../../manager/views.js';

const T = { suspect_after_rounds: 2, offline_after_rounds: 5 };

describe('linked nodes in the registry', () => {
  it('a node without a position keeps its node_id; one with a position is box-slot-cpu', () => {
    let now = 1_000_000;
    const reg = new NodeRegistry(T, () => now);
    assert.equal(
      reg.ingestLinked('node-001', '10.0.0.5', { interval_ms: 30_000, hostname: 'h1', os_info: 'Linux' }),
      'node-001',
    );
    const n = reg.nodes.get('node-001');
    assert.ok(n);
    assert.equal(n.box_id, NO_POSITION);
    assert.equal(n.state, 'online');
    assert.equal(
      reg.ingestLinked('3-1-0', '10.0.0.6', { interval_ms: 30_000 }, { box_id: 3, slot_id: 1, cpu_id: 0 }),
      '3-1-0',
    );
    assert.equal(reg.nodes.get('3-1-0')?.slot_id, 1);
    now += 1000;
    reg.ingestLinked('node-001', '10.0.0.5', { interval_ms: 30_000, metrics: { cpu_usage: 12.5, memory_usage: 40 } });
    const s = summarize(reg, n);
    assert.equal(s.link, 'ws');
    assert.equal(s.hostname, 'h1');
    assert.equal(s.cpu_percent, 12.5);
    assert.equal(s.memory_percent, 40);
    assert.equal(detail(reg, n).link_info?.os_info, 'Linux');
  });

  it('liveness: suspect after 2 intervals, offline after 5, whatever the query rounds; a heartbeat brings it back', () => {
    let now = 0;
    const reg = new NodeRegistry(T, () => now);
    reg.ingestLinked('n1', '10.0.0.5', { interval_ms: 10_000 });
    const state = () => reg.nodes.get('n1')?.state;
    // Many rounds within one interval change nothing (a multicast node would be offline by now).
    for (let i = 0; i < 20; i++) {
      now += 400;
      reg.endRound();
    }
    assert.equal(state(), 'online');
    now = 19_999;
    reg.endRound();
    assert.equal(state(), 'online');
    now = 20_000;
    reg.endRound();
    assert.equal(state(), 'suspect');
    now = 49_999;
    reg.endRound();
    assert.equal(state(), 'suspect');
    now = 50_000;
    const tr = reg.endRound();
    assert.equal(state(), 'offline');
    assert.match(tr[0]?.reason ?? '', /missed 5 link heartbeat intervals/);
    reg.ingestLinked('n1', '10.0.0.5', { interval_ms: 10_000 });
    assert.equal(state(), 'online');
  });

  it('a new linked node beyond registry.max_nodes is refused and leaves nothing', () => {
    const reg = new NodeRegistry(T, Date.now, 1);
    assert.equal(reg.ingestLinked('a', '10.0.0.1', { interval_ms: 1000 }), 'a');
    assert.equal(reg.ingestLinked('b', '10.0.0.2', { interval_ms: 1000 }), null);
    assert.equal(reg.nodes.size, 1);
    assert.equal(reg.ingestLinked('a', '10.0.0.1', { interval_ms: 1000 }), 'a', 'a known node is always accepted');
  });

  it('node ids: box-slot-cpu and link ids pass, others do not', () => {
    for (const ok of ['1-3-0', 'node-001', '123e4567-e89b-42d3-a456-426614174000', 'a.b_c'])
      assert.ok(NODE_ID_RE.test(ok), ok);
    for (const bad of ['', '-x', 'a b', 'x!', 'a/b', 'a:b', 'x'.repeat(65)]) assert.ok(!NODE_ID_RE.test(bad), bad);
  });
});

describe('the agent link config', () => {
  it('websocket or both needs a ws:// or wss:// url', () => {
    assert.throws(() => loadAgentConfig(undefined, ['link.mode=websocket'], {}), /link\.websocket\.url/);
    assert.throws(
      () => loadAgentConfig(undefined, ['link.mode=both', 'link.websocket.url=http://x/api/v1/ws'], {}),
      /link\.websocket\.url/,
    );
    const c = loadAgentConfig(undefined, ['link.mode=websocket', 'link.websocket.url=wss://m:3926/api/v1/ws'], {});
    assert.equal(c.link.mode, 'websocket');
    assert.equal(loadAgentConfig(undefined, [], {}).link.mode, 'multicast');
  });
});
