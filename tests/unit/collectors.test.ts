/**
 * The agent's metric collectors against recorded kernel trees (tests/fixtures/): every expected
 * value below is worked out by hand from the fixture files' numbers.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { CollectorContext } from '../../agent/collectors/collector.js';
import { cpuUsage, createCpuCollector, parseProcStat } from '../../agent/collectors/cpu.js';
import {
  createDiskCollector,
  decodeMountField,
  parseMounts,
  type StatfsFn,
  type StatfsResult,
} from '../../agent/collectors/disk.js';
import { createGpuCollector, parseNvidiaSmiCsv } from '../../agent/collectors/gpu.js';
import {
  cpuTypeFromCpuinfo,
  createIdentityCollector,
  identityCollector,
  prettyNameFromOsRelease,
} from '../../agent/collectors/identity.js';
import { COLLECTORS } from '../../agent/collectors/index.js';
import { createLoadCollector, parseLoadavg } from '../../agent/collectors/load.js';
import { createMemoryCollector, parseMeminfo } from '../../agent/collectors/memory.js';
import { createNetworkCollector } from '../../agent/collectors/network.js';
import {
  createSensorsCollector,
  pickTemperature,
  readHwmonChip,
  readThermalZones,
  SENSOR_REDISCOVER_MS,
} from '../../agent/collectors/sensors.js';
import { type AgentConfig, loadAgentConfig } from '../../agent/config.js';
import type { Logger } from '../../common/log.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const PHYTIUM = path.join(FIXTURES, 'phytium-d2000');
const X86 = path.join(FIXTURES, 'x86-coretemp');
const NO_SENSORS = path.join(FIXTURES, 'no-sensors');
const FAKE_SMI = path.join(FIXTURES, 'bin/fake-nvidia-smi');
const SMI_CSV = path.join(FIXTURES, 'nvidia-smi');

const MIB = 1024 * 1024;

/** The shipped `collect` defaults (config/agent.yaml), not influenced by the environment. */
const DEFAULTS: AgentConfig['collect'] = loadAgentConfig(undefined, undefined, {}).collect;

/** One JSON line pino wrote: level 40 = warn. */
type LogRecord = { level: number; msg: string; [k: string]: unknown };

/** A logger that keeps its records, for checking what was warned about. */
function capturingLog(): { log: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { log, records };
}
const warnings = (records: readonly LogRecord[]): LogRecord[] => records.filter((r) => r.level === 40);

/** A context for a recorded tree: shipped defaults, `proc_root`/`sys_root` under `root`, then `over`. */
function ctxFor(
  root: string,
  over: Partial<AgentConfig['collect']> = {},
  log: Logger = pino({ level: 'silent' }),
): CollectorContext {
  const config = { ...DEFAULTS, proc_root: path.join(root, 'proc'), sys_root: path.join(root, 'sys'), ...over };
  return { procRoot: config.proc_root, sysRoot: config.sys_root, config, log };
}

/** The signal the sampler would pass: aborts after collect.timeout_ms. */
const signalFor = (ctx: CollectorContext): AbortSignal => AbortSignal.timeout(ctx.config.timeout_ms);

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'muster-collectors-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('defaults', () => {
  test('the tests start from the shipped collect section', () => {
    assert.equal(DEFAULTS.proc_root, '/proc');
    assert.deepEqual(DEFAULTS.network_exclude, ['lo', 'veth*']);
    assert.equal(DEFAULTS.cpu_temperature_sensor, '');
    assert.equal(DEFAULTS.cpu_power_chip, '');
  });
});

