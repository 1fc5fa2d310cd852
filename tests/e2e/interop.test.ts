/**
 * Interoperability with peers written from the spec alone (docs/protocol.md §6 Interoperability
 * rules), in Python:
 * muster's agent answers tests/interop/spec_manager.py, and muster's manager shows
 * tests/interop/spec_agent.py's board. Everything runs over the loopback interface on a multicast
 * port picked per test, so nothing leaves the machine.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import type { NodeDetail, NodeSummary } from '../../manager/views.js';
import {
  freePort,
  getJson,
  type Proc,
  ROOT,
  runMuster,
  sets,
  startMuster,
  startProcess,
  waitFor,
} from '../helpers/daemons.js';
import { missingCommand, needs } from '../helpers/need.js';

const IFACE = '127.0.0.1';
const INTEROP = path.join(ROOT, 'tests', 'interop');

/** Starts a spec-only python peer from tests/interop/. */
function startPython(script: string, args: string[]): Proc {
  return startProcess('python3', [path.join(INTEROP, script), ...args]);
}

/** Resolves with `p`, or rejects after `ms` naming `what`. */
async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

interface Summary {
  queries_sent: number;
  heartbeats: HeartbeatBody[];
  resources: ResourceBody[];
  errors: { url: string; field: string; message: string }[];
  extra_fields: string[];
}

