/**
 * Reports as InfluxDB points (manager/telemetry/points.ts): measurements, tags, fields with one
 * fixed type each (integers with `i`, floats never with it, even when whole), nulls left out,
 * timestamps in ms, and their line protocol; the real writer (manager/telemetry/influx.ts)
 * against a stand-in InfluxDB, with its answers sorted into retry / create / reject.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { FieldType } from 'influx';
import type { HeartbeatData, ResourceData } from '../../common/protocol.js';
import type { ManagerConfig } from '../../manager/config.js';
import { classify, hostOptions, InfluxWriter, redactUrl } from '../../manager/telemetry/influx.js';
import {
  heartbeatPoint,
  MEASUREMENTS,
  type NodeTags,
  nodeStatePoint,
  type Point,
  resourcePoints,
  SCHEMAS,
  tagValue,
  toLine,
} from '../../manager/telemetry/points.js';
import { component, disk, gpu, heartbeatData, nic, resourceData } from '../../testkit/bodies.js';

const TAGS: NodeTags = { node: '1-3-0', box: 1, slot: 3, cpu: 0, hostname: 'kylin-a', host_ip: '10.0.0.5' };
const AT = 1_763_712_000_123;

/** A resource report with two of everything, some readings null. */
function report(over: Partial<ResourceData['resource']['cpu']> = {}): ResourceData {
  return resourceData({
    cpu: over,
    network: [
      nic({ tx_errors: 1 }),
      { interface: 'eth1', rx_bytes: 5, tx_bytes: 6, rx_packets: 1, tx_packets: 1, rx_errors: 0, tx_errors: 0 },
    ],
    disk: [
      disk(),
      { device: '/dev/sdb1', mount_point: '/data dir', total: 2000, used: 1900, free: 100, usage_percent: 95.5 },
    ],
    gpu: [
      gpu(),
      gpu({
        index: 1,
        compute_usage: null,
        mem_usage: null,
        mem_used: null,
        mem_total: null,
        temperature: 48,
        power: null,
      }),
    ],
    component: [component()],
  });
}

function heartbeat(): HeartbeatData {
  return heartbeatData({ box_id: 1, slot_id: 3, cpu_id: 0, host_ip: '10.0.0.5', hostname: 'kylin-a' });
}

const NODE_TAGS = { node: '1-3-0', box: '1', slot: '3', cpu: '0', hostname: 'kylin-a', host_ip: '10.0.0.5' };

