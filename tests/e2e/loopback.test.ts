/**
 * The single-machine path on real daemons: a manager and an agent over the loopback interface,
 * the CLI against them, and bad input (query datagrams, report bodies, config) on each side.
 * Multicast stays on 127.0.0.1 and a port picked for this file, so nothing leaves the machine.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import type { NodeDetail, NodeSummary } from '../../manager/views.js';
import { heartbeat, resource } from '../../testkit/bodies.js';
import {
  apiFetch,
  freePort,
  getJson,
  metric,
  type Proc,
  runMuster,
  sets,
  startMuster,
  waitFor,
} from '../helpers/daemons.js';

const IFACE = '127.0.0.1';
const GROUP = '239.192.168.80';
const BOX = 6;
const SLOT = 3;
const CPU = 0;
const NODE = `${BOX}-${SLOT}-${CPU}`;

/** Fetches text, resolving even on a non-2xx status. */
async function text(url: string): Promise<string> {
  const res = await apiFetch(url, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

/** POSTs a raw body to the manager; returns the status and the parsed JSON body (null if empty). */
async function post(url: string, body: string): Promise<{ status: number; body: unknown }> {
  const res = await apiFetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(5000),
  });
  const t = await res.text();
  let doc: unknown = t;
  try {
    doc = t ? JSON.parse(t) : null;
  } catch {
    // keep the text
  }
  return { status: res.status, body: doc };
}

/** Runs `muster <args>` that should exit at once; fails if it keeps running. */
const runShort = (args: string[], ms = 20_000) => runMuster(args, { timeoutMs: ms });

/** A heartbeat body for a board that exists only in this test. */
function fakeHeartbeat(hostIp: string): HeartbeatBody {
  return heartbeat({ box_id: 9, slot_id: 9, cpu_id: 9, host_ip: hostIp, hostname: 'fake-9-9-9' });
}

function fakeResource(hostIp: string): ResourceBody {
  return resource({ host_ip: hostIp, cpu: { usage_percent: 21.5 } });
}

