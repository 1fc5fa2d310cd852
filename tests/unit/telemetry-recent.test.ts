/**
 * The in-memory recent history (manager/telemetry/recent.ts): one sample per resource report,
 * oldest first, within the window and at most max_samples per node (a ring), nulls kept as null,
 * float32 figures read back as written, and the memory a node costs at the defaults.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { ResourceData } from '../../common/protocol.js';
import { BYTES_PER_SAMPLE, RECENT_FIELDS, RecentHistory, sampleOf } from '../../manager/telemetry/recent.js';
import { fakeResourceData } from '../../testkit/bodies.js';

/** A report with two disks (50 %, 95.5 %) and two GPUs (one without compute usage). */
function report(over: Partial<ResourceData['resource']['cpu']> = {}): ResourceData {
  const r = fakeResourceData('10.0.0.5', 50);
  Object.assign(r.resource.cpu, over);
  r.resource.disk.push({
    device: '/dev/sdb1',
    mount_point: '/data',
    total: 2000,
    used: 1910,
    free: 90,
    usage_percent: 95.5,
  });
  r.resource.gpu.push({
    ...(r.resource.gpu[0] as ResourceData['resource']['gpu'][number]),
    index: 1,
    compute_usage: null,
    temperature: 48,
  });
  return r;
}

const T0 = Date.parse('2026-11-21T08:00:00.000Z');

describe('telemetry recent history', () => {
  it('a sample holds the figures of a report: cpu, memory, power, hottest GPU, busiest GPU, fullest disk', () => {
    assert.deepEqual(sampleOf(report()), [50, 51.5, 25, 12, 60, 30, 95.5]);
    const r = report({ temperature: null, power: null });
    r.resource.gpu = [];
    r.resource.disk = [];
    assert.deepEqual(sampleOf(r), [50, null, 25, null, null, null, null]);
  });

  it('returns samples oldest first with ISO times, figures as written, nulls as null', () => {
    let now = T0;
    const h = new RecentHistory(60_000, 10, () => now);
    const r = report({ usage_percent: 51.3, temperature: null });
    h.add('1-1-0', r, T0 - 2000);
    h.add('1-1-0', report(), T0 - 1000);
    now = T0;
    const v = h.view('1-1-0');
    assert.ok(v);
    assert.equal(v.node, '1-1-0');
    assert.equal(v.window_ms, 60_000);
    assert.equal(v.samples.length, 2);
    assert.deepEqual(v.samples[0], {
      at: '2026-11-21T07:59:58.000Z',
      cpu_usage_percent: 51.3,
      cpu_temperature: null,
      memory_usage_percent: 25,
      cpu_power: 12,
      gpu_temperature_max: 60,
      gpu_usage_max: 30,
      disk_usage_percent_max: 95.5,
    });
    assert.equal(v.samples[1]?.at, '2026-11-21T07:59:59.000Z');
    assert.deepEqual(Object.keys(v.samples[1] ?? {}), ['at', ...RECENT_FIELDS]);
    assert.equal(h.view('9-9-9'), null);
  });

  it('keeps at most max_samples (the oldest overwritten) and only the window', () => {
    let now = T0;
    const h = new RecentHistory(10_000, 5, () => now);
    for (let i = 0; i < 12; i++) h.addFigures('n', T0 + i * 1000, [i, null, null, null, null, null, null]);
    now = T0 + 11_000;
    const all = h.view('n');
    assert.deepEqual(
      all?.samples.map((s) => s.cpu_usage_percent),
      [7, 8, 9, 10, 11],
    );
    assert.deepEqual(h.size(), { nodes: 1, samples: 5 });
    // Later: only what is within the window is shown.
    now = T0 + 19_500;
    assert.deepEqual(
      h.view('n')?.samples.map((s) => s.cpu_usage_percent),
      [10, 11],
    );
    // since narrows further.
    assert.deepEqual(
      h.view('n', T0 + 11_000)?.samples.map((s) => s.cpu_usage_percent),
      [11],
    );
    now = T0 + 60_000;
    assert.deepEqual(h.view('n')?.samples, []);
  });

  it('times far apart (past the 32-bit offset) and a clock step back are kept right', () => {
    let now = T0;
    const h = new RecentHistory(100 * 86_400_000, 10, () => now);
    h.addFigures('n', T0, [1, null, null, null, null, null, null]);
    h.addFigures('n', T0 - 3_600_000, [2, null, null, null, null, null, null]);
    const t2 = T0 + 60 * 86_400_000;
    h.addFigures('n', t2, [3, null, null, null, null, null, null]);
    now = t2;
    const s = h.view('n')?.samples ?? [];
    // The two first are 60 days before the third: beyond ±24 days of a rebase they are dropped.
    assert.deepEqual(
      s.map((x) => [x.at, x.cpu_usage_percent]),
      [[new Date(t2).toISOString(), 3]],
    );
    const h2 = new RecentHistory(100 * 86_400_000, 10, () => now);
    h2.addFigures('n', T0, [1, null, null, null, null, null, null]);
    h2.addFigures('n', T0 + 30 * 86_400_000, [2, null, null, null, null, null, null]);
    h2.addFigures('n', T0 + 50 * 86_400_000, [3, null, null, null, null, null, null]);
    now = T0 + 50 * 86_400_000;
    assert.deepEqual(
      h2.view('n')?.samples.map((x) => [x.at, x.cpu_usage_percent]),
      [
        [new Date(T0 + 30 * 86_400_000).toISOString(), 2],
        [new Date(T0 + 50 * 86_400_000).toISOString(), 3],
      ],
    );
  });

  it('starts small and costs at most 12.5 KB per node once full at the defaults (360 samples)', (t) => {
    assert.equal(BYTES_PER_SAMPLE, 32);
    const h = new RecentHistory(1_800_000, 360, () => T0);
    h.addFigures('1-1-0', T0, [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(h.bytes(), 8 * 32, 'a ring starts with 8 slots');
    for (let k = 1; k < 400; k++) h.addFigures('1-1-0', T0 + k * 5000, [k, 2, 3, 4, 5, 6, 7]);
    assert.equal(h.bytes(), 11_520, 'and grows to max_samples, no further');
    // Growth kept every sample in order; past 360 the oldest went.
    const v = h.view('1-1-0', 0);
    assert.equal(v?.samples.length, 360);
    assert.equal(v?.samples[0]?.cpu_usage_percent, 40);
    assert.equal(v?.samples[359]?.cpu_usage_percent, 399);
    assert.ok(v?.samples.every((x, i) => x.cpu_usage_percent === 40 + i));

    // Measured: buffers plus the objects around them, over 2000 nodes with full rings.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const used = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const nodes = 2000;
    const names = Array.from({ length: nodes }, (_, i) => `${i % 32}-${Math.floor(i / 32)}-0`);
    const before = used();
    const big = new RecentHistory(1_800_000, 360, () => T0);
    for (const n of names) for (let k = 0; k < 360; k++) big.addFigures(n, T0 + k * 5000, [1, 2, 3, 4, 5, 6, 7]);
    const perNode = (used() - before) / nodes;
    assert.equal(big.size().samples, nodes * 360);
    assert.ok(perNode <= 12.5 * 1024, `measured ${Math.round(perNode)} bytes per node`);
    t.diagnostic(`recent history: ${Math.round(perNode)} bytes per node measured at 360 samples`);
  });
});