describe('cpu', () => {
  // phytium aggregate: user 1159293 nice 3009 system 458118 idle 36193760 iowait 22198 irq 0
  // softirq 7654 steal 0 → total 37844032, idle+iowait 36215958, busy 1628074 → 4.3021 %.
  test('phytium: usage since boot and 8 cores', async () => {
    const ctx = ctxFor(PHYTIUM);
    assert.deepEqual(await createCpuCollector(ctx).collect(signalFor(ctx)), { usage_percent: 4.3, core_count: 8 });
  });

  // x86: total 2010090+4806+524036+34946625+57025+0+22288 = 37564870, idle 35003650, busy 2561220 → 6.818 %.
  test('x86: usage since boot and 4 cores', async () => {
    const ctx = ctxFor(X86);
    assert.deepEqual(await createCpuCollector(ctx).collect(signalFor(ctx)), { usage_percent: 6.82, core_count: 4 });
  });

  // no-sensors: total 84211+30122+1622870+4410+1873 = 1743486, idle 1627280, busy 116206 → 6.665 %.
  test('no-sensors: usage since boot and 2 cores', async () => {
    const ctx = ctxFor(NO_SENSORS);
    assert.deepEqual(await createCpuCollector(ctx).collect(signalFor(ctx)), { usage_percent: 6.67, core_count: 2 });
  });

  test('usage between two samples, iowait going down, counters reset', async () => {
    const root = path.join(tmp, 'cpu');
    await mkdir(path.join(root, 'proc'), { recursive: true });
    const original = await readFile(path.join(PHYTIUM, 'proc/stat'), 'utf8');
    const rest = original.slice(original.indexOf('\n'));
    const writeAggregate = (v: number[]) => writeFile(path.join(root, 'proc/stat'), `cpu  ${v.join(' ')}${rest}`);
    const base = [1159293, 3009, 458118, 36193760, 22198, 0, 7654, 0, 0, 0];

    await writeAggregate(base);
    const ctx = ctxFor(root);
    const cpu = createCpuCollector(ctx);
    assert.equal((await cpu.collect(signalFor(ctx))).usage_percent, 4.3);

    // user +300, system +100, idle +550, iowait +50: total +1000, idle +600 → 40 %.
    const second = [1159593, 3009, 458218, 36194310, 22248, 0, 7654, 0, 0, 0];
    await writeAggregate(second);
    assert.deepEqual(await cpu.collect(signalFor(ctx)), { usage_percent: 40, core_count: 8 });

    // user +200, idle +800, iowait -10 (proc(5): iowait may decrease): total +990, idle +790 → 20.20 %.
    const third = [1159793, 3009, 458218, 36195110, 22238, 0, 7654, 0, 0, 0];
    await writeAggregate(third);
    assert.equal((await cpu.collect(signalFor(ctx))).usage_percent, 20.2);

    // A fully busy interval in which iowait went down: user +1000, iowait -20 → total +980,
    // idle+iowait -20 (clamped to 0) → 100 %, not the since-boot figure.
    const busy = [1160793, 3009, 458218, 36195110, 22218, 0, 7654, 0, 0, 0];
    await writeAggregate(busy);
    assert.equal((await cpu.collect(signalFor(ctx))).usage_percent, 100);

    // guest/guest_nice (already in user/nice) grow: no effect on the total. user +50, idle +50 → 50 %.
    const fourth = [1160843, 3009, 458218, 36195160, 22218, 0, 7654, 0, 400, 90];
    await writeAggregate(fourth);
    assert.equal((await cpu.collect(signalFor(ctx))).usage_percent, 50);

    // Counters lower than before (reset): since boot again. total 1000, idle 750+50 → 20 %.
    await writeAggregate([150, 0, 50, 750, 50, 0, 0, 0, 0, 0]);
    assert.equal((await cpu.collect(signalFor(ctx))).usage_percent, 20);
  });

  test('parse errors and edge cases', () => {
    assert.throws(() => parseProcStat('intr 1 2 3\nctxt 4\n'), /no aggregate cpu line/);
    assert.throws(() => parseProcStat('cpu  1 2 x 4\n'), /malformed cpu line/);
    assert.deepEqual(parseProcStat('cpu  10 0 10 80\ncpu0 10 0 10 80\n'), {
      times: { total: 100, idle: 80 },
      coreCount: 1,
    });
    assert.equal(cpuUsage({ total: 0, idle: 0 }), 0);
    assert.equal(cpuUsage({ total: 100, idle: 100 }, { total: 100, idle: 100 }), 0);
  });
});

describe('load', () => {
  test('phytium and x86 /proc/loadavg', async () => {
    for (const [root, want] of [
      [PHYTIUM, { load_avg_1m: 0.52, load_avg_5m: 0.58, load_avg_15m: 0.59 }],
      [X86, { load_avg_1m: 1.25, load_avg_5m: 0.87, load_avg_15m: 0.64 }],
      [NO_SENSORS, { load_avg_1m: 0, load_avg_5m: 0.01, load_avg_15m: 0.05 }],
    ] as const) {
      const ctx = ctxFor(root);
      assert.deepEqual(await createLoadCollector(ctx).collect(signalFor(ctx)), want);
    }
  });

  test('malformed text and a missing file throw', async () => {
    assert.throws(() => parseLoadavg('0.1 nope 0.3 1/2 3'), /malformed/);
    assert.throws(() => parseLoadavg(''), /malformed/);
    const ctx = ctxFor(path.join(tmp, 'absent'));
    await assert.rejects(createLoadCollector(ctx).collect(signalFor(ctx)), { code: 'ENOENT' });
  });
});

describe('memory', () => {
  // MemTotal 16337088 kB, MemAvailable 13456789 kB; used 2880299 kB; 2880299 / 16337088 = 17.630 %.
  test('phytium: kB are KiB, free is MemAvailable', async () => {
    const ctx = ctxFor(PHYTIUM);
    assert.deepEqual(await createMemoryCollector(ctx).collect(signalFor(ctx)), {
      total: 16337088 * 1024, // 16729178112
      free: 13456789 * 1024, // 13779751936
      used: 2880299 * 1024, // 2949426176
      usage_percent: 17.63,
    });
  });

  // MemTotal 8048576 kB, MemAvailable 3219876 kB; used 4828700 kB; 4828700 / 8048576 = 59.994 %.
  test('x86', async () => {
    const ctx = ctxFor(X86);
    assert.deepEqual(await createMemoryCollector(ctx).collect(signalFor(ctx)), {
      total: 8241741824,
      free: 3297153024,
      used: 4944588800,
      usage_percent: 59.99,
    });
  });

  // No MemAvailable: free = MemFree 812300 + Buffers 61204 + Cached 503328 = 1376832 kB;
  // used = 2009600 - 1376832 = 632768 kB; 632768 / 2009600 = 31.487 %.
  test('no-sensors: a kernel without MemAvailable', async () => {
    const ctx = ctxFor(NO_SENSORS);
    assert.deepEqual(await createMemoryCollector(ctx).collect(signalFor(ctx)), {
      total: 2009600 * 1024,
      free: 1376832 * 1024,
      used: 632768 * 1024,
      usage_percent: 31.49,
    });
  });

  test('parse errors', () => {
    assert.throws(() => parseMeminfo('MemFree: 1 kB\n'), /no MemTotal/);
    assert.throws(() => parseMeminfo('MemTotal: 10 kB\nCached: 1 kB\n'), /neither MemAvailable nor MemFree/);
  });
});

