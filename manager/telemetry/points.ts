/**
 * Reports as InfluxDB 1.x points (docs/telemetry.md has the schema as a table).
 *
 * One measurement per part of a report: `cpu`, `memory`, `network` (one point per interface),
 * `disk` (per mount point), `gpu` (per GPU), `component` (per component), and `node_state` (one
 * per heartbeat and one per liveness transition). Every point carries the node tags
 * (node, box, slot, cpu, hostname, host_ip). Fields keep the spec's names and units (bytes, %,
 * °C, V, A, W).
 *
 * InfluxDB 1.x refuses a write whose field type differs from the one stored first, so every field
 * has one fixed type here (SCHEMAS): counts and bytes are integers, percents, loads and sensor
 * readings are floats (50 is written as the float 50, never as the integer 50i). `toLine` writes
 * a point in line protocol by these types. A null reading (no sensor) is left out, never written
 * as 0; a point left with no field at all is not written (InfluxDB refuses one).
 */
import { FieldType } from 'influx';
import type { LinkMetrics } from '../../common/link.js';
import type { HeartbeatData, ResourceData } from '../../common/protocol.js';

/** The identity of a node as the tags every point carries. */
export interface NodeTags {
  /** Node id `box-slot-cpu`. */
  node: string;
  box: number;
  slot: number;
  cpu: number;
  hostname: string;
  host_ip: string;
}

/** A node's liveness state as written in `node_state`. */
export type NodeStateName = 'online' | 'suspect' | 'offline';

/** `node_state.state_code` of each state: 0 online, 1 suspect, 2 offline. */
export const STATE_CODES: Readonly<Record<NodeStateName, number>> = { online: 0, suspect: 1, offline: 2 };

/** The measurements written. */
export const MEASUREMENTS = ['cpu', 'memory', 'network', 'disk', 'gpu', 'component', 'node_state'] as const;
export type Measurement = (typeof MEASUREMENTS)[number];

/** Tag keys every point carries. */
export const NODE_TAG_KEYS = ['node', 'box', 'slot', 'cpu', 'hostname', 'host_ip'] as const;

const F = FieldType.FLOAT;
const I = FieldType.INTEGER;
const S = FieldType.STRING;

/**
 * Tags (besides NODE_TAG_KEYS) and typed fields of each measurement. The one place where a field's
 * type is chosen; never change a type of a field already written (InfluxDB would refuse the writes).
 */
export const SCHEMAS: Readonly<
  Record<Measurement, { tags: readonly string[]; fields: Readonly<Record<string, FieldType>> }>
> = {
  cpu: {
    tags: [],
    fields: {
      usage_percent: F,
      load_avg_1m: F,
      load_avg_5m: F,
      load_avg_15m: F,
      core_count: I,
      core_allocated: I,
      temperature: F,
      voltage: F,
      current: F,
      power: F,
    },
  },
  memory: { tags: [], fields: { total: I, used: I, free: I, usage_percent: F } },
  network: {
    tags: ['interface'],
    fields: { rx_bytes: I, tx_bytes: I, rx_packets: I, tx_packets: I, rx_errors: I, tx_errors: I },
  },
  disk: { tags: ['device', 'mount_point'], fields: { total: I, used: I, free: I, usage_percent: F } },
  gpu: {
    tags: ['gpu', 'gpu_name'],
    fields: {
      compute_usage: F,
      mem_usage: F,
      mem_used: I,
      mem_total: I,
      temperature: F,
      voltage: F,
      current: F,
      power: F,
    },
  },
  component: {
    tags: ['uuid', 'instance_id', 'name'],
    fields: { state: S, cpu_load: F, mem_used: I, mem_limit: I, net_tx: I, net_rx: I, index: I },
  },
  node_state: { tags: [], fields: { state: S, state_code: I, missed_rounds: I, reason: S } },
};

/** A point (timestamp in ms since the epoch, written with precision ms); `toLine` makes it line protocol. */
export interface Point {
  measurement: Measurement;
  tags: Record<string, string>;
  fields: Record<string, number | string>;
  timestamp: number;
}

/** Largest magnitude an InfluxDB integer field (int64) holds. */
const INT64_LIMIT = 2 ** 63;

/**
 * A tag value as InfluxDB can store it, or undefined when there is none: line breaks and tabs
 * become spaces (a line-protocol line cannot hold them) and a trailing backslash is cut (it would
 * escape the separator after it). An empty value is left out (InfluxDB refuses `tag=`).
 */
export function tagValue(v: string): string | undefined {
  if (v === '') return undefined;
  const clean = /[\r\n\t\\]/.test(v) ? v.replace(/[\r\n\t]/g, ' ').replace(/\\+$/, '') : v;
  return clean === '' ? undefined : clean;
}