describe('loopback: one manager and one agent on 127.0.0.1', () => {
  let tmp: string;
  let httpPort: number;
  let servicePort: number;
  let mcastPort: number;
  let base: string;
  let manager: Proc;
  let agent: Proc;
  const logs = () => `--- manager:\n${manager.output()}\n--- agent:\n${agent.output()}`;

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-loopback-'));
    httpPort = await freePort();
    servicePort = await freePort();
    mcastPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    manager = startMuster([
      'manager',
      ...sets({
        'multicast.interface': IFACE,
        'multicast.port': mcastPort,
        'http.host': '127.0.0.1',
        'http.port': httpPort,
        'http.body_limit_bytes': '65536',
        'query.heartbeat_interval_ms': '500',
        'query.resource_interval_ms': '1000',
        data_dir: path.join(tmp, 'manager'),
      }),
    ]);
    agent = startMuster([
      'agent',
      ...sets({
        'multicast.interface': IFACE,
        'multicast.port': mcastPort,
        'service.host': '127.0.0.1',
        'service.port': servicePort,
        'identity.box_id': BOX,
        'identity.slot_id': SLOT,
        'identity.cpu_id': CPU,
        'report.jitter_ms': '100',
        data_dir: path.join(tmp, 'agent'),
      }),
    ]);
  });

  after(async () => {
    await agent?.stop();
    await manager?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the node comes online with a complete resource report, seen through the CLI', { timeout: 60_000 }, async () => {
    await waitFor(
      `node ${NODE} online with a resource report`,
      async () => {
        const r = await getJson<{ nodes: NodeSummary[] }>(`${base}/api/v1/nodes`);
        return r.nodes.find((n) => n.id === NODE && n.state === 'online' && n.resource_at !== null);
      },
      10_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));

    const table = await runMuster(['--manager', base, 'nodes']);
    assert.equal(table.code, 0, table.output);
    const row = table.output.split('\n').find((l) => l.startsWith(`${NODE} `));
    assert.ok(row, table.output);
    assert.match(row, /\bONLINE\b/);
    assert.match(row, /127\.0\.0\.1/);

    const d = await runMuster(['--manager', base, 'node', NODE, '--json']);
    assert.equal(d.code, 0, d.output);
    const n = JSON.parse(d.output) as NodeDetail;
    assert.equal(n.state, 'online');
    assert.equal(n.heartbeat?.host_ip, '127.0.0.1');
    assert.equal(n.heartbeat?.service_port, servicePort);
    assert.equal(n.heartbeat?.hostname, os.hostname());
    const r = n.resource;
    assert.ok(r, d.output);
    assert.equal(r.host_ip, '127.0.0.1');
    assert.ok(r.resource.cpu.core_count > 0);
    assert.ok(r.resource.memory.total > 0);
    assert.ok(Array.isArray(r.resource.network));
    assert.ok(Array.isArray(r.resource.disk));
    assert.deepEqual(r.resource.gpu, []);
    assert.deepEqual(r.component, []);
    assert.equal(n.transitions[0]?.to, 'online');

    const q = await runMuster(['--manager', base, 'query', 'resource', '--json', '--wait', '1500']);
    assert.equal(q.code, 0, q.output);
    const answers = (JSON.parse(q.output) as { answers: { node: string | null; host_ip: string }[] }).answers;
    assert.ok(
      answers.some((a) => a.node === NODE && a.host_ip === '127.0.0.1'),
      q.output,
    );
  });

  it('`muster nodes` against a port where nothing listens exits 3 naming the URL', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const r = await runMuster(['--manager', url, 'nodes']);
    assert.equal(r.code, 3, r.output);
    assert.ok(r.output.includes(url), r.output);
  });

  it('bad query datagrams are counted by reason, answered by nothing, and the agent carries on', {
    timeout: 60_000,
  }, async () => {
    // A stand-in manager: any report that reaches it was sent for a datagram that should have been refused.
    const posts: { url: string; body: string }[] = [];
    const sink = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        posts.push({ url: req.url ?? '', body });
        res.writeHead(200, { 'content-length': '0' });
        res.end();
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const sinkPort = (sink.address() as AddressInfo).port;
    const sock = dgram.createSocket('udp4');
    try {
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      sock.setMulticastInterface(IFACE);
      sock.setMulticastTTL(1);
      sock.setMulticastLoopback(true);
      const send = (buf: Buffer) =>
        new Promise<void>((resolve, reject) =>
          sock.send(buf, mcastPort, GROUP, (err) => (err ? reject(err) : resolve())),
        );
      const good = { manager_ip: '127.0.0.1', manager_port: sinkPort, url: '/heartbeat', jitter_ms: 0 };
      const json = (o: unknown) => Buffer.from(JSON.stringify(o));
      const padded = JSON.stringify({ api_version: 1, data: good });
      const cases: [string, Buffer][] = [
        ['json', Buffer.from('{"api_version": 1, "data": ')],
        ['oversize', Buffer.from(padded + ' '.repeat(5000 - padded.length))],
        ['api_version', json({ api_version: 2, data: good })],
        ['url', json({ api_version: 1, data: { ...good, url: '/foo' } })],
        ['manager_ip', json({ api_version: 1, data: { ...good, manager_ip: '300.1.2.3' } })],
        ['manager_ip', json({ api_version: 1, data: { ...good, manager_ip: 'localhost' } })],
        ['manager_port', json({ api_version: 1, data: { ...good, manager_port: 0 } })],
        ['manager_port', json({ api_version: 1, data: { ...good, manager_port: 70000 } })],
        ['schema', json({ api_version: 1 })],
      ];
      assert.ok((cases[1]?.[1].length ?? 0) > 4096);
      const expected = new Map<string, number>();
      for (const [reason] of cases) expected.set(reason, (expected.get(reason) ?? 0) + 1);

      const metricsUrl = `http://127.0.0.1:${servicePort}/metrics`;
      const rejected = (page: string, reason: string) =>
        metric(page, 'muster_agent_queries_rejected_total', { reason });
      const before = await text(metricsUrl);
      for (const [, buf] of cases) await send(buf);

      const page = await waitFor(
        'every bad datagram counted',
        async () => {
          const p = await text(metricsUrl);
          for (const [reason, n] of expected) if (rejected(p, reason) - rejected(before, reason) < n) return false;
          return p;
        },
        10_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));
      for (const [reason, n] of expected)
        assert.equal(rejected(page, reason) - rejected(before, reason), n, `reason ${reason}`);
      assert.equal(
        metric(page, 'muster_agent_queries_rejected_total') - metric(before, 'muster_agent_queries_rejected_total'),
        cases.length,
      );

      // Well past any reply delay: nothing came for the refused datagrams.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(posts.length, 0, `reports were sent for refused datagrams: ${JSON.stringify(posts)}`);

      // A good query still gets its report.
      await send(json({ api_version: 1, data: good }));
      await waitFor('a report for the good query', () => posts.length > 0, 5000);
      assert.equal(posts.length, 1);
      assert.equal(posts[0]?.url, '/heartbeat');
      const hb = JSON.parse(posts[0]?.body ?? '') as HeartbeatBody;
      assert.deepEqual([hb.data.box_id, hb.data.slot_id, hb.data.cpu_id], [BOX, SLOT, CPU]);

      const health = await getJson<{ status: string; multicast_joined: boolean }>(
        `http://127.0.0.1:${servicePort}/healthz`,
      );
      assert.equal(health.status, 'ok');
      assert.equal(health.multicast_joined, true);
      const nodes = await getJson<{ nodes: NodeSummary[] }>(`${base}/api/v1/nodes`);
      const n = nodes.nodes.find((x) => x.id === NODE);
      assert.equal(n?.state, 'online');
      assert.ok((n?.missed_rounds ?? 99) <= 1, JSON.stringify(n));
    } finally {
      sock.close();
      await new Promise<void>((r) => sink.close(() => r()));
    }
  });

  it('bad reports get 400 naming the field (413 when oversized), are counted, and keep the last good data', {
    timeout: 60_000,
  }, async () => {
    // A loopback address: the test posts from this machine, and the manager's report source check
    // (reports.require_source_match) lets a local sender name 127.x only.
    const ip = '127.99.0.7';
    const hbUrl = `${base}/heartbeat`;
    const resUrl = `${base}/resource`;
    // A board only this test reports for, so its data changes only when the test says so.
    const okHb = await post(hbUrl, JSON.stringify(fakeHeartbeat(ip)));
    assert.deepEqual(okHb, { status: 200, body: null });
    const okRes = await post(resUrl, JSON.stringify(fakeResource(ip)));
    assert.deepEqual(okRes, { status: 200, body: null });
    const good = await getJson<NodeDetail>(`${base}/api/v1/nodes/9-9-9`);
    assert.deepEqual(good.resource, fakeResource(ip).data);

    const hb = () => fakeHeartbeat(ip) as unknown as { api_version: unknown; data: Record<string, unknown> };
    const res = () => fakeResource(ip) as unknown as { data: { resource: { cpu: Record<string, unknown> } } };
    const missing = hb();
    delete missing.data.hostname;
    const cases: { name: string; url: string; body: string; status: number; field?: string; reason: string }[] = [
      { name: 'not JSON', url: hbUrl, body: '{"api_version": 1,', status: 400, field: '/', reason: 'json' },
      {
        name: 'api_version 2',
        url: hbUrl,
        body: JSON.stringify({ ...hb(), api_version: 2 }),
        status: 400,
        field: '/api_version',
        reason: 'schema',
      },
      {
        name: 'missing hostname',
        url: hbUrl,
        body: JSON.stringify(missing),
        status: 400,
        field: '/data/hostname',
        reason: 'schema',
      },
      {
        name: 'box_id "1"',
        url: hbUrl,
        body: JSON.stringify({ api_version: 1, data: { ...hb().data, box_id: '9' } }),
        status: 400,
        field: '/data/box_id',
        reason: 'schema',
      },
      {
        name: 'host_ip not IPv4',
        url: hbUrl,
        body: JSON.stringify({ api_version: 1, data: { ...hb().data, host_ip: '10.99.0' } }),
        status: 400,
        field: '/data/host_ip',
        reason: 'schema',
      },
      {
        name: 'service_port 70000',
        url: hbUrl,
        body: JSON.stringify({ api_version: 1, data: { ...hb().data, service_port: 70000 } }),
        status: 400,
        field: '/data/service_port',
        reason: 'schema',
      },
      {
        name: 'resource with core_count "8" for the same host_ip',
        url: resUrl,
        body: JSON.stringify(
          (() => {
            const r = res();
            r.data.resource.cpu.core_count = '8';
            r.data.resource.cpu.usage_percent = 99;
            return r;
          })(),
        ),
        status: 400,
        field: '/data/resource/cpu/core_count',
        reason: 'schema',
      },
      {
        name: 'oversized resource',
        url: resUrl,
        body: JSON.stringify({ ...fakeResource(ip), pad: 'x'.repeat(70_000) }),
        status: 413,
        reason: 'too_large',
      },
    ];

    const metricsUrl = `${base}/metrics`;
    const name = 'muster_manager_reports_rejected_total';
    const before = await text(metricsUrl);
    for (const c of cases) {
      const r = await post(c.url, c.body);
      assert.equal(r.status, c.status, `${c.name}: ${JSON.stringify(r.body)}`);
      const b = r.body as { error?: string; field?: string; message?: string };
      assert.equal(typeof b?.message, 'string', `${c.name}: a JSON body with a message: ${JSON.stringify(r.body)}`);
      if (c.field !== undefined) assert.equal(b.field, c.field, `${c.name}: ${JSON.stringify(r.body)}`);
      if (c.status === 413) assert.equal(b.error, 'payload_too_large');
    }
    const page = await text(metricsUrl);
    assert.equal(metric(page, name) - metric(before, name), cases.length);
    for (const reason of ['json', 'schema', 'too_large']) {
      const n = cases.filter((c) => c.reason === reason).length;
      assert.equal(metric(page, name, { reason }) - metric(before, name, { reason }), n, `reason ${reason}`);
    }

    const after = await getJson<NodeDetail>(`${base}/api/v1/nodes/9-9-9`);
    assert.deepEqual(after.resource, good.resource, 'the last good resource report is kept');
    assert.equal(after.resource_at, good.resource_at);
    assert.deepEqual(after.heartbeat, good.heartbeat, 'the last good heartbeat is kept');
    assert.equal(after.last_seen, good.last_seen);
  });
});