describe('network', () => {
  const phytiumEth0 = {
    interface: 'eth0',
    rx_bytes: 48213377120, // more than 8 digits: glued to the colon (`eth0:48213377120`)
    rx_packets: 36512840,
    rx_errors: 3,
    tx_bytes: 9876543210,
    tx_packets: 21877654,
    tx_errors: 0,
  };
  const phytiumDocker0 = {
    interface: 'docker0',
    rx_bytes: 1536290,
    rx_packets: 20131,
    rx_errors: 0,
    tx_bytes: 52116733,
    tx_packets: 31877,
    tx_errors: 0,
  };
  const phytiumEth1 = {
    interface: 'eth1',
    rx_bytes: 0,
    rx_packets: 0,
    rx_errors: 0,
    tx_bytes: 0,
    tx_packets: 0,
    tx_errors: 0,
  };

  test('phytium with the default excludes (lo, veth*): sorted by name', async () => {
    const ctx = ctxFor(PHYTIUM);
    assert.deepEqual(await createNetworkCollector(ctx).collect(signalFor(ctx)), [
      phytiumDocker0,
      phytiumEth0,
      phytiumEth1,
    ]);
  });

  test('x86: the default excludes drop lo and the veth, keep docker0', async () => {
    const ctx = ctxFor(X86);
    assert.deepEqual(await createNetworkCollector(ctx).collect(signalFor(ctx)), [
      {
        interface: 'docker0',
        rx_bytes: 350112,
        rx_packets: 4102,
        rx_errors: 0,
        tx_bytes: 8812301,
        tx_packets: 5233,
        tx_errors: 0,
      },
      {
        interface: 'eth0',
        rx_bytes: 734512890,
        rx_packets: 612334,
        rx_errors: 12,
        tx_bytes: 98123344,
        tx_packets: 401221,
        tx_errors: 1,
      },
    ]);
  });

  test('x86: no excludes, and an exclude list of exact names and globs', async () => {
    let ctx = ctxFor(X86, { network_exclude: [] });
    const all = await createNetworkCollector(ctx).collect(signalFor(ctx));
    assert.deepEqual(
      all.map((n) => n.interface),
      ['docker0', 'eth0', 'lo', 'veth9a1b2c3'],
    );
    assert.deepEqual(all[2], {
      interface: 'lo',
      rx_bytes: 1203344,
      rx_packets: 9871,
      rx_errors: 0,
      tx_bytes: 1203344,
      tx_packets: 9871,
      tx_errors: 0,
    });
    ctx = ctxFor(X86, { network_exclude: ['docker*', 'veth*', 'eth'] });
    assert.deepEqual(
      (await createNetworkCollector(ctx).collect(signalFor(ctx))).map((n) => n.interface),
      ['eth0', 'lo'],
    );
  });

  test('a missing /proc/net/dev gives []', async () => {
    const ctx = ctxFor(path.join(tmp, 'absent'));
    assert.deepEqual(await createNetworkCollector(ctx).collect(signalFor(ctx)), []);
  });
});