describe('telemetry points', () => {
  it('a resource report becomes cpu, memory, one network per interface, one disk per mount, one gpu per GPU, one component each', () => {
    const r = report();
    const pts = resourcePoints(TAGS, r, AT);
    assert.deepEqual(
      pts.map((p) => p.measurement),
      ['cpu', 'memory', 'network', 'network', 'disk', 'disk', 'gpu', 'gpu', 'component'],
    );
    for (const p of pts) {
      assert.equal(p.timestamp, AT);
      for (const [k, v] of Object.entries(NODE_TAGS)) assert.equal(p.tags[k], v, `${p.measurement} tag ${k}`);
    }
    const [cpu, mem, eth0, eth1, root, data, gpu0, gpu1, comp] = pts as Point[] & { length: 9 };
    assert.deepEqual(cpu?.fields, {
      usage_percent: 50,
      load_avg_1m: 1.25,
      load_avg_5m: 1,
      load_avg_15m: 0.5,
      core_count: 8,
      core_allocated: 2,
      temperature: 51.5,
      power: 12,
    });
    assert.deepEqual(mem?.fields, { total: 17179869184, used: 4294967296, free: 12884901888, usage_percent: 25 });
    assert.equal(eth0?.tags.interface, 'eth0');
    assert.equal(eth1?.tags.interface, 'eth1');
    assert.deepEqual(eth0?.fields, {
      rx_bytes: 1000,
      tx_bytes: 2000,
      rx_packets: 10,
      tx_packets: 20,
      rx_errors: 0,
      tx_errors: 1,
    });
    assert.deepEqual([root?.tags.device, root?.tags.mount_point], ['/dev/sda1', '/']);
    assert.deepEqual([data?.tags.device, data?.tags.mount_point], ['/dev/sdb1', '/data dir']);
    assert.deepEqual(data?.fields, { total: 2000, used: 1900, free: 100, usage_percent: 95.5 });
    assert.deepEqual([gpu0?.tags.gpu, gpu0?.tags.gpu_name], ['0', 'Jingjia JM9271']);
    assert.deepEqual(gpu1?.fields, { temperature: 48 }, 'null readings are left out, never 0');
    assert.deepEqual([comp?.tags.uuid, comp?.tags.instance_id, comp?.tags.name], ['u-1', 'inst-1', 'app']);
    assert.deepEqual(comp?.fields, { state: 'RUNNING', cpu_load: 12, mem_used: 1024, mem_limit: 67108864, index: 0 });
  });

  it('every field written has its schema type, and every measurement carries only its schema tags', () => {
    const pts = [
      ...resourcePoints(TAGS, report(), AT),
      heartbeatPoint(TAGS, heartbeat(), AT),
      nodeStatePoint(TAGS, 'suspect', 2, AT, 'missed 2 heartbeat rounds'),
    ];
    assert.deepEqual(new Set(pts.map((p) => p.measurement)), new Set(MEASUREMENTS));
    for (const p of pts) {
      const s = SCHEMAS[p.measurement];
      for (const [k, v] of Object.entries(p.fields)) {
        const t = s.fields[k];
        assert.notEqual(t, undefined, `${p.measurement}.${k} is in the schema`);
        if (t === FieldType.STRING) assert.equal(typeof v, 'string', `${p.measurement}.${k}`);
        else assert.ok(typeof v === 'number' && Number.isFinite(v), `${p.measurement}.${k}`);
        if (t === FieldType.INTEGER) assert.ok(Number.isInteger(v), `${p.measurement}.${k} is whole`);
      }
      for (const k of Object.keys(p.tags))
        assert.ok(k in NODE_TAGS || s.tags.includes(k), `${p.measurement} tag ${k} is in the schema`);
    }
  });

  it('the field types are the documented ones: counts and bytes integer, percents and readings float', () => {
    const I = FieldType.INTEGER;
    const F = FieldType.FLOAT;
    assert.equal(SCHEMAS.cpu.fields.usage_percent, F);
    assert.equal(SCHEMAS.cpu.fields.core_count, I);
    assert.equal(SCHEMAS.cpu.fields.temperature, F);
    assert.equal(SCHEMAS.memory.fields.total, I);
    assert.equal(SCHEMAS.memory.fields.usage_percent, F);
    for (const f of Object.values(SCHEMAS.network.fields)) assert.equal(f, I);
    assert.equal(SCHEMAS.disk.fields.used, I);
    assert.equal(SCHEMAS.gpu.fields.mem_total, I);
    assert.equal(SCHEMAS.gpu.fields.mem_usage, F);
    assert.equal(SCHEMAS.component.fields.state, FieldType.STRING);
    assert.equal(SCHEMAS.component.fields.cpu_load, F);
    assert.equal(SCHEMAS.node_state.fields.state_code, I);
  });

  it('a heartbeat is node_state online/0/0; a transition carries its state, code, missed rounds and reason', () => {
    const h = heartbeatPoint(TAGS, heartbeat(), AT);
    assert.equal(h.measurement, 'node_state');
    assert.deepEqual(h.fields, { state: 'online', state_code: 0, missed_rounds: 0 });
    assert.deepEqual(h.tags, NODE_TAGS);
    assert.equal(h.timestamp, AT);
    const s = nodeStatePoint(TAGS, 'suspect', 2, AT + 5, 'missed 2 heartbeat rounds');
    assert.deepEqual(s.fields, {
      state: 'suspect',
      state_code: 1,
      missed_rounds: 2,
      reason: 'missed 2 heartbeat rounds',
    });
    assert.equal(s.timestamp, AT + 5);
    const o = nodeStatePoint(TAGS, 'offline', Number.POSITIVE_INFINITY, AT, 'missed 5 heartbeat rounds');
    assert.deepEqual(o.fields, { state: 'offline', state_code: 2, reason: 'missed 5 heartbeat rounds' });
  });

  it('leaves out empty tags, fields without a value, impossible integers, and points with no field at all', () => {
    const r = report({ temperature: null, power: null });
    r.resource.gpu.push({
      index: 2,
      name: '',
      compute_usage: null,
      mem_usage: null,
      mem_used: null,
      mem_total: null,
      temperature: null,
      voltage: null,
      current: null,
      power: null,
    });
    r.resource.network[0]!.rx_bytes = 2 ** 64;
    const pts = resourcePoints({ ...TAGS, hostname: '' }, r, AT);
    assert.equal(pts.filter((p) => p.measurement === 'gpu').length, 2, 'a GPU with no reading at all is not written');
    for (const p of pts) assert.equal('hostname' in p.tags, false);
    const cpu = pts.find((p) => p.measurement === 'cpu');
    assert.equal('temperature' in (cpu?.fields ?? {}), false);
    assert.equal('power' in (cpu?.fields ?? {}), false);
    const eth0 = pts.find((p) => p.tags.interface === 'eth0');
    assert.equal('rx_bytes' in (eth0?.fields ?? {}), false, 'beyond int64 cannot be written: left out');
    assert.equal(eth0?.fields.tx_bytes, 2000);
  });

  it('tag values: line breaks become spaces, a trailing backslash goes, empty is none', () => {
    assert.equal(tagValue('eth0'), 'eth0');
    assert.equal(tagValue('a\nb\tc'), 'a b c');
    assert.equal(tagValue('c:\\'), 'c:');
    assert.equal(tagValue(''), undefined);
    assert.equal(tagValue('\\'), undefined);
  });
});