/** The node tags as strings; empty values left out. Shared by all points of one report. */
export function nodeTagSet(t: NodeTags): Record<string, string> {
  const out: Record<string, string> = { node: t.node, box: String(t.box), slot: String(t.slot), cpu: String(t.cpu) };
  const hostname = tagValue(t.hostname);
  if (hostname !== undefined) out.hostname = hostname;
  const ip = tagValue(t.host_ip);
  if (ip !== undefined) out.host_ip = ip;
  return out;
}

/** `base` plus the given extra tags (empty ones left out). */
function withTags(base: Record<string, string>, extra: Record<string, string>): Record<string, string> {
  const out = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const c = tagValue(v);
    if (c !== undefined) out[k] = c;
  }
  return out;
}

/**
 * Collects the fields of `measurement` from `values`: a null, missing or non-finite number is left
 * out, as is an integer beyond int64; every other value is kept in its schema type (the schema
 * writes an INTEGER with `i`, a FLOAT without, whatever the number looks like).
 * @returns the fields, or null when none is left (such a point is not written)
 */
function fieldsOf(
  measurement: Measurement,
  values: Record<string, number | string | null | undefined>,
): Record<string, number | string> | null {
  const types = SCHEMAS[measurement].fields;
  const out: Record<string, number | string> = {};
  let n = 0;
  for (const [k, v] of Object.entries(values)) {
    if (v === null || v === undefined) continue;
    const type = types[k];
    if (type === FieldType.STRING) {
      out[k] = String(v);
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      if (type === FieldType.INTEGER) {
        if (Math.abs(v) >= INT64_LIMIT) continue;
        out[k] = Math.trunc(v);
      } else {
        out[k] = v;
      }
    }
    n++;
  }
  return n === 0 ? null : out;
}

function push(
  out: Point[],
  measurement: Measurement,
  tags: Record<string, string>,
  values: Record<string, number | string | null | undefined>,
  at: number,
): void {
  const fields = fieldsOf(measurement, values);
  if (fields) out.push({ measurement, tags, fields, timestamp: at });
}

/** Time of a point, whole ms. */
const ms = (at: number) => Math.round(at);

/**
 * The points of one resource report: `cpu`, `memory`, one `network` per interface, one `disk` per
 * mount point, one `gpu` per GPU and one `component` per component.
 * @param at arrival time of the report, ms since the epoch (the points' timestamp)
 */
export function resourcePoints(tags: NodeTags, r: ResourceData, at: number): Point[] {
  const t = ms(at);
  const base = nodeTagSet(tags);
  const out: Point[] = [];
  const { cpu, memory, network, disk, gpu } = r.resource;
  push(
    out,
    'cpu',
    base,
    {
      usage_percent: cpu.usage_percent,
      load_avg_1m: cpu.load_avg_1m,
      load_avg_5m: cpu.load_avg_5m,
      load_avg_15m: cpu.load_avg_15m,
      core_count: cpu.core_count,
      core_allocated: cpu.core_allocated,
      temperature: cpu.temperature,
      voltage: cpu.voltage,
      current: cpu.current,
      power: cpu.power,
    },
    t,
  );
  push(
    out,
    'memory',
    base,
    { total: memory.total, used: memory.used, free: memory.free, usage_percent: memory.usage_percent },
    t,
  );
  for (const n of network) {
    push(
      out,
      'network',
      withTags(base, { interface: n.interface }),
      {
        rx_bytes: n.rx_bytes,
        tx_bytes: n.tx_bytes,
        rx_packets: n.rx_packets,
        tx_packets: n.tx_packets,
        rx_errors: n.rx_errors,
        tx_errors: n.tx_errors,
      },
      t,
    );
  }
  for (const d of disk) {
    push(
      out,
      'disk',
      withTags(base, { device: d.device, mount_point: d.mount_point }),
      { total: d.total, used: d.used, free: d.free, usage_percent: d.usage_percent },
      t,
    );
  }
  for (const g of gpu) {
    push(
      out,
      'gpu',
      withTags(base, { gpu: String(g.index), gpu_name: g.name }),
      {
        compute_usage: g.compute_usage,
        mem_usage: g.mem_usage,
        mem_used: g.mem_used,
        mem_total: g.mem_total,
        temperature: g.temperature,
        voltage: g.voltage,
        current: g.current,
        power: g.power,
      },
      t,
    );
  }
  for (const c of r.component) {
    const res = c.resource;
    push(
      out,
      'component',
      withTags(base, { uuid: c.uuid, instance_id: c.instance_id, name: c.config.name }),
      {
        state: c.state,
        cpu_load: res.cpu.load,
        mem_used: res.memory.mem_used,
        mem_limit: res.memory.mem_limit,
        net_tx: res.network.tx,
        net_rx: res.network.rx,
        index: c.index,
      },
      t,
    );
  }
  return out;
}