describe('interop with spec-only python peers', needs(missingCommand('python3')), () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-interop-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('muster agent → spec_manager.py: every report passes the spec check, with the right identity', {
    timeout: 60_000,
  }, async () => {
    const mcastPort = await freePort();
    const servicePort = await freePort();
    const httpPort = await freePort();
    const agent = startMuster([
      'agent',
      ...sets({
        'multicast.interface': IFACE,
        'multicast.port': mcastPort,
        'service.host': '127.0.0.1',
        'service.port': servicePort,
        'identity.box_id': '3',
        'identity.slot_id': '5',
        'identity.cpu_id': '1',
        'identity.srio_id': '2',
        'identity.box_type': '计算I型',
        'identity.board_type': 'GPU',
        'identity.resource_type': 'GPU I',
        'report.jitter_ms': '100',
        data_dir: path.join(tmp, 'agent'),
      }),
    ]);
    try {
      await waitFor(
        'the agent to join the group',
        async () =>
          (await getJson<{ multicast_joined: boolean }>(`http://127.0.0.1:${servicePort}/healthz`)).multicast_joined,
      );
      const out = path.join(tmp, 'summary.json');
      const rounds = 3;
      const mgr = startPython('spec_manager.py', [
        '--group',
        '239.192.168.80',
        '--port',
        String(mcastPort),
        '--iface',
        IFACE,
        '--http-port',
        String(httpPort),
        '--rounds',
        String(rounds),
        '--interval',
        '0.5',
        '--grace',
        '1.5',
        '--out',
        out,
      ]);
      const code = await within('spec_manager.py to finish', mgr.exited, 30_000).finally(() => mgr.stop());
      assert.equal(code, 0, `spec_manager.py failed:\n${mgr.output()}`);
      const s = JSON.parse(readFileSync(out, 'utf8')) as Summary;
      const ctx = `summary: ${JSON.stringify({ ...s, resources: s.resources.length }, null, 1)}\nagent:\n${agent.output()}`;

      assert.equal(s.queries_sent, 2 * rounds);
      assert.deepEqual(s.errors, [], ctx);
      // Loopback multicast does not lose datagrams in practice; allow one anyway.
      assert.ok(s.heartbeats.length >= rounds - 1 && s.heartbeats.length <= rounds, ctx);
      assert.ok(s.resources.length >= rounds - 1 && s.resources.length <= rounds, ctx);

      for (const h of s.heartbeats) {
        assert.equal(h.api_version, 1);
        assert.deepEqual(
          {
            box_id: h.data.box_id,
            slot_id: h.data.slot_id,
            cpu_id: h.data.cpu_id,
            srio_id: h.data.srio_id,
            host_ip: h.data.host_ip,
            hostname: h.data.hostname,
            service_port: h.data.service_port,
            box_type: h.data.box_type,
            board_type: h.data.board_type,
            resource_type: h.data.resource_type,
            cpu_arch: h.data.cpu_arch,
          },
          {
            box_id: 3,
            slot_id: 5,
            cpu_id: 1,
            srio_id: 2,
            host_ip: '127.0.0.1',
            hostname: os.hostname(),
            service_port: servicePort,
            box_type: '计算I型',
            board_type: 'GPU',
            resource_type: 'GPU I',
            cpu_arch: os.machine(),
          },
        );
        assert.ok(h.data.cpu_type.length > 0 && h.data.os_type.length > 0);
      }
      for (const r of s.resources) {
        assert.equal(r.api_version, 1);
        assert.equal(r.data.host_ip, '127.0.0.1');
        const res = r.data.resource;
        assert.ok(res.cpu.core_count > 0);
        assert.ok(res.cpu.usage_percent >= 0 && res.cpu.usage_percent <= 100);
        assert.ok(Math.abs(res.memory.total - os.totalmem()) <= os.totalmem() * 0.01, 'memory.total is the RAM');
        assert.ok(res.memory.used + res.memory.free <= res.memory.total);
        assert.ok(Array.isArray(res.network) && Array.isArray(res.disk) && Array.isArray(res.gpu));
        assert.ok(Array.isArray(r.data.component));
      }
    } finally {
      await agent.stop();
    }
  });

  it('spec_agent.py → muster manager: `muster nodes --json` shows the board online with its figures', {
    timeout: 60_000,
  }, async () => {
    const mcastPort = await freePort();
    const httpPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    const manager: Proc = startMuster([
      'manager',
      ...sets({
        'multicast.interface': IFACE,
        'multicast.port': mcastPort,
        'http.host': '127.0.0.1',
        'http.port': httpPort,
        'query.heartbeat_interval_ms': '500',
        'query.resource_interval_ms': '1000',
        data_dir: path.join(tmp, 'manager'),
      }),
    ]);
    const agent = startPython('spec_agent.py', [
      '--group',
      '239.192.168.80',
      '--port',
      String(mcastPort),
      '--iface',
      IFACE,
      '--box',
      '4',
      '--slot',
      '2',
      '--cpu',
      '1',
      '--host-ip',
      '127.0.0.1',
      '--service-port',
      '23980',
    ]);
    try {
      const ctx = () => `manager:\n${manager.output()}\nspec_agent:\n${agent.output()}`;
      await waitFor(
        'the python board online with a resource report',
        async () => {
          const r = await getJson<{ nodes: NodeSummary[] }>(`${base}/api/v1/nodes`);
          return r.nodes.find((n) => n.id === '4-2-1' && n.state === 'online' && n.resource_at !== null);
        },
        20_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${ctx()}`));

      const r = await runMuster(['--manager', base, 'nodes', '--json']);
      assert.equal(r.code, 0, r.output);
      const nodes = JSON.parse(r.output) as NodeSummary[];
      const n = nodes.find((x) => x.id === '4-2-1');
      assert.ok(n, r.output);
      assert.equal(nodes.length, 1);
      assert.equal(n.state, 'online');
      assert.equal(n.host_ip, '127.0.0.1');
      assert.equal(n.hostname, 'spec-agent-4-2-1');
      assert.deepEqual([n.box_id, n.slot_id, n.cpu_id], [4, 2, 1]);
      assert.equal(n.cpu_percent, 12.5);
      assert.equal(n.memory_percent, 37.5);
      assert.equal(n.temperature, 47.5);
      assert.equal(n.gpu_count, 1);
      assert.equal(n.component_count, 0);
      assert.equal(n.conflict, null);

      const d = await runMuster(['--manager', base, 'node', '4-2-1', '--json']);
      assert.equal(d.code, 0, d.output);
      const detail = JSON.parse(d.output) as NodeDetail;
      assert.equal(detail.heartbeat?.cpu_type, 'Phytium,D2000/8');
      assert.equal(detail.heartbeat?.os_type, 'Kylin Linux Advanced Server V10');
      assert.equal(detail.heartbeat?.cpu_arch, 'aarch64');
      assert.equal(detail.heartbeat?.box_type, '计算I型');
      assert.equal(detail.heartbeat?.service_port, 23980);
      assert.deepEqual(detail.heartbeat?.gpu, [{ index: 0, name: 'JM9271' }]);
      const res = detail.resource?.resource;
      assert.ok(res);
      assert.equal(res.cpu.core_count, 8);
      assert.equal(res.memory.total, 16 * 1024 ** 3);
      assert.deepEqual(
        res.network.map((x) => x.interface),
        ['eth0', 'eth1'],
      );
      assert.equal(res.disk.length, 1);
      assert.equal(res.gpu[0]?.mem_total, 8 * 1024 ** 3);
      assert.deepEqual(detail.resource?.component, []);
    } finally {
      await agent.stop();
      await manager.stop();
    }
  });
});