describe('disk', () => {
  const counters = (bsize: number, blocks: number, bfree: number, bavail: number): StatfsResult => ({
    bsize: BigInt(bsize),
    blocks: BigInt(blocks),
    bfree: BigInt(bfree),
    bavail: BigInt(bavail),
  });

  test('mount table escapes are decoded', () => {
    assert.equal(decodeMountField('/media/kylin/KINGSTON\\040USB'), '/media/kylin/KINGSTON USB');
    assert.equal(decodeMountField('/a\\011b\\012c\\134d'), '/a\tb\nc\\d');
    assert.equal(decodeMountField('/a\\134040'), '/a\\040');
    assert.deepEqual(parseMounts('/dev/sda1 /media/kylin/KINGSTON\\040USB vfat rw 0 0\n\nbad\n'), [
      { device: '/dev/sda1', mountPoint: '/media/kylin/KINGSTON USB', fstype: 'vfat' },
    ]);
  });

  test('phytium: mounts selected, escapes decoded, sizes as df computes them', async () => {
    const calls: string[] = [];
    const table: Record<string, StatfsResult> = {
      '/': counters(4096, 26214400, 20971520, 20971520),
      '/boot': counters(4096, 261888, 196416, 196416),
      '/boot/efi': counters(4096, 153290, 151810, 151810),
      '/data': counters(4096, 1000000, 600000, 550000),
      '/media/kylin/KINGSTON USB': counters(32768, 491520, 245760, 245760),
    };
    const fake: StatfsFn = async (mountPoint) => {
      calls.push(mountPoint);
      const r = table[mountPoint];
      if (!r) throw Object.assign(new Error(`ENOENT: ${mountPoint}`), { code: 'ENOENT' });
      return r;
    };
    const ctx = ctxFor(PHYTIUM);
    const disks = await createDiskCollector(ctx, { statfs: fake }).collect(signalFor(ctx));
    // Left out: pseudo filesystems, tmpfs, overlay, nsfs, nfs4 (fstypes), /var/lib/docker (same
    // device as /data, mounted earlier), /run/* and /var/lib/docker/* (mount globs).
    assert.deepEqual([...calls].sort(), ['/', '/boot', '/boot/efi', '/data', '/media/kylin/KINGSTON USB']);
    assert.deepEqual(disks, [
      // 26214400 blocks * 4096 = 100 GiB; used (26214400 - 20971520) * 4096; 5242880 / 26214400 = 20 %.
      {
        device: '/dev/mapper/klas-root',
        mount_point: '/',
        total: 107374182400,
        used: 21474836480,
        free: 85899345920,
        usage_percent: 20,
      },
      // used 65472 blocks of 261888 = 25 %.
      {
        device: '/dev/nvme0n1p2',
        mount_point: '/boot',
        total: 1072693248,
        used: 268173312,
        free: 804519936,
        usage_percent: 25,
      },
      // used 1480 blocks; 1480 / (1480 + 151810) = 0.9655 %.
      {
        device: '/dev/nvme0n1p1',
        mount_point: '/boot/efi',
        total: 627875840,
        used: 6062080,
        free: 621813760,
        usage_percent: 0.97,
      },
      // reserved blocks: used 400000, available 550000 → 400000 / 950000 = 42.105 % (not 40 %).
      {
        device: '/dev/mapper/klas-data',
        mount_point: '/data',
        total: 4096000000,
        used: 1638400000,
        free: 2252800000,
        usage_percent: 42.11,
      },
      // 491520 * 32768 = 15 GiB, half used.
      {
        device: '/dev/sda1',
        mount_point: '/media/kylin/KINGSTON USB',
        total: 16106127360,
        used: 8053063680,
        free: 8053063680,
        usage_percent: 50,
      },
    ]);
  });

  test('a real statfs on temp dirs listed in a temp mount table', async () => {
    const root = path.join(tmp, 'disk-real');
    const spaced = path.join(root, 'mnt', 'with space');
    await mkdir(spaced, { recursive: true });
    await mkdir(path.join(root, 'mnt', 'ram'), { recursive: true });
    await mkdir(path.join(root, 'mnt', 'skipme'), { recursive: true });
    await mkdir(path.join(root, 'proc', 'self'), { recursive: true });
    const enc = (p: string) => p.replaceAll('\\', '\\134').replaceAll(' ', '\\040');
    await writeFile(
      path.join(root, 'proc/self/mounts'),
      [
        `/dev/vdb1 ${enc(root)} ext4 rw,relatime 0 0`,
        `/dev/vdb2 ${enc(spaced)} xfs rw,relatime 0 0`,
        `tmpfs ${enc(path.join(root, 'mnt', 'ram'))} tmpfs rw,nosuid,nodev 0 0`,
        `/dev/vdb3 ${enc(path.join(root, 'mnt', 'skipme'))} ext4 rw 0 0`,
        '',
      ].join('\n'),
    );
    const ctx = ctxFor(root, { disk_exclude_mounts: [...DEFAULTS.disk_exclude_mounts, `${root}/mnt/skip*`] });
    const disks = await createDiskCollector(ctx).collect(signalFor(ctx));
    assert.deepEqual(
      disks.map((d) => [d.device, d.mount_point]),
      [
        ['/dev/vdb1', root],
        ['/dev/vdb2', spaced],
      ],
    );
    const s = await statfs(root, { bigint: true });
    for (const d of disks) {
      assert.equal(d.total, Number(s.blocks * s.bsize));
      assert.ok(Number.isSafeInteger(d.used) && d.used >= 0 && d.used <= d.total);
      assert.ok(Number.isSafeInteger(d.free) && d.free >= 0 && d.free <= d.total);
      assert.ok(d.usage_percent >= 0 && d.usage_percent <= 100);
    }
  });

  test('statfs errors leave the mount out; no mount table gives []', async () => {
    const root = path.join(tmp, 'disk-errors');
    await mkdir(path.join(root, 'proc', 'self'), { recursive: true });
    await writeFile(path.join(root, 'proc/self/mounts'), '/dev/sda2 / ext4 rw 0 0\n/dev/sdb1 /secret ext4 rw 0 0\n');
    const fake: StatfsFn = async (mp) => {
      if (mp === '/secret') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      return counters(4096, 100, 50, 50);
    };
    let ctx = ctxFor(root);
    assert.deepEqual(
      (await createDiskCollector(ctx, { statfs: fake }).collect(signalFor(ctx))).map((d) => d.mount_point),
      ['/'],
    );
    ctx = ctxFor(path.join(tmp, 'absent'));
    assert.deepEqual(await createDiskCollector(ctx, { statfs: fake }).collect(signalFor(ctx)), []);
  });

  test('a dead mount never hangs a sample and is not queried again while its statfs is pending', async () => {
    const root = path.join(tmp, 'disk-dead');
    await mkdir(path.join(root, 'proc', 'self'), { recursive: true });
    await writeFile(
      path.join(root, 'proc/self/mounts'),
      '/dev/sda2 / ext4 rw 0 0\n/dev/sdb1 /mnt/dead ext4 rw 0 0\n/dev/sda3 /home ext4 rw 0 0\n',
    );
    const calls = new Map<string, number>();
    // /mnt/dead hangs (like statfs on an NFS mount whose server is gone) until `release`.
    let release: (() => void) | undefined;
    let dead = true;
    const fake: StatfsFn = (mp) => {
      calls.set(mp, (calls.get(mp) ?? 0) + 1);
      if (mp !== '/mnt/dead') return Promise.resolve(counters(4096, 1000, 500, 500));
      if (!dead) return Promise.resolve(counters(4096, 1000, 250, 250));
      return new Promise((resolve) => {
        release = () => {
          dead = false;
          resolve(counters(4096, 1000, 250, 250));
        };
      });
    };
    const { log, records } = capturingLog();
    const timeoutMs = 200;
    const ctx = ctxFor(root, { timeout_ms: timeoutMs }, log);
    const disk = createDiskCollector(ctx, { statfs: fake });

    let started = performance.now();
    const first = await disk.collect(signalFor(ctx));
    let elapsed = performance.now() - started;
    assert.deepEqual(
      first.map((d) => d.mount_point),
      ['/', '/home'],
    );
    assert.ok(elapsed < timeoutMs + 250, `first sample took ${elapsed.toFixed(0)} ms`);
    assert.equal(calls.get('/mnt/dead'), 1);
    assert.equal(warnings(records).length, 1);
    assert.equal(warnings(records)[0]?.mount, '/mnt/dead');

    // The earlier statfs is still pending: not asked again, and nothing to wait for.
    started = performance.now();
    const second = await disk.collect(signalFor(ctx));
    elapsed = performance.now() - started;
    assert.deepEqual(
      second.map((d) => d.mount_point),
      ['/', '/home'],
    );
    // It did not wait for the deadline (a busy machine may still take tens of ms to sample).
    assert.ok(elapsed < timeoutMs, `second sample took ${elapsed.toFixed(0)} ms: it waited for the dead mount`);
    assert.equal(calls.get('/mnt/dead'), 1);
    assert.equal(calls.get('/'), 2);
    assert.equal(warnings(records).length, 1);

    // Once it answers, the mount is queried normally again.
    release?.();
    await new Promise((r) => setImmediate(r));
    assert.equal(records.filter((r) => r.msg.startsWith('statfs of a stuck mount answered')).length, 1);
    const third = await disk.collect(signalFor(ctx));
    assert.equal(calls.get('/mnt/dead'), 2);
    assert.deepEqual(
      third.find((d) => d.mount_point === '/mnt/dead'),
      {
        device: '/dev/sdb1',
        mount_point: '/mnt/dead',
        total: 4096000,
        used: 3072000,
        free: 1024000,
        usage_percent: 75,
      },
    );
  });
});

