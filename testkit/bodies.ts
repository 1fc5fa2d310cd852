/**
 * Report bodies in the spec's shape (docs/protocol.md §2 Heartbeat, §3 Resource report) for
 * boards that exist only in a test or a benchmark: one builder per body and per part, each with
 * fixed, valid defaults and overrides, e.g. `heartbeatData({ box_id: 2, host_ip: '10.0.0.7' })`.
 *
 * Shared by tests/ and bench/ (neither imports the other). Every default validates against the
 * schemas of common/protocol.ts; a test that asserts a value should pass that value as an
 * override rather than rely on the default.
 */
import type {
  Component,
  CpuResource,
  DiskResource,
  GpuResource,
  HeartbeatBody,
  HeartbeatData,
  MemoryResource,
  NetworkResource,
  ResourceBody,
  ResourceData,
} from '../common/protocol.js';

/** `{ api_version: 1, data }` around heartbeat data. */
export const heartbeatBody = (d: HeartbeatData): HeartbeatBody => ({ api_version: 1, data: d });
/** `{ api_version: 1, data }` around resource data. */
export const resourceBody = (d: ResourceData): ResourceBody => ({ api_version: 1, data: d });

/**
 * The heartbeat data of a board, node `1-3-0` at 10.0.0.5 by default: a Phytium D2000/8 GPU board
 * on Kylin V10 with no GPU listed. `hostname` defaults to `board-<box>-<slot>-<cpu>` of the
 * (possibly overridden) position.
 */
export function heartbeatData(over: Partial<HeartbeatData> = {}): HeartbeatData {
  const box_id = over.box_id ?? 1;
  const slot_id = over.slot_id ?? 3;
  const cpu_id = over.cpu_id ?? 0;
  return {
    box_id,
    slot_id,
    cpu_id,
    srio_id: 0,
    host_ip: '10.0.0.5',
    hostname: `board-${box_id}-${slot_id}-${cpu_id}`,
    service_port: 23980,
    box_type: '计算I型',
    board_type: 'GPU',
    cpu_type: 'Phytium,D2000/8',
    os_type: 'Kylin Linux Advanced Server V10',
    resource_type: 'GPU I',
    cpu_arch: 'aarch64',
    gpu: [],
    ...over,
  };
}

/** A heartbeat body: {@link heartbeatData} in the envelope. */
export const heartbeat = (over: Partial<HeartbeatData> = {}): HeartbeatBody => heartbeatBody(heartbeatData(over));

/** `resource.cpu`: 50 % busy, 8 cores (2 allocated), 51.5 °C, 12 W, no voltage or current sensor. */
export const cpu = (over: Partial<CpuResource> = {}): CpuResource => ({
  usage_percent: 50,
  load_avg_1m: 1.25,
  load_avg_5m: 1,
  load_avg_15m: 0.5,
  core_count: 8,
  core_allocated: 2,
  temperature: 51.5,
  voltage: null,
  current: null,
  power: 12,
  ...over,
});

/** `resource.memory`: 16 GiB, 4 GiB used (25 %). */
export const memory = (over: Partial<MemoryResource> = {}): MemoryResource => ({
  total: 17179869184,
  used: 4294967296,
  free: 12884901888,
  usage_percent: 25,
  ...over,
});

/** One `resource.network[]` entry: eth0. */
export const nic = (over: Partial<NetworkResource> = {}): NetworkResource => ({
  interface: 'eth0',
  rx_bytes: 1000,
  tx_bytes: 2000,
  rx_packets: 10,
  tx_packets: 20,
  rx_errors: 0,
  tx_errors: 0,
  ...over,
});

/** One `resource.disk[]` entry: /dev/sda1 on /, half full. */
export const disk = (over: Partial<DiskResource> = {}): DiskResource => ({
  device: '/dev/sda1',
  mount_point: '/',
  total: 1000,
  used: 500,
  free: 500,
  usage_percent: 50,
  ...over,
});

/** One `resource.gpu[]` entry: GPU 0, a Jingjia JM9271 with 8 GiB, no voltage or current sensor. */
export const gpu = (over: Partial<GpuResource> = {}): GpuResource => ({
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
  ...over,
});

/** One `component[]` entry: a RUNNING workload `app` with no network figures. */
export const component = (over: Partial<Component> = {}): Component => ({
  instance_id: 'inst-1',
  uuid: 'u-1',
  index: 0,
  config: { name: 'app', id: 'abc123' },
  state: 'RUNNING',
  resource: {
    cpu: { load: 12 },
    memory: { mem_used: 1024, mem_limit: 67108864 },
    network: { tx: null, rx: null },
  },
  ...over,
});

/** Overrides of {@link resourceData}: cpu and memory merge over their defaults, lists replace. */
export interface ResourceOverrides {
  host_ip?: string;
  cpu?: Partial<CpuResource>;
  memory?: Partial<MemoryResource>;
  network?: NetworkResource[];
  disk?: DiskResource[];
  gpu?: GpuResource[];
  component?: Component[];
}

/**
 * The resource data of a board at 10.0.0.5 by default: {@link cpu} and {@link memory}, and no
 * network, disk, GPU or component unless given.
 */
export function resourceData(over: ResourceOverrides = {}): ResourceData {
  return {
    host_ip: over.host_ip ?? '10.0.0.5',
    resource: {
      cpu: cpu(over.cpu),
      memory: memory(over.memory),
      network: over.network ?? [],
      disk: over.disk ?? [],
      gpu: over.gpu ?? [],
    },
    component: over.component ?? [],
  };
}

/** A resource body: {@link resourceData} in the envelope. */
export const resource = (over: ResourceOverrides = {}): ResourceBody => resourceBody(resourceData(over));

/**
 * The heartbeat of a fake board at `box-slot-cpu` reporting from `hostIp`, hostname
 * `fake-<box>-<slot>-<cpu>`, with one GPU (as {@link fakeResourceData} reports).
 */
export function fakeHeartbeatData(hostIp: string, box: number, slot: number, cpuId = 0): HeartbeatData {
  return heartbeatData({
    box_id: box,
    slot_id: slot,
    cpu_id: cpuId,
    host_ip: hostIp,
    hostname: `fake-${box}-${slot}-${cpuId}`,
    gpu: [{ index: 0, name: 'Jingjia JM9271' }],
  });
}

/**
 * A resource report of a fake board: one of each part (network, disk, gpu, component), so it
 * makes exactly one point in each of cpu, memory, network, disk, gpu and component. `seq` shows
 * in cpu.usage_percent (seq % 100) and in network rx_bytes (seq), so points can be told apart.
 */
export function fakeResourceData(hostIp: string, seq = 0): ResourceData {
  return resourceData({
    host_ip: hostIp,
    cpu: { usage_percent: seq % 100, core_allocated: 1 },
    network: [nic({ rx_bytes: seq })],
    disk: [disk()],
    gpu: [gpu()],
    component: [component({ uuid: `u-${hostIp}` })],
  });
}
