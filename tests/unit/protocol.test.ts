/**
 * The schemas of common/protocol.ts against the bodies of docs/protocol.md §1–§5 (agent与manager
 * 接口协议 v1.1), written out with realistic values: every example validates, bad ones are refused
 * naming the field, and a sensor the board does not have may be null.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TSchema } from 'typebox';
import { DeployReplyBody, DeployRequestBody, HeartbeatBody, QueryBody, ResourceBody } from '../../common/protocol.js';
import { compile } from '../../common/validate.js';
import { heartbeatBody, heartbeatData } from '../../testkit/bodies.js';

type Json = Record<string, unknown>;

const query = (): Json => ({
  api_version: 1,
  data: { manager_ip: '192.168.10.254', manager_port: 3926, url: '/heartbeat' },
});

const heartbeat = (): Json =>
  heartbeatBody(
    heartbeatData({
      box_id: 1,
      slot_id: 1,
      cpu_id: 1,
      host_ip: '192.168.10.29',
      hostname: 'localhost.localdomain',
      gpu: [{ index: 0, name: 'JM9271' }],
    }),
  );

const resource = (): Json => ({
  api_version: 1,
  data: {
    host_ip: '192.168.10.29',
    resource: {
      cpu: {
        usage_percent: 23.4,
        load_avg_1m: 1.25,
        load_avg_5m: 0.98,
        load_avg_15m: 0.71,
        core_count: 8,
        core_allocated: 2,
        temperature: 48.5,
        voltage: 0.92,
        current: 4.1,
        power: 18.6,
      },
      memory: { total: 17179869184, used: 5368709120, free: 11811160064, usage_percent: 31.25 },
      network: [
        {
          interface: 'eth0',
          rx_bytes: 8123456789,
          tx_bytes: 1234567890,
          rx_packets: 9876543,
          tx_packets: 4567890,
          rx_errors: 0,
          tx_errors: 0,
        },
        {
          interface: 'eth1',
          rx_bytes: 123456,
          tx_bytes: 654321,
          rx_packets: 1234,
          tx_packets: 4321,
          rx_errors: 2,
          tx_errors: 0,
        },
      ],
      disk: [
        {
          device: '/dev/nvme0n1p2',
          mount_point: '/',
          total: 256060514304,
          used: 53687091200,
          free: 202373423104,
          usage_percent: 20.97,
        },
      ],
      gpu: [
        {
          index: 0,
          name: 'JM9271',
          compute_usage: 37.5,
          mem_usage: 25,
          mem_used: 2147483648,
          mem_total: 8589934592,
          temperature: 55,
          voltage: 0.85,
          current: 12.2,
          power: 45.3,
        },
      ],
    },
    component: [
      {
        instance_id: 'inst-radar-01',
        uuid: '3f6c9a52-8f0e-4a4e-9a53-2b0f7b8f1c11',
        index: 0,
        config: { name: 'radar-proc-0', id: '4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e' },
        state: 'RUNNING',
        resource: {
          cpu: { load: 63.2 },
          memory: { mem_used: 734003200, mem_limit: 2147483648 },
          network: { tx: 10485760, rx: 52428800 },
        },
      },
    ],
  },
});

const deployStart = (): Json => ({
  api_version: 1,
  data: {
    mode: 'start',
    type: 'docker',
    uuid: '3f6c9a52-8f0e-4a4e-9a53-2b0f7b8f1c11',
    url: '192.168.10.254:5000',
    file: 'radar/proc:1.2.0',
    require: { cpu: 2, memory: 2147483648, gpu: 1 },
  },
});

const deployStopBar = (): Json => ({
  api_version: 1,
  data: { mode: 'stop', type: 'bar', uuid: 'b7d1e0c4-5a8e-4b43-9f2a-0c1d2e3f4a5b', id: 4242 },
});

const deployReply = (): Json => ({
  api_version: 1,
  data: {
    ...(deployStart().data as Json),
    id: '4d5e6f7a8b9c',
    result: 0,
    message: 'started',
  },
});

/** Sets `value` at the slash path `ptr` (e.g. `/data/box_id`) of a copy of `doc`; undefined deletes. */
function withAt(doc: Json, ptr: string, value: unknown): Json {
  const copy = structuredClone(doc);
  const keys = ptr.split('/').slice(1);
  let cur: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
  return copy;
}

