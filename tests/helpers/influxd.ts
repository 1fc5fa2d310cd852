/**
 * For the telemetry tests: a private InfluxDB 1.x (`influxd` from the Debian package `influxdb`)
 * in a temp dir on free 127.0.0.1 ports, that can be stopped and started again on the same data;
 * an InfluxQL query helper; and report bodies in the spec's shape.
 *
 * Nothing of the system's InfluxDB is used: no /etc/influxdb, no port 8086, no /var/lib/influxdb.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HeartbeatBody, HeartbeatData, ResourceBody, ResourceData } from '../../common/protocol.js';
import { freePort, type Proc, startProcess, waitFor } from './daemons.js';

/** The influxd binary (MUSTER_TEST_INFLUXD overrides). */
export const INFLUXD = process.env.MUSTER_TEST_INFLUXD ?? '/usr/bin/influxd';

/** A reason when influxd is not installed (for needs()). */
export function missingInfluxd(): string | false {
  return existsSync(INFLUXD) ? false : `needs ${INFLUXD} (Debian package influxdb; make test installs it)`;
}

/** One statement's result of GET /query. */
export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** A private influxd. */
export interface Influxd {
  /** Base URL, http://127.0.0.1:<port>. */
  readonly url: string;
  readonly httpPort: number;
  /** Its temp dir (config, meta, data, wal). */
  readonly dir: string;
  /** Everything it printed, over all its runs. */
  output(): string;
  /** Whether it runs now. */
  running(): boolean;
  /** Starts it (again, on the same dirs and ports) and waits until GET /ping answers 204. */
  start(): Promise<void>;
  /** SIGTERM, and waits until it has exited (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Runs InfluxQL `q` (on `db` when given) and returns the first statement's series; throws on an error. */
  query(q: string, db?: string): Promise<InfluxSeries[]>;
  /** Stops it and removes its dir. */
  destroy(): Promise<void>;
}

/** Starts a private influxd; see Influxd. */
export async function startInfluxd(): Promise<Influxd> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-influxd-'));
  const httpPort = await freePort();
  const rpcPort = await freePort();
  const url = `http://127.0.0.1:${httpPort}`;
  const conf = path.join(dir, 'influxdb.conf');
  writeFileSync(
    conf,
    `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${dir}/meta"
  logging-enabled = false

[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
`,
  );
  let proc: Proc | null = null;
  let past = '';
  const ping = async () => {
    const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2000) });
    return res.status === 204;
  };
  const d: Influxd = {
    url,
    httpPort,
    dir,
    output: () => past + (proc?.output() ?? ''),
    running: () => proc !== null && proc.proc.exitCode === null && proc.proc.signalCode === null,
    async start() {
      if (d.running()) return;
      if (proc) past += proc.output();
      proc = startProcess(INFLUXD, ['-config', conf]);
      const p = proc;
      await waitFor(
        `influxd on ${url} answering /ping`,
        async () => {
          if (p.proc.exitCode !== null) throw new Error(`influxd exited ${p.proc.exitCode}:\n${p.output()}`);
          return ping();
        },
        30_000,
        100,
      );
    },
    async stop() {
      if (proc) await proc.stop('SIGTERM');
    },
    async query(q: string, db?: string) {
      const u = new URL('/query', url);
      u.searchParams.set('q', q);
      if (db) u.searchParams.set('db', db);
      // POST: InfluxQL that writes (CREATE, DROP) is refused over GET.
      const res = await fetch(u, { method: /^\s*(select|show)\b/i.test(q) ? 'GET' : 'POST' });
      const body = (await res.json()) as {
        error?: string;
        results?: { error?: string; series?: InfluxSeries[] }[];
      };
      const err = body.error ?? body.results?.[0]?.error;
      if (!res.ok || err) throw new Error(`InfluxQL ${q}: HTTP ${res.status} ${err ?? ''}`);
      return body.results?.[0]?.series ?? [];
    },
    async destroy() {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await d.start();
  return d;
}

/** `SELECT count(field) FROM measurement [WHERE ...]` as a number (0 when there are no points). */
export async function countPoints(d: Influxd, db: string, measurement: string, field: string, where = '') {
  const s = await d.query(`SELECT count("${field}") FROM "${measurement}"${where ? ` WHERE ${where}` : ''}`, db);
  const v = s[0]?.values[0]?.[1];
  return typeof v === 'number' ? v : 0;
}

// -----------------------------------------------------------------------------------------------
// Report bodies in the spec's shape, for boards that exist only in a test
// -----------------------------------------------------------------------------------------------

/** The heartbeat of a fake board at `box-slot-cpu` reporting from `hostIp`. */
export function fakeHeartbeatData(hostIp: string, box: number, slot: number, cpu = 0): HeartbeatData {
  return {
    box_id: box,
    slot_id: slot,
    cpu_id: cpu,
    srio_id: 0,
    host_ip: hostIp,
    hostname: `fake-${box}-${slot}-${cpu}`,
    service_port: 23980,
    box_type: '计算I型',
    board_type: 'GPU',
    cpu_type: 'Phytium,D2000/8',
    os_type: 'Kylin Linux Advanced Server V10',
    resource_type: 'GPU I',
    cpu_arch: 'aarch64',
    gpu: [{ index: 0, name: 'Jingjia JM9271' }],
  };
}

/**
 * A resource report of a fake board: one of each part (network, disk, gpu, component), so it
 * makes exactly one point in each of cpu, memory, network, disk, gpu and component. `seq` shows
 * in cpu.usage_percent (seq % 100) and in network rx_bytes (seq), so points can be told apart.
 */
export function fakeResourceData(hostIp: string, seq = 0): ResourceData {
  return {
    host_ip: hostIp,
    resource: {
      cpu: {
        usage_percent: seq % 100,
        load_avg_1m: 1.25,
        load_avg_5m: 1,
        load_avg_15m: 0.5,
        core_count: 8,
        core_allocated: 1,
        temperature: 51.5,
        voltage: null,
        current: null,
        power: 12,
      },
      memory: { total: 17179869184, used: 4294967296, free: 12884901888, usage_percent: 25 },
      network: [
        {
          interface: 'eth0',
          rx_bytes: seq,
          tx_bytes: 2000,
          rx_packets: 10,
          tx_packets: 20,
          rx_errors: 0,
          tx_errors: 0,
        },
      ],
      disk: [{ device: '/dev/sda1', mount_point: '/', total: 1000, used: 500, free: 500, usage_percent: 50 }],
      gpu: [
        {
          index: 0,
          name: 'Jingjia JM9271',
          compute_usage: 30,
          mem_usage: 12.5,
          mem_used: 1073741824,
          mem_total: 8589934592,
          temperature: 60,
          voltage: null,
          current: null,
          power: 35.5,
        },
      ],
    },
    component: [
      {
        instance_id: 'inst-1',
        uuid: `u-${hostIp}`,
        index: 0,
        config: { name: 'app', id: 'abc123' },
        state: 'RUNNING',
        resource: {
          cpu: { load: 12 },
          memory: { mem_used: 1024, mem_limit: 67108864 },
          network: { tx: null, rx: null },
        },
      },
    ],
  };
}

export const heartbeatBody = (d: HeartbeatData): HeartbeatBody => ({ api_version: 1, data: d });
export const resourceBody = (d: ResourceData): ResourceBody => ({ api_version: 1, data: d });