describe('sensors', () => {
  const nulls = { temperature: null, voltage: null, current: null, power: null };

  test('phytium, auto: scpi_sensors temperature; no power chip configured → null V/A/W', async () => {
    const ctx = ctxFor(PHYTIUM);
    // temp1_input 47250 m°C
    assert.deepEqual(await createSensorsCollector(ctx).collect(signalFor(ctx)), { ...nulls, temperature: 47.25 });
  });

  test('phytium with cpu_power_chip ina3221: the vdd_cpu channel in V, A, W', async () => {
    const ctx = ctxFor(PHYTIUM, { cpu_power_chip: 'ina3221' });
    // in1_input 852 mV, curr1_input 4120 mA, power1_input 3502000 µW (channel 1 is labelled vdd_cpu)
    assert.deepEqual(await createSensorsCollector(ctx).collect(signalFor(ctx)), {
      temperature: 47.25,
      voltage: 0.852,
      current: 4.12,
      power: 3.502,
    });
  });

  test('phytium: explicit cpu_temperature_sensor forms', async () => {
    for (const [sensor, want] of [
      ['scpi_sensors/T_CPU', 47.25], // chip/label
      ['scpi_sensors/temp1', 47.25], // chip/tempN
      ['scpi_sensors', 47.25], // bare chip
      ['soc_thermal', 45.5], // thermal zone type, temp 45500 m°C
    ] as const) {
      const ctx = ctxFor(PHYTIUM, { cpu_temperature_sensor: sensor });
      assert.equal((await createSensorsCollector(ctx).collect(signalFor(ctx))).temperature, want, sensor);
    }
  });

  test('phytium: a configured sensor or chip that is absent reads null and is warned about once', async () => {
    const { log, records } = capturingLog();
    const ctx = ctxFor(PHYTIUM, { cpu_temperature_sensor: 'scpi_sensors/T_GPU', cpu_power_chip: 'ina226' }, log);
    const sensors = createSensorsCollector(ctx);
    assert.deepEqual(await sensors.collect(signalFor(ctx)), nulls);
    assert.deepEqual(await sensors.collect(signalFor(ctx)), nulls);
    assert.deepEqual(
      warnings(records)
        .map((r) => r.sensor)
        .sort(),
      ['ina226', 'scpi_sensors/T_GPU'],
    );
  });

  test('the sysfs layout is discovered once per SENSOR_REDISCOVER_MS; a value gone makes the next sample discover again', async () => {
    const root = path.join(tmp, 'sensors-cache');
    cpSync(path.join(PHYTIUM, 'sys'), path.join(root, 'sys'), { recursive: true });
    const ctx = ctxFor(root);
    let clock = 1_000_000;
    const sensors = createSensorsCollector(ctx, () => clock);
    assert.equal((await sensors.collect(signalFor(ctx))).temperature, 47.25);
    // A value changes: read at once (values are read every sample).
    const hwmon = path.join(root, 'sys/class/hwmon');
    const chip = readdirSync(hwmon).find(
      (d) => readFileSync(path.join(hwmon, d, 'name'), 'utf8').trim() === 'scpi_sensors',
    );
    writeFileSync(path.join(hwmon, chip as string, 'temp1_input'), '51000\n');
    assert.equal((await sensors.collect(signalFor(ctx))).temperature, 51);
    // A new CPU chip: not looked for until the layout is discovered again.
    mkdirSync(path.join(hwmon, 'hwmon9'));
    writeFileSync(path.join(hwmon, 'hwmon9', 'name'), 'coretemp\n');
    writeFileSync(path.join(hwmon, 'hwmon9', 'temp1_input'), '60000\n');
    assert.equal((await sensors.collect(signalFor(ctx))).temperature, 51);
    clock += SENSOR_REDISCOVER_MS;
    assert.equal((await sensors.collect(signalFor(ctx))).temperature, 60);
    // It goes away: that sample misses its value, the next one discovers the layout again.
    rmSync(path.join(hwmon, 'hwmon9'), { recursive: true });
    assert.equal((await sensors.collect(signalFor(ctx))).temperature, 51);
    writeFileSync(path.join(hwmon, chip as string, 'temp1_input'), '49000\n');
    assert.equal((await sensors.collect(signalFor(ctx))).temperature, 49);
  });

  test('phytium: ina3221 chip read with channel labels inherited from inX_label', async () => {
    const chip = await readHwmonChip(path.join(PHYTIUM, 'sys/class/hwmon/hwmon1'));
    assert.ok(chip);
    assert.equal(chip.name, 'ina3221');
    assert.deepEqual(
      chip.in.map((i) => [i.key, i.label, i.value]),
      [
        ['in1', 'vdd_cpu', 0.852],
        ['in2', 'vdd_ddr', 1.204],
        ['in4', null, 0.041],
        ['in5', null, 0.015],
      ],
    );
    assert.deepEqual(
      chip.curr.map((i) => [i.key, i.label, i.value]),
      [
        ['curr1', 'vdd_cpu', 4.12],
        ['curr2', 'vdd_ddr', 1.53],
      ],
    );
    assert.deepEqual(
      chip.power.map((i) => [i.key, i.label, i.value]),
      [
        ['power1', 'vdd_cpu', 3.502],
        ['power2', 'vdd_ddr', 1.842],
      ],
    );
    assert.deepEqual(chip.temp, []);
  });

  test('auto mode falls back to a cpu/soc thermal zone when no cpu hwmon chip exists', async () => {
    const zones = await readThermalZones(path.join(PHYTIUM, 'sys'));
    assert.deepEqual(zones, [{ type: 'soc_thermal', temperature: 45.5 }]);
    assert.equal(pickTemperature([], zones, ''), 45.5);
    assert.equal(pickTemperature([], [{ type: 'acpitz', temperature: 27.8 }], ''), null);
  });

  test('x86, auto: max of coretemp (symlinked hwmon dirs), acpitz and nvme ignored', async () => {
    const ctx = ctxFor(X86);
    // Package id 0 52000, cores 49000/51000/48000/50000 m°C; acpitz 27800 and nvme 58850 are not the cpu.
    assert.deepEqual(await createSensorsCollector(ctx).collect(signalFor(ctx)), { ...nulls, temperature: 52 });
  });

  test('x86: explicit sensors', async () => {
    for (const [sensor, want] of [
      ['coretemp/Core 1', 51],
      ['coretemp/Package id 0', 52],
      ['x86_pkg_temp', 53], // thermal zone type
      ['acpitz', 27.8], // thermal zone type (also an hwmon chip name), 27800 m°C
      ['nvme/Composite', 58.85],
      ['coretemp/Core 7', null],
    ] as const) {
      const ctx = ctxFor(X86, { cpu_temperature_sensor: sensor });
      assert.equal((await createSensorsCollector(ctx).collect(signalFor(ctx))).temperature, want, sensor);
    }
  });

  test('no-sensors: all null, auto or configured', async () => {
    let ctx = ctxFor(NO_SENSORS);
    assert.deepEqual(await createSensorsCollector(ctx).collect(signalFor(ctx)), nulls);
    ctx = ctxFor(NO_SENSORS, { cpu_temperature_sensor: 'coretemp/Package id 0', cpu_power_chip: 'ina3221' });
    assert.deepEqual(await createSensorsCollector(ctx).collect(signalFor(ctx)), nulls);
  });
});