describe('line protocol', () => {
  it('tags in key order and escaped, fields in their types, time in ms', () => {
    const line = toLine({
      measurement: 'disk',
      tags: { node: '1-3-0', box: '1', mount_point: '/my data,x=1', device: '/dev/sda1' },
      fields: { usage_percent: 50, total: 1000, free: 2.5 },
      timestamp: AT,
    });
    assert.equal(
      line,
      `disk,box=1,device=/dev/sda1,mount_point=/my\\ data\\,x\\=1,node=1-3-0 free=2i,total=1000i,usage_percent=50 ${AT}`,
    );
    const st = toLine(nodeStatePoint(TAGS, 'offline', 5, AT, 'a "quoted" \\ reason'));
    assert.match(st, / missed_rounds=5i,reason="a \\"quoted\\" \\\\ reason",state="offline",state_code=2i /);
  });
});

describe('buffer memory', () => {
  it('a buffered point (one line) takes about 220 bytes, so buffer_points 500000 is about 110 MB', (t) => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const used = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const keep: string[] = [];
    const before = used();
    for (let i = 0; keep.length < 100_000; i++) {
      // A report as parsed from a request body, then dropped: only the lines stay.
      const r = JSON.parse(JSON.stringify(report({ usage_percent: (i % 1000) / 10 }))) as ResourceData;
      const tags = { ...TAGS, node: `${i % 32}-${i % 14}-0`, host_ip: `10.0.${(i >> 8) & 255}.${i & 255}` };
      for (const p of resourcePoints(tags, r, AT + i)) keep.push(toLine(p));
    }
    const perPoint = (used() - before) / keep.length;
    t.diagnostic(`${Math.round(perPoint)} bytes per buffered point (line protocol)`);
    assert.ok(perPoint < 400, `${Math.round(perPoint)} bytes per point: lines must be flat strings`);
  });
});

