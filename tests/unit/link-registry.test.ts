/**
 * Linked nodes in the registry (docs/links.md "Linked nodes"): ids, liveness counted in the node's
 * own heartbeat intervals (not in query rounds), the views' LINK and metrics, max_nodes; and the
 * agent's link config check.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { loadAgentConfig } from '../../agent/config.js';
import { NODE_ID_RE } from '../../common/api/primitives.js';
import { reconnectDelay, reconnectWindow } from '../../common/link.js';
import { nodeRow, parseHeartbeat, parseLink } from '../../manager/records.js';
import { NO_POSITION, NodeRegistry } from '../../manager/registry.js';
import { Store } from '../../manager/store/store.js';
import { detail, summarize } from '../../manager/views.js';

const T = { suspect_after_rounds: 2, offline_after_rounds: 5 };
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

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

  it('a linked node put back from the store after a restart is linked at once, its liveness counted from the restart', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-linkstore-'));
    dirs.push(dir);
    const storeCfg = {
      file: 'muster.db',
      flush_interval_ms: 1000,
      retention: { days: 0, max_rows: 0 },
      cleanup_interval_ms: 60000,
      cleanup_batch_rows: 100,
    };
    const log = pino({ level: 'silent' });
    let now = 1_000_000;
    const before = new NodeRegistry(T, () => now);
    const s1 = Store.open(dir, storeCfg, log, new Registry());
    s1.setNodeSource((id) => nodeRow(before, id));
    before.ingestLinked('node-001', '10.0.0.5', { interval_ms: 10_000, hostname: 'h1', os_info: 'Linux' });
    now += 10_000;
    before.ingestLinked('node-001', '10.0.0.5', { interval_ms: 10_000, metrics: { cpu_usage: 7 } });
    before.ingestHeartbeat({
      box_id: 1,
      slot_id: 1,
      cpu_id: 0,
      host_ip: '10.0.0.9',
      hostname: 'mc',
    } as Parameters<NodeRegistry['ingestHeartbeat']>[0]);
    s1.touchNode('node-001');
    s1.touchNode('1-1-0');
    s1.close();

    // The manager restarts 5 minutes later: far more than 5 intervals since the last heartbeat.
    now += 300_000;
    const s2 = Store.open(dir, storeCfg, log, new Registry());
    const rows = s2.loadNodes();
    s2.close();
    assert.equal(parseLink(rows.find((r) => r.id === '1-1-0')?.link), null, 'a multicast board has no link state');
    const after = new NodeRegistry(T, () => now);
    after.restore(rows.map((r) => ({ ...r, heartbeat: parseHeartbeat(r.heartbeat), link: parseLink(r.link) })));
    const n = after.nodes.get('node-001');
    assert.ok(n?.link, 'restored as linked');
    assert.equal(summarize(after, n).link, 'ws');
    assert.equal(summarize(after, n).hostname, 'h1');
    assert.equal(summarize(after, n).cpu_percent, 7);
    assert.equal(n.link.interval_ms, 10_000);
    assert.equal(after.nodes.get('1-1-0')?.link, undefined, 'a multicast board is put back as one');
    // Its intervals count from the restart: online until it has missed 2 of them since then.
    after.endRound();
    assert.equal(n.state, 'online');
    now += 19_999;
    after.endRound();
    assert.equal(n.state, 'online');
    now += 1;
    after.endRound();
    assert.equal(n.state, 'suspect');
    // Reconnected: online again.
    after.ingestLinked('node-001', '10.0.0.5', { interval_ms: 10_000 });
    assert.equal(n.state, 'online');
    assert.equal(parseLink('{"interval_ms":0}'), null);
    assert.equal(parseLink('not json'), null);
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

describe('the reconnect backoff', () => {
  it('exponential, capped, with full jitter: uniform in [0, min(max, base × 2^attempt))', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 40].map((a) => reconnectWindow(a, 1000, 30_000)),
      [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000],
    );
    assert.equal(
      reconnectDelay(3, 1000, 30_000, () => 0),
      0,
    );
    assert.equal(
      reconnectDelay(3, 1000, 30_000, () => 0.999_999),
      7999,
    );
    // 10,000 boards losing the manager at one instant: their first reconnects spread over the
    // whole window (none of its tenths holds more than 12 %), not one millisecond.
    const delays = Array.from({ length: 10_000 }, () => reconnectDelay(0, 1000, 30_000));
    assert.ok(delays.every((d) => d >= 0 && d < 1000 && Number.isInteger(d)));
    const tenths = new Array(10).fill(0) as number[];
    for (const d of delays) (tenths[Math.floor(d / 100)] as number)++;
    assert.ok(Math.max(...tenths) < 1200 && Math.min(...tenths) > 800, JSON.stringify(tenths));
    const sameMs = new Map<number, number>();
    for (const d of delays) sameMs.set(d, (sameMs.get(d) ?? 0) + 1);
    assert.ok(Math.max(...sameMs.values()) < 40, 'at most a few dozen in any one millisecond');
  });
});