describe('gpu', () => {
  const saved = { csv: process.env.FAKE_NVIDIA_SMI_CSV, sleep: process.env.FAKE_NVIDIA_SMI_SLEEP };
  const setEnv = (csv: string | undefined, sleep?: string) => {
    if (csv === undefined) delete process.env.FAKE_NVIDIA_SMI_CSV;
    else process.env.FAKE_NVIDIA_SMI_CSV = csv;
    if (sleep === undefined) delete process.env.FAKE_NVIDIA_SMI_SLEEP;
    else process.env.FAKE_NVIDIA_SMI_SLEEP = sleep;
  };
  before(async () => {
    await chmod(FAKE_SMI, 0o755); // in case a checkout lost the mode
  });
  after(() => setEnv(saved.csv, saved.sleep));

  const twoGpus = [
    {
      index: 0,
      name: 'Tesla T4',
      compute_usage: 37,
      mem_usage: 13.33, // 2048 / 15360 MiB
      mem_used: 2048 * MIB, // 2147483648
      mem_total: 15360 * MIB, // 16106127360
      temperature: 46,
      voltage: null,
      current: null,
      power: 27.53,
    },
    {
      index: 1,
      name: 'NVIDIA GeForce RTX 3060',
      compute_usage: 0,
      mem_usage: 0.01, // 1 / 12288 MiB = 0.0081 %
      mem_used: 1048576,
      mem_total: 12884901888,
      temperature: 35,
      voltage: null,
      current: null,
      power: 17.12,
    },
  ];

  test('two GPUs: MiB to bytes, usage computed', async () => {
    setEnv(path.join(SMI_CSV, 'two-gpus.csv'));
    const ctx = ctxFor(PHYTIUM, { nvidia_smi: FAKE_SMI });
    assert.deepEqual(await createGpuCollector(ctx).collect(signalFor(ctx)), twoGpus);
  });

  test('[N/A] and [Not Supported] fields are null', async () => {
    setEnv(path.join(SMI_CSV, 'na-fields.csv'));
    const ctx = ctxFor(PHYTIUM, { nvidia_smi: FAKE_SMI });
    assert.deepEqual(await createGpuCollector(ctx).collect(signalFor(ctx)), [
      {
        index: 0,
        name: 'NVIDIA GeForce GT 1030',
        compute_usage: null,
        mem_usage: 14.24, // 285 / 2001 MiB = 14.2429 %
        mem_used: 285 * MIB, // 298844160
        mem_total: 2001 * MIB, // 2098200576
        temperature: 38,
        voltage: null,
        current: null,
        power: null,
      },
      {
        index: 1,
        name: 'Quadro P400',
        compute_usage: 3,
        mem_usage: null,
        mem_used: null,
        mem_total: null,
        temperature: null,
        voltage: null,
        current: null,
        power: null,
      },
    ]);
  });

  test('"No devices were found" (exit 6) gives []', async () => {
    setEnv('');
    const ctx = ctxFor(PHYTIUM, { nvidia_smi: FAKE_SMI });
    assert.deepEqual(await createGpuCollector(ctx).collect(signalFor(ctx)), []);
  });

  test('a missing nvidia-smi, or none configured, gives []', async () => {
    setEnv(path.join(SMI_CSV, 'two-gpus.csv'));
    for (const nvidia_smi of [path.join(tmp, 'no-such-dir/nvidia-smi'), '']) {
      const ctx = ctxFor(PHYTIUM, { nvidia_smi });
      assert.deepEqual(await createGpuCollector(ctx).collect(signalFor(ctx)), [], nvidia_smi);
    }
  });

  test('a hung nvidia-smi is killed within the timeout, then the next run works', async () => {
    setEnv(path.join(SMI_CSV, 'two-gpus.csv'), '5');
    const timeoutMs = 300;
    const ctx = ctxFor(PHYTIUM, { nvidia_smi: FAKE_SMI, timeout_ms: timeoutMs });
    const gpu = createGpuCollector(ctx);

    // Aborted by the sampler's signal.
    let started = performance.now();
    await assert.rejects(gpu.collect(signalFor(ctx)), /nvidia-smi (aborted|timed out)/);
    let elapsed = performance.now() - started;
    assert.ok(elapsed >= timeoutMs - 50 && elapsed < timeoutMs + 700, `took ${elapsed.toFixed(0)} ms`);

    // Killed by execFile's own timeout when the signal never aborts.
    started = performance.now();
    await assert.rejects(gpu.collect(new AbortController().signal), /nvidia-smi timed out after 300 ms/);
    elapsed = performance.now() - started;
    assert.ok(elapsed < timeoutMs + 700, `took ${elapsed.toFixed(0)} ms`);

    // The killed process has exited: the collector is not stuck.
    setEnv(path.join(SMI_CSV, 'two-gpus.csv'));
    assert.deepEqual(await gpu.collect(signalFor(ctx)), twoGpus);
  });

  test('parser: commas in names, blank lines, malformed lines', () => {
    const [g] = parseNvidiaSmiCsv('\n0, NVIDIA A100-SXM4-40GB, MIG 1g.5gb, 10, 1024, 40960, 33, 61.257\n\n');
    assert.equal(g?.name, 'NVIDIA A100-SXM4-40GB, MIG 1g.5gb');
    assert.equal(g?.mem_total, 40960 * MIB);
    assert.equal(g?.power, 61.26);
    assert.throws(() => parseNvidiaSmiCsv('Failed to initialize NVML: Driver/library version mismatch'), /unexpected/);
  });
});

