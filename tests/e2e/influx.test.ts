/**
 * Telemetry to a real InfluxDB 1.x (a private influxd, tests/helpers/influxd.ts) from a real
 * manager process:
 *
 * 1. A real agent on loopback reports; its points are in InfluxDB in every measurement that
 *    applies, with the documented tags and field types, read back with InfluxQL.
 * 2. No loss within the bound: reports POSTed while influxd is stopped wait in the manager's
 *    buffer (nothing dropped) and are all in InfluxDB after it is back, exactly as many as posted.
 * 3. Beyond the bound: with a small buffer the dropped count is exactly the excess, a log line
 *    says so, and the newest points are the ones written.
 * 4. An unreachable InfluxDB at start: the manager starts, warns naming the URL, takes reports,
 *    and GET /api/v1/telemetry says reachable false with the points buffered.
 *
 * Reports for fake boards are POSTed by the test (the manager does not check their source), one
 * board after the other, so that two reports of one board never arrive in the same millisecond
 * (InfluxDB keeps one point per series and time).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NodeDetail } from '../../manager/views.js';
import { fakeHeartbeatData, fakeResourceData, heartbeatBody, resourceBody } from '../../testkit/bodies.js';
import { apiFetch, freePort, getJson, metric, type Proc, sets, startMuster, waitFor } from '../helpers/daemons.js';
import { countPoints, type Influxd, missingInfluxd, startInfluxd } from '../helpers/influxd.js';
import { needs } from '../helpers/need.js';

const IFACE = '127.0.0.1';
const RESOURCE_MEASUREMENTS = ['cpu', 'memory', 'network', 'disk', 'gpu', 'component'] as const;
/** A field every point of the measurement has (for count()). */
const COUNT_FIELD: Record<string, string> = {
  cpu: 'usage_percent',
  memory: 'total',
  network: 'rx_bytes',
  disk: 'total',
  gpu: 'temperature',
  component: 'state',
  node_state: 'state_code',
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TelemetryStatus {
  influxdb: {
    enabled: boolean;
    url: string;
    reachable: boolean | null;
    buffered: number;
    written: number;
    dropped: number;
    last_error: string | null;
  };
  recent: { nodes: number; samples: number };
}

async function post(url: string, body: unknown): Promise<void> {
  const res = await apiFetch(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) assert.fail(`POST ${url}: HTTP ${res.status} ${await res.text()}`);
}

async function text(url: string): Promise<string> {
  const res = await apiFetch(url, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

/** A manager on loopback with telemetry to `influxUrl`; rounds slow unless `fast`. */
async function startManager(
  tmp: string,
  name: string,
  influxUrl: string,
  over: Record<string, string | number> = {},
): Promise<{ proc: Proc; base: string; mcastPort: number }> {
  const httpPort = await freePort();
  const mcastPort = await freePort();
  const proc = startMuster([
    'manager',
    ...sets({
      'multicast.interface': IFACE,
      'multicast.port': mcastPort,
      'http.host': '127.0.0.1',
      'http.port': httpPort,
      'query.heartbeat_interval_ms': 600_000,
      'query.resource_interval_ms': 600_000,
      data_dir: path.join(tmp, name),
      'deploy.token_file': path.join(tmp, 'no-token'),
      'telemetry.influxdb.enabled': 'true',
      'telemetry.influxdb.url': influxUrl,
      'telemetry.influxdb.database': name,
      'telemetry.influxdb.flush_interval_ms': 200,
      'telemetry.influxdb.retry_max_ms': 500,
      'telemetry.influxdb.timeout_ms': 5000,
      ...over,
    }),
  ]);
  const base = `http://127.0.0.1:${httpPort}`;
  await waitFor('manager answering', () => getJson(`${base}/api/v1/status`), 30_000).catch((err: Error) =>
    assert.fail(`${err.message}\n${proc.output()}`),
  );
  return { proc, base, mcastPort };
}

/** Fake boards box 7, slots 1..n, at 127.77.<k>.<slot>. */
function boards(k: number, n: number) {
  // Loopback addresses: the test posts from this machine (the manager's report source check).
  return Array.from({ length: n }, (_, i) => ({ ip: `127.77.${k}.${i + 1}`, box: 7 + k, slot: i + 1 }));
}

/**
 * POSTs `n` resource reports numbered from `seq0` (network rx_bytes = seq), report `seq` for
 * board `seq % boards`. Resolves with the next seq.
 */
async function postResources(base: string, bs: { ip: string }[], n: number, seq0: number): Promise<number> {
  let seq = seq0;
  for (let k = 0; k < n; k++, seq++) {
    await post(`${base}/resource`, resourceBody(fakeResourceData(bs[seq % bs.length]!.ip, seq)));
    // Two reports of one board at least 2 ms apart, whatever the speed of the loop.
    if (seq % bs.length === bs.length - 1) await sleep(2);
  }
  return seq;
}

describe('telemetry to a real InfluxDB', needs(missingInfluxd()), () => {
  let tmp: string;
  let influx: Influxd;
  const procs: Proc[] = [];

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-influx-'));
    influx = await startInfluxd();
  });

  after(async () => {
    for (const p of procs) await p.stop();
    await influx?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  const logs = (p: Proc) => `--- manager:\n${p.output()}\n--- influxd:\n${influx.output()}`;

  it('a real agent on loopback: its reports are in every measurement that applies, with the documented tags', {
    timeout: 120_000,
  }, async () => {
    const db = 'm_agent';
    const m = await startManager(tmp, db, influx.url, {
      'query.heartbeat_interval_ms': 500,
      'query.resource_interval_ms': 1000,
    });
    procs.push(m.proc);
    const servicePort = await freePort();
    const agent = startMuster([
      'agent',
      ...sets({
        'multicast.interface': IFACE,
        'multicast.port': m.mcastPort,
        'service.host': '127.0.0.1',
        'service.port': servicePort,
        'identity.box_id': 6,
        'identity.slot_id': 3,
        'identity.cpu_id': 0,
        'report.jitter_ms': '100',
        data_dir: path.join(tmp, 'agent'),
      }),
    ]);
    procs.push(agent);
    const node = '6-3-0';
    const all = () => `${logs(m.proc)}\n--- agent:\n${agent.output()}`;
    try {
      const detail = await waitFor(
        `node ${node} with a resource report`,
        async () => {
          const d = await getJson<NodeDetail>(`${m.base}/api/v1/nodes/${node}`);
          return d.resource ? d : null;
        },
        30_000,
      );
      const r = detail.resource!;
      const applies = [
        'cpu',
        'memory',
        'node_state',
        ...(r.resource.network.length > 0 ? ['network'] : []),
        ...(r.resource.disk.length > 0 ? ['disk'] : []),
        ...(r.resource.gpu.length > 0 ? ['gpu'] : []),
        ...(r.component.length > 0 ? ['component'] : []),
      ];
      await waitFor(
        `points of ${node} in ${applies.join(', ')}`,
        async () => {
          for (const ms of applies)
            if ((await countPoints(influx, db, ms, COUNT_FIELD[ms]!, `"node" = '${node}'`)) === 0) return false;
          return true;
        },
        30_000,
        500,
      );

      const tagKeys = async (ms: string) =>
        (await influx.query(`SHOW TAG KEYS FROM "${ms}"`, db))[0]?.values.map((v) => v[0]) ?? [];
      const nodeTags = ['box', 'cpu', 'host_ip', 'hostname', 'node', 'slot'];
      for (const ms of applies) {
        const keys = await tagKeys(ms);
        for (const k of nodeTags) assert.ok(keys.includes(k), `${ms} has tag ${k}: ${keys}`);
      }
      if (applies.includes('network')) assert.ok((await tagKeys('network')).includes('interface'));
      if (applies.includes('disk')) {
        const keys = await tagKeys('disk');
        assert.ok(keys.includes('device') && keys.includes('mount_point'), `${keys}`);
      }

      const cpu = (await influx.query(`SELECT * FROM cpu WHERE "node" = '${node}' ORDER BY time DESC LIMIT 1`, db))[0];
      assert.ok(cpu, 'a cpu point');
      const row = Object.fromEntries(cpu.columns.map((c, i) => [c, cpu.values[0]?.[i]]));
      assert.equal(row.box, '6');
      assert.equal(row.slot, '3');
      assert.equal(row.cpu, '0');
      assert.equal(row.hostname, os.hostname());
      assert.equal(row.host_ip, '127.0.0.1');
      assert.equal(typeof row.usage_percent, 'number');
      assert.equal(row.core_count, r.resource.cpu.core_count);

      const types = Object.fromEntries(
        ((await influx.query('SHOW FIELD KEYS FROM cpu', db))[0]?.values ?? []).map((v) => [v[0], v[1]]),
      );
      assert.equal(types.usage_percent, 'float');
      assert.equal(types.load_avg_1m, 'float');
      assert.equal(types.core_count, 'integer');
      const memTypes = Object.fromEntries(
        ((await influx.query('SHOW FIELD KEYS FROM memory', db))[0]?.values ?? []).map((v) => [v[0], v[1]]),
      );
      assert.equal(memTypes.total, 'integer');
      assert.equal(memTypes.usage_percent, 'float');

      const state = (
        await influx.query(`SELECT state, state_code FROM node_state WHERE "node" = '${node}' LIMIT 1`, db)
      )[0];
      assert.deepEqual(state?.values[0]?.slice(1), ['online', 0]);

      // The same reports feed the recent history and the status.
      const recent = await getJson<{ samples: { cpu_usage_percent: number | null }[] }>(
        `${m.base}/api/v1/nodes/${node}/recent`,
      );
      assert.ok(recent.samples.length > 0);
      assert.equal(typeof recent.samples[0]?.cpu_usage_percent, 'number');
      const st = await getJson<TelemetryStatus>(`${m.base}/api/v1/telemetry`);
      assert.equal(st.influxdb.enabled, true);
      assert.equal(st.influxdb.reachable, true);
      assert.ok(st.influxdb.written > 0);
      assert.equal(st.influxdb.dropped, 0);
    } catch (err) {
      (err as Error).message += `\n${all()}`;
      throw err;
    } finally {
      await agent.stop();
      await m.proc.stop();
    }
  });

  it('no loss within the bound: reports taken while influxd is down are all written after it is back', {
    timeout: 180_000,
  }, async () => {
    const db = 'm_noloss';
    const m = await startManager(tmp, db, influx.url, { 'telemetry.influxdb.batch_points': 100 });
    procs.push(m.proc);
    const bs = boards(0, 4);
    try {
      for (const b of bs) await post(`${m.base}/heartbeat`, heartbeatBody(fakeHeartbeatData(b.ip, b.box, b.slot)));
      let seq = await postResources(m.base, bs, 100, 0);
      const status = () => getJson<TelemetryStatus>(`${m.base}/api/v1/telemetry`);
      await waitFor('the first 100 reports written', async () => {
        const s = await status();
        return s.influxdb.buffered === 0 && s.influxdb.written >= 600 + 4;
      });
      const before = await status();

      await influx.stop();
      for (const b of bs) await post(`${m.base}/heartbeat`, heartbeatBody(fakeHeartbeatData(b.ip, b.box, b.slot)));
      seq = await postResources(m.base, bs, 100, seq);
      assert.equal(seq, 200);
      const page = await waitFor(
        'the manager holding the points of the outage',
        async () => {
          const p = await text(`${m.base}/metrics`);
          return metric(p, 'muster_manager_influx_points_buffered') === 600 + 4 ? p : null;
        },
        30_000,
      );
      assert.equal(metric(page, 'muster_manager_influx_points_dropped_total'), 0);
      const down = await waitFor('InfluxDB seen as unreachable', async () => {
        const s = await status();
        return s.influxdb.reachable === false ? s : null;
      });
      assert.equal(down.influxdb.dropped, 0);
      assert.equal(down.influxdb.written, before.influxdb.written, 'nothing written while down');
      assert.match(m.proc.output(), /is unreachable/);
      // Stay down for a few retries.
      await sleep(2000);

      await influx.start();
      const up = await waitFor(
        'the buffer written after influxd is back',
        async () => {
          const s = await status();
          return s.influxdb.buffered === 0 && s.influxdb.reachable === true ? s : null;
        },
        60_000,
      );
      assert.equal(up.influxdb.dropped, 0);
      assert.equal(up.influxdb.written, before.influxdb.written + 600 + 4);
      for (const ms of RESOURCE_MEASUREMENTS)
        assert.equal(await countPoints(influx, db, ms, COUNT_FIELD[ms]!), 200, `points in ${ms}`);
      // 8 heartbeats, plus the 4 "first heartbeat" transitions unless they fell in the same ms.
      const states = await countPoints(influx, db, 'node_state', 'state_code');
      assert.ok(states >= 8 && states <= 12, `node_state points: ${states}`);
      const ids = (await influx.query('SELECT rx_bytes FROM network', db))[0]?.values.map((v) => v[1]);
      assert.deepEqual(
        [...(ids ?? [])].sort((a, b) => Number(a) - Number(b)),
        Array.from({ length: 200 }, (_, i) => i),
      );
      assert.match(m.proc.output(), /reachable again/);
    } catch (err) {
      (err as Error).message += `\n${logs(m.proc)}`;
      throw err;
    } finally {
      if (!influx.running()) await influx.start();
      await m.proc.stop();
    }
  });

  it('beyond the bound: exactly the excess is dropped (the oldest), logged, and the newest are written', {
    timeout: 180_000,
  }, async () => {
    const db = 'm_bound';
    const m = await startManager(tmp, db, influx.url, {
      'telemetry.influxdb.buffer_points': 300,
      'telemetry.influxdb.batch_points': 50,
    });
    procs.push(m.proc);
    const bs = boards(1, 2);
    try {
      for (const b of bs) await post(`${m.base}/heartbeat`, heartbeatBody(fakeHeartbeatData(b.ip, b.box, b.slot)));
      const status = () => getJson<TelemetryStatus>(`${m.base}/api/v1/telemetry`);
      const ready = await waitFor('heartbeats written', async () => {
        const s = await status();
        return s.influxdb.written >= 2 && s.influxdb.buffered === 0 ? s : null;
      });

      await influx.stop();
      // 100 reports of 6 points: 600 for a buffer of 300. The first one makes the manager try (and
      // fail), so that the others come while it waits to retry.
      let seq = await postResources(m.base, bs, 1, 0);
      await waitFor('InfluxDB seen as unreachable', async () => (await status()).influxdb.reachable === false);
      seq = await postResources(m.base, bs, 99, seq);
      assert.equal(seq, 100);
      const s = await status();
      assert.equal(s.influxdb.buffered, 300);
      assert.equal(s.influxdb.dropped, 300);
      const page = await text(`${m.base}/metrics`);
      assert.equal(metric(page, 'muster_manager_influx_points_dropped_total', { reason: 'buffer_full' }), 300);
      assert.equal(metric(page, 'muster_manager_influx_points_buffered'), 300);
      const dropLine = m.proc
        .output()
        .split('\n')
        .find((l) => l.includes('buffer full') && l.includes('"reason":"buffer_full"'));
      assert.ok(dropLine, 'a log line says points were dropped');
      assert.match(dropLine, /"buffer_points":300/);

      await influx.start();
      const up = await waitFor(
        'the buffer written after influxd is back',
        async () => {
          const x = await status();
          return x.influxdb.buffered === 0 && x.influxdb.reachable === true ? x : null;
        },
        60_000,
      );
      assert.equal(up.influxdb.written, ready.influxdb.written + 300);
      assert.equal(up.influxdb.dropped, 300);
      for (const ms of RESOURCE_MEASUREMENTS)
        assert.equal(await countPoints(influx, db, ms, COUNT_FIELD[ms]!), 50, `points in ${ms}`);
      const ids = (await influx.query('SELECT rx_bytes FROM network', db))[0]?.values.map((v) => Number(v[1]));
      assert.deepEqual(
        [...(ids ?? [])].sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => 50 + i),
        'the newest 50 reports are the ones written',
      );
    } catch (err) {
      (err as Error).message += `\n${logs(m.proc)}`;
      throw err;
    } finally {
      if (!influx.running()) await influx.start();
      await m.proc.stop();
    }
  });

  it('InfluxDB unreachable at start: the manager runs, warns naming the URL, and buffers', {
    timeout: 120_000,
  }, async () => {
    const closed = await freePort();
    const url = `http://127.0.0.1:${closed}`;
    const m = await startManager(tmp, 'm_unreachable', url);
    procs.push(m.proc);
    try {
      await waitFor('the warning naming the URL', () =>
        m.proc
          .output()
          .split('\n')
          .some((l) => l.includes('"level":40') && l.includes(url) && l.includes('unreachable')),
      );
      const st = await getJson<{ version: string }>(`${m.base}/api/v1/status`);
      assert.ok(st.version);
      const b = boards(2, 1)[0]!;
      await post(`${m.base}/heartbeat`, heartbeatBody(fakeHeartbeatData(b.ip, b.box, b.slot)));
      await post(`${m.base}/resource`, resourceBody(fakeResourceData(b.ip, 1)));
      const s = await getJson<TelemetryStatus>(`${m.base}/api/v1/telemetry`);
      assert.equal(s.influxdb.enabled, true);
      assert.equal(s.influxdb.url, url);
      assert.equal(s.influxdb.reachable, false);
      // A heartbeat point, its "first heartbeat" transition, and the 6 points of the report.
      assert.ok(s.influxdb.buffered >= 7 && s.influxdb.buffered <= 8, JSON.stringify(s));
      assert.equal(s.influxdb.dropped, 0);
      assert.match(s.influxdb.last_error ?? '', /ECONNREFUSED/);
      const recent = await getJson<{ samples: unknown[] }>(`${m.base}/api/v1/nodes/${b.box}-${b.slot}-0/recent`);
      assert.equal(recent.samples.length, 1);
    } catch (err) {
      (err as Error).message += `\n${m.proc.output()}`;
      throw err;
    } finally {
      await m.proc.stop();
    }
  });
});
