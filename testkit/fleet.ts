/**
 * The bodies of a simulated fleet (bench/fleet.ts plays it; tests use single boards of it): agent
 * `i` of a fleet has a fixed position, address and identity, and a seeded stream of resource
 * reports that look like one board over time. Spec-shaped (docs/protocol.md §2 Heartbeat, §3
 * Resource report), about 4.6 KB of JSON per resource report.
 *
 * Simulated agent i:
 *   - position: box = 1 + ⌊i/64⌋, slot = 1 + ⌊(i mod 64)/2⌋, cpu = i mod 2 (node id box-slot-cpu)
 *   - host_ip 127.<net>.<1+⌊i/250⌋>.<1+(i mod 250)> (all of 127.0.0.0/8 is loopback on Linux)
 *   - a resource report with 4 NICs, 3 disks, 2 GPUs and 8 components
 *   - its own mulberry32 stream seeded from (seed, i): same seed, same bodies
 */
import type { Component, HeartbeatBody, ResourceBody } from '../common/protocol.js';
import { heartbeat } from './bodies.js';

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes a seed and an index into one 32-bit seed. */
export const mix = (seed: number, i: number) =>
  (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35)) >>> 0;

/** Largest fleet: 250 × 250 host addresses per /16 of 127.0.0.0/8. */
export const MAX_AGENTS = 62_500;

/** host_ip of simulated agent `i`: 127.<net>.<1+⌊i/250⌋>.<1+(i mod 250)>. */
export function hostIpOf(i: number, net = 20): string {
  return `127.${net}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/** Position of simulated agent `i`. */
export function positionOf(i: number): { box_id: number; slot_id: number; cpu_id: number } {
  return { box_id: 1 + Math.floor(i / 64), slot_id: 1 + Math.floor((i % 64) / 2), cpu_id: i % 2 };
}

const GPU_NAME = 'NVIDIA Jetson AGX Orin';
const GIB = 1024 ** 3;
const round2 = (x: number) => Math.round(x * 100) / 100;
const hex = (rng: () => number, n: number) => {
  let s = '';
  for (let k = 0; k < n; k++) s += Math.floor(rng() * 16).toString(16);
  return s;
};
const uuid = (rng: () => number) => {
  const h = hex(rng, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** The heartbeat body of agent `i` (identity only, so it never changes); hostname `board-<node id>`. */
export function fleetHeartbeat(i: number, net = 20): HeartbeatBody {
  return heartbeat({
    ...positionOf(i),
    srio_id: i % 64,
    host_ip: hostIpOf(i, net),
    gpu: [
      { index: 0, name: GPU_NAME },
      { index: 1, name: GPU_NAME },
    ],
  });
}

/** Per-agent state that makes successive resource reports look like one board over time. */
export interface FleetBoard {
  rng: () => number;
  components: { instance_id: string; uuid: string; name: string; id: string; index: number; state: string }[];
  counters: number[];
  reports: number;
}

export function fleetBoard(i: number, seed: number): FleetBoard {
  const rng = mulberry32(mix(seed, i));
  const states = ['RUNNING', 'RUNNING', 'RUNNING', 'RUNNING', 'RUNNING', 'SLEEPING', 'PENDING', 'STOPPED'];
  const components = Array.from({ length: 8 }, (_, k) => ({
    instance_id: `inst-${(i * 7 + (k >> 1)) % 997}`,
    uuid: uuid(rng),
    name: `radar-proc-${k}`,
    id: hex(rng, 64),
    index: k % 2,
    state: states[k] as string,
  }));
  const counters = Array.from({ length: 16 }, () => Math.floor(rng() * 1e12));
  return { rng, components, counters, reports: 0 };
}

/** The next resource report of agent `i` from its state `st` (counters grow, usages wander). */
export function nextFleetResource(i: number, st: FleetBoard, net = 20): ResourceBody {
  const r = st.rng;
  st.reports++;
  for (let k = 0; k < st.counters.length; k++) st.counters[k] = (st.counters[k] as number) + Math.floor(r() * 5e7);
  const c = st.counters;
  const memTotal = 32 * GIB;
  const memUsed = Math.floor(memTotal * (0.3 + r() * 0.4));
  const nics = ['eth0', 'eth1', 'enp1s0f0', 'enp1s0f1'];
  const disks = [
    { device: '/dev/nvme0n1p2', mount_point: '/', total: 256 * GIB },
    { device: '/dev/nvme0n1p3', mount_point: '/data', total: 1024 * GIB },
    { device: '/dev/sda1', mount_point: '/var/log', total: 64 * GIB },
  ];
  const component: Component[] = st.components.map((k) => ({
    instance_id: k.instance_id,
    uuid: k.uuid,
    index: k.index,
    config: { name: k.name, id: k.id },
    state: k.state as Component['state'],
    resource: {
      cpu: { load: round2(r() * 100) },
      memory: { mem_used: Math.floor(r() * 2 * GIB), mem_limit: 4 * GIB },
      network: { tx: Math.floor(r() * 1e10), rx: Math.floor(r() * 1e10) },
    },
  }));
  return {
    api_version: 1,
    data: {
      host_ip: hostIpOf(i, net),
      resource: {
        cpu: {
          usage_percent: round2(r() * 100),
          load_avg_1m: round2(r() * 8),
          load_avg_5m: round2(r() * 8),
          load_avg_15m: round2(r() * 8),
          core_count: 8,
          core_allocated: 5,
          temperature: round2(40 + r() * 30),
          voltage: round2(0.8 + r() * 0.2),
          current: round2(2 + r() * 8),
          power: round2(10 + r() * 20),
        },
        memory: {
          total: memTotal,
          used: memUsed,
          free: memTotal - memUsed,
          usage_percent: round2((memUsed / memTotal) * 100),
        },
        network: nics.map((nic, k) => ({
          interface: nic,
          rx_bytes: c[k * 4] as number,
          tx_bytes: c[k * 4 + 1] as number,
          rx_packets: Math.floor((c[k * 4 + 2] as number) / 900),
          tx_packets: Math.floor((c[k * 4 + 3] as number) / 900),
          rx_errors: k === 3 ? 2 : 0,
          tx_errors: 0,
        })),
        disk: disks.map((d) => {
          const used = Math.floor(d.total * (0.2 + r() * 0.5));
          return { ...d, used, free: d.total - used, usage_percent: round2((used / d.total) * 100) };
        }),
        gpu: [0, 1].map((index) => {
          const memUsedG = Math.floor(r() * 16 * GIB);
          return {
            index,
            name: GPU_NAME,
            compute_usage: round2(r() * 100),
            mem_usage: round2((memUsedG / (32 * GIB)) * 100),
            mem_used: memUsedG,
            mem_total: 32 * GIB,
            temperature: round2(35 + r() * 40),
            voltage: null,
            current: null,
            power: round2(15 + r() * 40),
          };
        }),
      },
      component,
    },
  };
}

/** A resource report body of agent `i` with `seed`, after `skip` earlier reports (for fixed body sets). */
export function fleetResource(i: number, seed = 1, net = 20, skip = 0): ResourceBody {
  const st = fleetBoard(i, seed);
  for (let k = 0; k < skip; k++) nextFleetResource(i, st, net);
  return nextFleetResource(i, st, net);
}