describe('identity', () => {
  const osRelease = path.join(PHYTIUM, 'etc/os-release');

  test('phytium: cpu type from the Kylin aarch64 cpuinfo, os from PRETTY_NAME', async () => {
    const ctx = ctxFor(PHYTIUM);
    assert.deepEqual(await createIdentityCollector(ctx, { osReleasePath: osRelease }).collect(signalFor(ctx)), {
      cpu_type: 'Phytium,D2000/8',
      os_type: 'Kylin Linux Advanced Server V10 (Sword)',
      cpu_arch: os.machine(),
    });
  });

  test('through its registration, detected and overridden', async () => {
    const ctx = ctxFor(PHYTIUM);
    let c = identityCollector.create({ ...ctx, identity: { cpu_type: '', os_type: '' }, osReleasePath: osRelease });
    assert.deepEqual(await c.collect(signalFor(ctx)), {
      cpu_type: 'Phytium,D2000/8',
      os_type: 'Kylin Linux Advanced Server V10 (Sword)',
      cpu_arch: os.machine(),
    });
    c = identityCollector.create({
      ...ctx,
      identity: { cpu_type: 'FT-2000/4', os_type: 'UOS 20' },
      osReleasePath: osRelease,
    });
    assert.deepEqual(await c.collect(signalFor(ctx)), {
      cpu_type: 'FT-2000/4',
      os_type: 'UOS 20',
      cpu_arch: os.machine(),
    });
  });

  test('x86 cpuinfo model name', async () => {
    const ctx = ctxFor(X86);
    const id = await createIdentityCollector(ctx, { osReleasePath: osRelease }).collect(signalFor(ctx));
    assert.equal(id.cpu_type, 'Intel(R) Core(TM) i5-9500TE CPU @ 2.20GHz');
  });

  test('no cpuinfo: lscpu, else unknown; no os-release: os.type() os.release()', async () => {
    const ctx = ctxFor(NO_SENSORS);
    const lscpu = path.join(tmp, 'fake-lscpu');
    await writeFile(lscpu, '#!/bin/sh\necho "Architecture:        aarch64"\necho "Model name:          FTC663"\n');
    await chmod(lscpu, 0o755);
    const absent = path.join(tmp, 'absent/os-release');
    assert.deepEqual(
      await createIdentityCollector(ctx, { osReleasePath: absent, lscpuCommand: lscpu }).collect(signalFor(ctx)),
      { cpu_type: 'FTC663', os_type: `${os.type()} ${os.release()}`, cpu_arch: os.machine() },
    );
    const none = createIdentityCollector(ctx, { osReleasePath: absent, lscpuCommand: path.join(tmp, 'no-lscpu') });
    assert.equal((await none.collect(signalFor(ctx))).cpu_type, 'unknown');
  });

  test('parsers', () => {
    assert.equal(cpuTypeFromCpuinfo('processor\t: 0\nHardware\t: Phytium FT-2000/4\n'), 'Phytium FT-2000/4');
    assert.equal(cpuTypeFromCpuinfo('processor\t: 0\nBogoMIPS\t: 100.00\nCPU implementer\t: 0x70\n'), undefined);
    assert.equal(prettyNameFromOsRelease("NAME=x\nPRETTY_NAME='Ubuntu 22.04.4 LTS'\n"), 'Ubuntu 22.04.4 LTS');
    assert.equal(prettyNameFromOsRelease('PRETTY_NAME=Debian\\ 12\n'), 'Debian 12');
    assert.equal(prettyNameFromOsRelease('NAME="Kylin"\n'), undefined);
  });
});

describe('the collector registry', () => {
  test('registers every collector with the config key of its interval', () => {
    const ctx = ctxFor(PHYTIUM);
    assert.deepEqual(
      COLLECTORS.map((d) => [d.name, d.create(ctx).name, d.interval]),
      [
        ['cpu', 'cpu', 'interval_ms'],
        ['load', 'load', 'interval_ms'],
        ['memory', 'memory', 'interval_ms'],
        ['network', 'network', 'interval_ms'],
        ['disk', 'disk', 'disk_interval_ms'],
        ['sensors', 'sensors', 'interval_ms'],
        ['gpu', 'gpu', 'gpu_interval_ms'],
        ['identity', 'identity', 'disk_interval_ms'],
        ['components', 'components', 'interval_ms'],
      ],
    );
  });
});