function accepts(schema: TSchema, doc: unknown): void {
  const r = compile(schema).check(doc);
  assert.ok(r.ok, r.ok ? '' : `refused: ${r.error.field} ${r.error.message}`);
}

function refuses(schema: TSchema, doc: unknown, field: string, message?: RegExp): void {
  const r = compile(schema).check(doc);
  assert.equal(r.ok, false, `accepted a bad body at ${field}`);
  if (r.ok) return;
  assert.equal(r.error.field, field, `${r.error.field} ${r.error.message}`);
  if (message) assert.match(r.error.message, message);
}

describe('docs/protocol.md example bodies validate', () => {
  it('multicast query, for each url', () => {
    accepts(QueryBody, query());
    accepts(QueryBody, withAt(query(), '/data/url', '/resource'));
  });
  it('heartbeat', () => accepts(HeartbeatBody, heartbeat()));
  it('heartbeat of a board without GPUs', () => accepts(HeartbeatBody, withAt(heartbeat(), '/data/gpu', [])));
  it('resource with a GPU and a running component', () => accepts(ResourceBody, resource()));
  it('resource of a board with no GPU and no components', () => {
    accepts(ResourceBody, withAt(withAt(resource(), '/data/resource/gpu', []), '/data/component', []));
  });
  it('every component state of the spec', () => {
    for (const state of ['PENDING', 'RUNNING', 'FAILED', 'STOPPED', 'SLEEPING'])
      accepts(ResourceBody, withAt(resource(), '/data/component/0/state', state));
  });
  it('deploy start, deploy stop of a bar by pid, and the reply', () => {
    accepts(DeployRequestBody, deployStart());
    accepts(DeployRequestBody, deployStopBar());
    accepts(DeployReplyBody, deployReply());
  });
  it('extensions: fields the spec does not name are accepted and ignored', () => {
    accepts(QueryBody, withAt(query(), '/data/jitter_ms', 250));
    accepts(HeartbeatBody, withAt(heartbeat(), '/data/agent_version', '0.1.0'));
    accepts(ResourceBody, withAt(resource(), '/data/resource/cpu/frequency_mhz', 2300));
  });
  it('uint64 sizes beyond 32 bits', () => {
    accepts(ResourceBody, withAt(resource(), '/data/resource/memory/total', 2 ** 40));
  });
});

describe('null sensor readings are accepted', () => {
  it('cpu temperature, voltage, current and power', () => {
    let doc = resource();
    for (const k of ['temperature', 'voltage', 'current', 'power']) doc = withAt(doc, `/data/resource/cpu/${k}`, null);
    accepts(ResourceBody, doc);
  });
  it('every gpu reading', () => {
    let doc = resource();
    for (const k of [
      'compute_usage',
      'mem_usage',
      'mem_used',
      'mem_total',
      'temperature',
      'voltage',
      'current',
      'power',
    ])
      doc = withAt(doc, `/data/resource/gpu/0/${k}`, null);
    accepts(ResourceBody, doc);
  });
  it("a component's resource figures", () => {
    let doc = resource();
    for (const p of ['cpu/load', 'memory/mem_used', 'memory/mem_limit', 'network/tx', 'network/rx'])
      doc = withAt(doc, `/data/component/0/resource/${p}`, null);
    accepts(ResourceBody, doc);
  });
  it('but not figures every board has', () => {
    refuses(
      ResourceBody,
      withAt(resource(), '/data/resource/cpu/usage_percent', null),
      '/data/resource/cpu/usage_percent',
    );
    refuses(ResourceBody, withAt(resource(), '/data/resource/cpu/core_count', null), '/data/resource/cpu/core_count');
    refuses(ResourceBody, withAt(resource(), '/data/resource/memory/total', null), '/data/resource/memory/total');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/hostname', null), '/data/hostname');
  });
});