describe('the InfluxDB writer against a stand-in server', () => {
  let server: http.Server;
  let url: string;
  const writes: { path: string; body: string; auth: string | undefined }[] = [];
  const queries: string[] = [];
  let answer: { status: number; body: string } = { status: 204, body: '' };
  let databases: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://x');
        if (u.pathname.endsWith('/write')) {
          writes.push({ path: req.url ?? '', body, auth: req.headers.authorization });
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(answer.body);
          return;
        }
        const q = u.searchParams.get('q') ?? new URLSearchParams(body).get('q') ?? '';
        queries.push(q);
        res.writeHead(200, { 'content-type': 'application/json' });
        if (/show databases/i.test(q)) {
          res.end(
            JSON.stringify({
              results: [
                {
                  statement_id: 0,
                  series: [{ name: 'databases', columns: ['name'], values: databases.map((d) => [d]) }],
                },
              ],
            }),
          );
        } else if (/show retention policies/i.test(q)) {
          res.end(
            JSON.stringify({
              results: [
                {
                  statement_id: 0,
                  series: [
                    {
                      columns: ['name', 'duration', 'shardGroupDuration', 'replicaN', 'default'],
                      values: [['autogen', '0s', '168h0m0s', 1, true]],
                    },
                  ],
                },
              ],
            }),
          );
        } else {
          databases.push('muster');
          res.end(JSON.stringify({ results: [{ statement_id: 0 }] }));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const cfg = (over: Partial<ManagerConfig['telemetry']['influxdb']> = {}): ManagerConfig['telemetry']['influxdb'] => ({
    enabled: true,
    url,
    database: 'muster',
    username: '',
    password: '',
    retention_policy: '',
    batch_points: 100,
    flush_interval_ms: 100,
    buffer_points: 1000,
    timeout_ms: 2000,
    retry_max_ms: 1000,
    query: { max_points: 1000, timeout_ms: 1000, max_concurrent: 2, max_reply_bytes: 1 << 20 },
    ...over,
  });

  it('sends line protocol with ms precision: integers with i, floats (even 50) without, strings quoted', async () => {
    writes.length = 0;
    answer = { status: 204, body: '' };
    const w = new InfluxWriter(cfg({ retention_policy: 'week' }));
    const pts = [
      ...resourcePoints(TAGS, report(), AT),
      nodeStatePoint(TAGS, 'suspect', 2, AT, 'missed 2 "heartbeat" rounds'),
    ];
    assert.deepEqual(await w.write(pts.map(toLine)), { kind: 'ok' });
    assert.equal(writes.length, 1);
    const q = new URL(writes[0]!.path, 'http://x').searchParams;
    assert.equal(q.get('db'), 'muster');
    assert.equal(q.get('precision'), 'ms');
    assert.equal(q.get('rp'), 'week');
    const lines = writes[0]!.body.split('\n');
    assert.equal(lines.length, pts.length);
    const cpu = lines[0]!;
    assert.match(cpu, /^cpu,box=1,cpu=0,host_ip=10\.0\.0\.5,hostname=kylin-a,node=1-3-0,slot=3 /);
    assert.match(cpu, /[ ,]usage_percent=50[, ]/, 'a whole float is still a float (no i)');
    assert.match(cpu, /[ ,]core_count=8i[, ]/);
    assert.match(cpu, /[ ,]load_avg_1m=1\.25[, ]/);
    assert.doesNotMatch(cpu, /voltage|current/);
    assert.ok(cpu.endsWith(` ${AT}`), cpu);
    const mem = lines[1]!;
    assert.match(mem, / .*total=17179869184i/);
    const disk = lines.find((l) => l.includes('mount_point=/data\\ dir'));
    assert.ok(disk, 'a space in a tag value is escaped');
    const comp = lines.find((l) => l.startsWith('component,'));
    assert.match(comp ?? '', /state="RUNNING"/);
    assert.match(comp ?? '', /index=0i/);
    const st = lines.at(-1) ?? '';
    assert.match(st, /^node_state,/);
    assert.match(st, /reason="missed 2 \\"heartbeat\\" rounds"/);
    assert.match(st, /state_code=1i/);
  });

  it('creates the database when it is missing, and leaves it when it is there', async () => {
    queries.length = 0;
    databases = [];
    const w = new InfluxWriter(cfg());
    assert.deepEqual(await w.ensureDatabase(), { kind: 'ok' });
    assert.ok(
      queries.some((q) => /create database "muster"/i.test(q)),
      queries.join('\n'),
    );
    queries.length = 0;
    assert.deepEqual(await w.ensureDatabase(), { kind: 'ok' });
    assert.equal(
      queries.some((q) => /create database/i.test(q)),
      false,
    );
  });

  it('a retention policy that does not exist is a failure to fix (points kept), named in the error', async () => {
    databases = ['muster'];
    const w = new InfluxWriter(cfg({ retention_policy: 'week' }));
    const o = await w.ensureDatabase();
    assert.equal(o.kind, 'failed');
    assert.match(o.kind === 'failed' ? o.error : '', /retention policy "week" not found/);
    assert.deepEqual(await new InfluxWriter(cfg({ retention_policy: 'autogen' })).ensureDatabase(), { kind: 'ok' });
  });

  it("sorts InfluxDB's answers: 404 database not found, 400 type conflict (partial), 500, 401", async () => {
    const w = new InfluxWriter(cfg());
    const pts = resourcePoints(TAGS, report(), AT);
    answer = { status: 404, body: '{"error":"database not found: \\"muster\\""}' };
    assert.deepEqual(await w.write(pts.map(toLine)), {
      kind: 'no_database',
      error: 'HTTP 404: database not found: "muster"',
    });
    answer = {
      status: 400,
      body: '{"error":"partial write: field type conflict: input field \\"usage_percent\\" on measurement \\"cpu\\" is type float, already exists as type integer dropped=1"}',
    };
    const r = await w.write(pts.map(toLine));
    assert.equal(r.kind, 'rejected');
    assert.equal(r.kind === 'rejected' && r.refused, 1);
    answer = { status: 400, body: '{"error":"unable to parse \'x\': missing fields"}' };
    const all = await w.write(pts.map(toLine));
    assert.equal(all.kind === 'rejected' && all.refused, null);
    answer = { status: 500, body: '{"error":"timeout"}' };
    assert.equal((await w.write(pts.map(toLine))).kind, 'unreachable');
    answer = { status: 401, body: '{"error":"authorization failed"}' };
    assert.equal((await w.write(pts.map(toLine))).kind, 'failed');
    answer = { status: 500, body: '{"error":"retention policy not found: week"}' };
    assert.equal((await w.write(pts.map(toLine))).kind, 'failed');
    answer = { status: 204, body: '' };
  });

  it('a closed port is unreachable, naming the cause', async () => {
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const w = new InfluxWriter(cfg({ url: `http://127.0.0.1:${port}` }));
    const o = await w.write(resourcePoints(TAGS, report(), AT).map(toLine));
    assert.equal(o.kind, 'unreachable');
    assert.match(o.kind === 'unreachable' ? o.error : '', /ECONNREFUSED/);
    const d = await w.ensureDatabase();
    assert.equal(d.kind, 'unreachable');
  });

  it('sends credentials when configured', async () => {
    writes.length = 0;
    const w = new InfluxWriter(cfg({ username: 'muster', password: 's3cret' }));
    await w.write(resourcePoints(TAGS, report(), AT).map(toLine));
    assert.equal(writes[0]?.auth, `Basic ${Buffer.from('muster:s3cret').toString('base64')}`);
  });

  it('reads the URL: port, scheme default, path prefix; redacts credentials', () => {
    assert.deepEqual(hostOptions('http://127.0.0.1:8086'), {
      host: '127.0.0.1',
      port: 8086,
      protocol: 'http',
      path: '',
      username: '',
      password: '',
    });
    assert.equal(hostOptions('https://metrics.example.com/influx/').port, 443);
    assert.equal(hostOptions('https://metrics.example.com/influx/').path, '/influx');
    assert.throws(() => hostOptions('udp://x:1'), /telemetry\.influxdb\.url/);
    assert.throws(() => hostOptions('not a url'), /telemetry\.influxdb\.url/);
    assert.equal(redactUrl('http://u:p@h:8086/'), 'http://h:8086');
  });

  it('classify: no answer is unreachable; 5xx too unless it names a missing retention policy', () => {
    assert.equal(classify(null, 'ECONNRESET: socket hang up').kind, 'unreachable');
    assert.equal(classify(503, 'HTTP 503: Service Unavailable').kind, 'unreachable');
    assert.equal(classify(500, 'HTTP 500: retention policy not found: week').kind, 'failed');
    assert.equal(classify(404, 'HTTP 404: page not found').kind, 'failed');
    assert.equal(classify(413, 'HTTP 413: Request Entity Too Large').kind, 'rejected');
  });
});