describe('config errors stop a daemon at start with exit code 2 naming the key', () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-config-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('agent --set identity.box_id=abc', async () => {
    const r = await runShort(['agent', ...sets({ 'identity.box_id': 'abc' })]);
    assert.equal(r.code, 2, r.output);
    assert.match(r.output, /identity\.box_id/);
  });

  it('agent --set nosuch.key=1', async () => {
    const r = await runShort(['agent', ...sets({ 'nosuch.key': '1' })]);
    assert.equal(r.code, 2, r.output);
    assert.match(r.output, /nosuch\.key/);
  });

  it('agent --config with an unknown key', async () => {
    const file = path.join(tmp, 'agent.yaml');
    writeFileSync(file, 'identity:\n  box_id: 2\n  slot_idd: 4\n');
    const r = await runShort(['agent', '--config', file]);
    assert.equal(r.code, 2, r.output);
    assert.match(r.output, /identity\.slot_idd/);
  });

  it('manager with offline_after_rounds not above suspect_after_rounds', async () => {
    const r = await runShort([
      'manager',
      ...sets({ 'liveness.offline_after_rounds': '1', 'liveness.suspect_after_rounds': '2' }),
    ]);
    assert.equal(r.code, 2, r.output);
    assert.match(r.output, /liveness\.offline_after_rounds/);
  });
});
