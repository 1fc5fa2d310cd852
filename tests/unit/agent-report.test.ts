/**
 * Reports assembled from the collectors' parts (agent/link/report.ts): every field of the spec's
 * heartbeat and resource bodies is filled by the collector that measures it, and both bodies
 * match the protocol schemas; a sampler runs each collector on its own config key's interval.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { CollectorDef } from '../../agent/collectors/collector.js';
import { COLLECTORS } from '../../agent/collectors/index.js';
import { loadAgentConfig } from '../../agent/config.js';
import { ReportAssembler } from '../../agent/link/report.js';
import type { Sample } from '../../agent/sampler.js';
import { Sampler } from '../../agent/sampler.js';
import { HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import { compile } from '../../common/validate.js';
import { labelsOf } from '../../manager/targets.js';

const cfg = loadAgentConfig(undefined, ['identity.box_id=3', 'identity.slot_id=4', 'identity.cpu_type=FT-2000/4'], {});
const log = pino({ level: 'silent' });

/** Samples by collector name. */
const SAMPLES: Record<string, unknown> = {
  cpu: { usage_percent: 12.5, core_count: 8 },
  load: { load_avg_1m: 1.5, load_avg_5m: 1, load_avg_15m: 0.5 },
  memory: { total: 1000, used: 400, free: 600, usage_percent: 40 },
  network: [{ interface: 'eth0', rx_bytes: 1, rx_packets: 2, rx_errors: 0, tx_bytes: 3, tx_packets: 4, tx_errors: 0 }],
  disk: [{ device: '/dev/sda1', mount_point: '/', total: 100, used: 40, free: 60, usage_percent: 40 }],
  sensors: { temperature: 45.5, voltage: 0.9, current: 2, power: 1.8 },
  gpu: [
    {
      index: 0,
      name: 'Tesla T4',
      compute_usage: 5,
      mem_usage: 1,
      mem_used: 1,
      mem_total: 100,
      temperature: 40,
      voltage: null,
      current: null,
      power: 20,
    },
  ],
  identity: { cpu_type: 'FT-2000/4', os_type: 'Kylin V10', cpu_arch: 'aarch64' },
  components: { components: [], coreAllocated: 2 },
};
const source = {
  latest<T>(def: CollectorDef<T>): Sample<T> {
    return { value: SAMPLES[def.name] as T, at: 1 };
  },
};

describe('ReportAssembler', () => {
  const a = new ReportAssembler(COLLECTORS, source, { identity: cfg.identity, servicePort: 23980, hostname: 'b1' });

  it('builds a heartbeat from the config and the identity and gpu collectors', () => {
    const hb = a.heartbeat('10.0.0.5');
    assert.equal(compile(HeartbeatBody).check(hb).ok, true, JSON.stringify(hb));
    assert.equal(hb.data.box_id, 3);
    assert.equal(hb.data.slot_id, 4);
    assert.equal(hb.data.host_ip, '10.0.0.5');
    assert.equal(hb.data.service_port, 23980);
    assert.equal(hb.data.cpu_type, 'FT-2000/4');
    assert.equal(hb.data.os_type, 'Kylin V10');
    assert.equal(hb.data.cpu_arch, 'aarch64');
    assert.deepEqual(hb.data.gpu, [{ index: 0, name: 'Tesla T4' }]);
    assert.equal('labels' in hb.data, false, 'no labels extension without config labels');
  });

  it('sends config labels as the heartbeat labels extension, read back by target resolution', () => {
    const labeled = new ReportAssembler(COLLECTORS, source, {
      identity: cfg.identity,
      servicePort: 23980,
      hostname: 'b1',
      labels: { rack: 'r3', role: 'inference' },
    });
    const hb = labeled.heartbeat('10.0.0.5');
    assert.equal(compile(HeartbeatBody).check(hb).ok, true);
    assert.deepEqual(labelsOf(hb.data), { rack: 'r3', role: 'inference' });
  });

  it('builds a resource report with each collector part in place', () => {
    const r = a.resource('10.0.0.5');
    assert.equal(compile(ResourceBody).check(r).ok, true, JSON.stringify(r));
    assert.deepEqual(r.data.resource.cpu, {
      usage_percent: 12.5,
      load_avg_1m: 1.5,
      load_avg_5m: 1,
      load_avg_15m: 0.5,
      core_count: 8,
      core_allocated: 2,
      temperature: 45.5,
      voltage: 0.9,
      current: 2,
      power: 1.8,
    });
    assert.deepEqual(r.data.resource.memory, SAMPLES.memory);
    assert.deepEqual(r.data.resource.network, SAMPLES.network);
    assert.deepEqual(r.data.resource.disk, SAMPLES.disk);
    assert.deepEqual(r.data.resource.gpu, SAMPLES.gpu);
    assert.deepEqual(r.data.component, []);
  });
});

describe('Sampler', () => {
  it('runs a collector on the interval of its own config key, skips a disabled one', async () => {
    let fast = 0;
    let slow = 0;
    const defs: CollectorDef<number>[] = [
      {
        name: 'fast',
        interval: 'interval_ms',
        create: () => ({ name: 'fast', initial: 0, collect: async () => ++fast }),
      },
      {
        name: 'slow',
        interval: 'disk_interval_ms',
        create: () => ({ name: 'slow', initial: 0, collect: async () => ++slow }),
      },
      {
        name: 'off',
        interval: 'interval_ms',
        enabled: () => false,
        create: () => ({ name: 'off', initial: -1, collect: async () => assert.fail('a disabled collector ran') }),
      },
    ];
    const config = { ...cfg.collect, interval_ms: 20, disk_interval_ms: 10_000, timeout_ms: 1000 };
    const s = new Sampler(defs as CollectorDef<unknown>[], { procRoot: '/proc', sysRoot: '/sys', config, log });
    await s.start();
    await new Promise((r) => setTimeout(r, 150));
    s.stop();
    assert.ok(fast >= 3, `fast ran ${fast} times`);
    assert.equal(slow, 1, 'slow ran once (its first sample)');
    assert.equal(s.latest(defs[2] as CollectorDef<number>).value, -1, 'disabled: its initial value');
    assert.equal(s.latest(defs[1] as CollectorDef<number>).value, 1);
  });

  it('runs collectors of one interval on one timer; one that hangs is not re-entered and delays no other', async () => {
    let quick = 0;
    let stuckCalls = 0;
    const defs: CollectorDef<number>[] = [
      {
        name: 'quick',
        interval: 'interval_ms',
        create: () => ({ name: 'quick', initial: 0, collect: async () => ++quick }),
      },
      {
        name: 'stuck',
        interval: 'interval_ms',
        // The first sample comes at once; every later run hangs and ignores the abort signal.
        create: () => ({
          name: 'stuck',
          initial: 0,
          collect: () => (++stuckCalls === 1 ? Promise.resolve(1) : new Promise<number>(() => {})),
        }),
      },
    ];
    const config = { ...cfg.collect, interval_ms: 20, timeout_ms: 10_000 };
    const s = new Sampler(defs as CollectorDef<unknown>[], { procRoot: '/proc', sysRoot: '/sys', config, log });
    await s.start();
    await new Promise((r) => setTimeout(r, 200));
    s.stop();
    assert.ok(quick >= 4, `quick ran ${quick} times beside a hung collector`);
    assert.equal(stuckCalls, 2, 'the hung collector is not started again while its run is in flight');
    assert.equal(s.latest(defs[1] as CollectorDef<number>).value, 1, 'its last good sample stays');
  });
});