describe('bad bodies are refused naming the field', () => {
  it('query', () => {
    refuses(QueryBody, withAt(query(), '/api_version', 2), '/api_version', /1/);
    refuses(QueryBody, withAt(query(), '/data/manager_ip', '192.168.10'), '/data/manager_ip');
    refuses(QueryBody, withAt(query(), '/data/manager_port', 70000), '/data/manager_port');
    refuses(QueryBody, withAt(query(), '/data/manager_port', '3926'), '/data/manager_port');
    refuses(QueryBody, withAt(query(), '/data/url', '/heartbeat,/resource'), '/data/url');
    refuses(QueryBody, withAt(query(), '/data', undefined), '/data', /required/);
  });

  it('heartbeat', () => {
    refuses(HeartbeatBody, withAt(heartbeat(), '/api_version', 2), '/api_version');
    refuses(HeartbeatBody, withAt(heartbeat(), '/api_version', '1'), '/api_version');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/box_id', '1'), '/data/box_id', /integer/);
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/slot_id', 1.5), '/data/slot_id');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/cpu_id', -1), '/data/cpu_id');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/hostname', undefined), '/data/hostname', /required/);
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/host_ip', '192.168.10.290'), '/data/host_ip');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/host_ip', 'localhost'), '/data/host_ip');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/service_port', 70000), '/data/service_port');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/service_port', 0), '/data/service_port');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/cpu_arch', 64), '/data/cpu_arch');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/gpu', {}), '/data/gpu');
    refuses(HeartbeatBody, withAt(heartbeat(), '/data/gpu/0/index', undefined), '/data/gpu/0/index', /required/);
    refuses(HeartbeatBody, { api_version: 1 }, '/data', /required/);
    refuses(HeartbeatBody, [heartbeat()], '/');
  });

  it('resource', () => {
    refuses(ResourceBody, withAt(resource(), '/data/host_ip', undefined), '/data/host_ip');
    refuses(ResourceBody, withAt(resource(), '/data/resource/cpu/core_count', '8'), '/data/resource/cpu/core_count');
    refuses(ResourceBody, withAt(resource(), '/data/resource/memory/total', -1), '/data/resource/memory/total');
    refuses(ResourceBody, withAt(resource(), '/data/resource/memory/used', 1.5), '/data/resource/memory/used');
    refuses(
      ResourceBody,
      withAt(resource(), '/data/resource/network/1/rx_bytes', '123456'),
      '/data/resource/network/1/rx_bytes',
    );
    refuses(
      ResourceBody,
      withAt(resource(), '/data/resource/disk/0/mount_point', undefined),
      '/data/resource/disk/0/mount_point',
    );
    refuses(ResourceBody, withAt(resource(), '/data/resource/gpu/0/name', 0), '/data/resource/gpu/0/name');
    refuses(ResourceBody, withAt(resource(), '/data/component/0/state', 'UP'), '/data/component/0/state');
    refuses(ResourceBody, withAt(resource(), '/data/component/0/config/id', undefined), '/data/component/0/config/id');
    refuses(ResourceBody, withAt(resource(), '/data/component', undefined), '/data/component', /required/);
  });

  it('deploy', () => {
    refuses(DeployRequestBody, withAt(deployStart(), '/data/mode', 'restart'), '/data/mode');
    refuses(DeployRequestBody, withAt(deployStart(), '/data/type', 'rpm'), '/data/type');
    refuses(DeployRequestBody, withAt(deployStart(), '/data/uuid', undefined), '/data/uuid');
    refuses(DeployRequestBody, withAt(deployStart(), '/data/require/cpu', '2'), '/data/require/cpu');
    refuses(DeployReplyBody, withAt(deployReply(), '/data/result', undefined), '/data/result');
  });
});