/**
 * The `node_state` point of a heartbeat: the node has just reported, so it is online with no
 * missed round. (The heartbeat's other content is identity, already in the tags.)
 */
export function heartbeatPoint(tags: NodeTags, _h: HeartbeatData, at: number): Point {
  return {
    measurement: 'node_state',
    tags: nodeTagSet(tags),
    fields: { state: 'online', state_code: STATE_CODES.online, missed_rounds: 0 },
    timestamp: ms(at),
  };
}

/**
 * The points of a link-specification heartbeat's `metrics` (docs/links.md "Linked nodes"): `cpu`
 * (usage_percent, load_avg_1m), `memory` (usage_percent), `disk` (usage_percent, no device
 * tags: the specification names no disk), and the heartbeat's `node_state`; a metric not sent is
 * left out, a point left without a field is not written.
 * @param at arrival time, ms since the epoch
 */
export function linkMetricsPoints(tags: NodeTags, m: LinkMetrics, at: number): Point[] {
  const t = ms(at);
  const base = nodeTagSet(tags);
  const out: Point[] = [];
  push(out, 'cpu', base, { usage_percent: m.cpu_usage, load_avg_1m: m.load_average }, t);
  push(out, 'memory', base, { usage_percent: m.memory_usage }, t);
  push(out, 'disk', base, { usage_percent: m.disk_usage }, t);
  out.push({
    measurement: 'node_state',
    tags: base,
    fields: { state: 'online', state_code: STATE_CODES.online, missed_rounds: 0 },
    timestamp: t,
  });
  return out;
}

/**
 * The `node_state` point of a liveness transition, with its `reason` (e.g. `missed 2 heartbeat
 * rounds`). Only transitions carry `reason`.
 * @param missedRounds completed heartbeat rounds without a heartbeat; a non-finite value is left out
 */
export function nodeStatePoint(
  tags: NodeTags,
  state: NodeStateName,
  missedRounds: number,
  at: number,
  reason: string,
): Point {
  const fields: Record<string, number | string> = { state, state_code: STATE_CODES[state] };
  // A position no board claims any more has missed rounds without end (Infinity): left out.
  if (Number.isFinite(missedRounds)) fields.missed_rounds = Math.max(0, Math.trunc(missedRounds));
  if (reason !== '') fields.reason = reason;
  return { measurement: 'node_state', tags: nodeTagSet(tags), fields, timestamp: ms(at) };
}

/** Tag keys of each measurement in the order written: sorted, as InfluxDB recommends. */
const TAG_ORDER = Object.fromEntries(
  MEASUREMENTS.map((m) => [m, [...NODE_TAG_KEYS, ...SCHEMAS[m].tags].sort()]),
) as Record<Measurement, string[]>;
const FIELD_ORDER = Object.fromEntries(MEASUREMENTS.map((m) => [m, Object.keys(SCHEMAS[m].fields).sort()])) as Record<
  Measurement,
  string[]
>;

/** A tag key or value in line protocol: comma, equals sign and space escaped. */
const escTag = (v: string) => v.replace(/[,= ]/g, '\\$&');
/** A string field value in line protocol: quoted, with " and \ escaped. */
const quoted = (v: string) => `"${v.replace(/["\\]/g, '\\$&')}"`;

/**
 * A point as one line of InfluxDB line protocol, each field in its schema type: an INTEGER as
 * `12i`, a FLOAT as written by JavaScript (`50`, `1.25`: a float to InfluxDB), a STRING quoted.
 * Tags in key order; time in ms (the write says precision=ms). E.g.
 * `cpu,box=1,cpu=0,host_ip=10.0.0.5,hostname=kylin-a,node=1-3-0,slot=3 core_count=8i,usage_percent=50 1763712000123`
 */
export function toLine(p: Point): string {
  // Built as parts and joined: one flat string (~220 bytes for a typical point). Concatenated
  // with += it would stay a rope of ~20 pieces, over 1 KB per point in the buffer.
  const parts: string[] = [p.measurement];
  for (const k of TAG_ORDER[p.measurement]) {
    const v = p.tags[k];
    if (v !== undefined) parts.push(',', k, '=', escTag(v));
  }
  const types = SCHEMAS[p.measurement].fields;
  let sep = ' ';
  for (const k of FIELD_ORDER[p.measurement]) {
    const v = p.fields[k];
    if (v === undefined) continue;
    const t = types[k];
    let text: string;
    if (t === FieldType.STRING) text = quoted(String(v));
    else if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    else text = t === FieldType.INTEGER ? `${Math.trunc(v)}i` : String(v);
    parts.push(sep, k, '=', text);
    sep = ',';
  }
  parts.push(' ', String(p.timestamp));
  return parts.join('');
}
