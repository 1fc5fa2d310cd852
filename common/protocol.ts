/**
 * The agent↔manager protocol v1.1 (docs/protocol.md) as JSON schemas: the one source of truth.
 *
 * The TypeScript types below are derived from these schemas (`Static<...>`), fastify validates
 * HTTP bodies with them, and the agent validates multicast queries with them (common/validate.ts).
 * Field names, nesting and units are exactly the spec's: sizes in bytes, usage in percent,
 * temperature in °C, voltage in V, current in A, power in W. A sensor the board does not have is
 * `null` (docs/protocol.md "Common rules"), never a made-up 0.
 *
 * Extensions are optional fields the other side may ignore (docs/protocol.md §6 Interoperability
 * rules); unknown properties are therefore accepted and ignored everywhere.
 */
import { type Static, Type } from 'typebox';
import { literalUnion, SEVERITIES, WorkloadTypeSchema } from './api/primitives.js';
import { API_VERSION } from './constants.js';

/** Integer ≥ 0 (spec "int" used as a count or an id). */
const Count = (description: string) => Type.Integer({ minimum: 0, description });
/** Unsigned 64-bit quantity (spec "uint64_t"), in the unit the description names. */
const U64 = (description: string) => Type.Integer({ minimum: 0, description });
/** A reading that may be absent on this board: a number, or null when there is no sensor. */
const Reading = (description: string) =>
  Type.Union([Type.Number(), Type.Null()], { description: `${description}; null when the board has no such sensor` });
/** Dotted-decimal IPv4 address (spec "点分十进制"). */
const IPv4 = (description: string) => Type.String({ format: 'ipv4', description });
/** TCP/UDP port (spec "uint16_t"), 1..65535. */
const Port = (description: string) => Type.Integer({ minimum: 1, maximum: 65535, description });

/** `api_version`: always 1 (docs/protocol.md "Common rules", Envelope). */
export const ApiVersion = Type.Literal(API_VERSION, { description: 'protocol version, always 1' });

/** Wraps a `data` schema in the spec's envelope `{ api_version, data }`. */
function envelope<T extends Parameters<typeof Type.Object>[0]>(
  data: ReturnType<typeof Type.Object<T>>,
  description: string,
) {
  return Type.Object({ api_version: ApiVersion, data }, { description });
}

// ---------------------------------------------------------------------------------------------
// Query (docs/protocol.md §1 Query): UDP multicast to 239.192.168.80:3980
// ---------------------------------------------------------------------------------------------

/** Largest reply window a query may suggest, ms. */
export const MAX_JITTER_MS = 60000;

/**
 * Data of a multicast query. `jitter_ms` (the reply window) and `ts`/`sig` (signed queries,
 * docs/protocol.md "1a. Signed queries", common/signing.ts) are muster's optional extensions.
 */
export const QueryData = Type.Object({
  manager_ip: IPv4('address the agent reports to'),
  manager_port: Port('port the agent reports to'),
  url: Type.Union([Type.Literal('/heartbeat'), Type.Literal('/resource')], {
    description: 'the one report this query asks for',
  }),
  jitter_ms: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: MAX_JITTER_MS,
      description: 'muster extension: suggested reply window in ms; an agent waits a random delay in [0, jitter_ms]',
    }),
  ),
  ts: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: 'muster extension (signed queries): when the query was signed, ms since the epoch',
    }),
  ),
  sig: Type.Optional(
    Type.String({
      maxLength: 256,
      description: 'muster extension (signed queries): HMAC-SHA256 of the canonical form, 64 lowercase hex digits',
    }),
  ),
});
export type QueryData = Static<typeof QueryData>;
/** A multicast query body. */
export const QueryBody = envelope(QueryData, 'multicast query (docs/protocol.md §1, manager查询)');
export type QueryBody = Static<typeof QueryBody>;

// ---------------------------------------------------------------------------------------------
// POST /heartbeat (docs/protocol.md §2 Heartbeat)
// ---------------------------------------------------------------------------------------------

/** A GPU as named in a heartbeat. */
export const HeartbeatGpu = Type.Object({
  index: Count('gpu device index'),
  name: Type.String({ description: 'gpu device name' }),
});
export type HeartbeatGpu = Static<typeof HeartbeatGpu>;

/** Data of a heartbeat report: the board's identity. */
export const HeartbeatData = Type.Object({
  box_id: Count('chassis (box) number'),
  slot_id: Count('slot number'),
  cpu_id: Count('cpu number on the board'),
  srio_id: Count('srio number'),
  host_ip: IPv4('address of the interface that routes to the manager'),
  hostname: Type.String({ description: 'host name' }),
  service_port: Port('port of the command service (/deploy)'),
  box_type: Type.String({ description: 'chassis type, e.g. 计算I型' }),
  board_type: Type.String({ description: 'board type, e.g. GPU' }),
  cpu_type: Type.String({ description: 'cpu type, e.g. Phytium,D2000/8' }),
  os_type: Type.String({ description: 'operating system, e.g. Kylin Linux Advanced Server V10' }),
  resource_type: Type.String({ description: 'resource (module) type, e.g. GPU I' }),
  cpu_arch: Type.String({ description: 'cpu architecture, e.g. aarch64' }),
  gpu: Type.Array(HeartbeatGpu, { description: 'GPUs of the board; empty when none' }),
});
export type HeartbeatData = Static<typeof HeartbeatData>;
/** A heartbeat report body. */
export const HeartbeatBody = envelope(HeartbeatData, 'heartbeat report (docs/protocol.md §2, agent心跳信息上报)');
export type HeartbeatBody = Static<typeof HeartbeatBody>;

// ---------------------------------------------------------------------------------------------
// POST /resource (docs/protocol.md §3 Resource report)
// ---------------------------------------------------------------------------------------------

/** CPU figures of a resource report. */
export const CpuResource = Type.Object({
  usage_percent: Type.Number({ minimum: 0, description: 'cpu usage, %' }),
  load_avg_1m: Type.Number({ minimum: 0, description: '1 minute load average' }),
  load_avg_5m: Type.Number({ minimum: 0, description: '5 minute load average' }),
  load_avg_15m: Type.Number({ minimum: 0, description: '15 minute load average' }),
  core_count: Count('number of cores'),
  core_allocated: Count('cores held by running components'),
  temperature: Reading('cpu temperature, °C'),
  voltage: Reading('cpu voltage, V'),
  current: Reading('cpu current, A'),
  power: Reading('cpu power, W'),
});
export type CpuResource = Static<typeof CpuResource>;

/** Memory figures of a resource report. */
export const MemoryResource = Type.Object({
  total: U64('total memory, bytes'),
  used: U64('used memory, bytes'),
  free: U64('free (available) memory, bytes'),
  usage_percent: Type.Number({ minimum: 0, description: 'memory usage, %' }),
});
export type MemoryResource = Static<typeof MemoryResource>;

/** One network interface's counters. */
export const NetworkResource = Type.Object({
  interface: Type.String({ description: 'interface name' }),
  rx_bytes: U64('received bytes'),
  tx_bytes: U64('sent bytes'),
  rx_packets: U64('received packets'),
  tx_packets: U64('sent packets'),
  rx_errors: Count('receive errors'),
  tx_errors: Count('send errors'),
});
export type NetworkResource = Static<typeof NetworkResource>;

/** One mounted filesystem. */
export const DiskResource = Type.Object({
  device: Type.String({ description: 'device name' }),
  mount_point: Type.String({ description: 'mount path' }),
  total: U64('size, bytes'),
  used: U64('used, bytes'),
  free: U64('free (available to users), bytes'),
  usage_percent: Type.Number({ minimum: 0, description: 'usage, %' }),
});
export type DiskResource = Static<typeof DiskResource>;

/** One GPU's figures. */
export const GpuResource = Type.Object({
  index: Count('gpu device index'),
  name: Type.String({ description: 'gpu device name' }),
  compute_usage: Reading('gpu compute usage, %'),
  mem_usage: Reading('gpu memory usage (used / total), %'),
  mem_used: Type.Union([U64('gpu memory used, bytes'), Type.Null()]),
  mem_total: Type.Union([U64('gpu memory total, bytes'), Type.Null()]),
  temperature: Reading('gpu temperature, °C'),
  voltage: Reading('gpu voltage, V'),
  current: Reading('gpu current, A'),
  power: Reading('gpu power, W'),
});
export type GpuResource = Static<typeof GpuResource>;

/** Component (workload) states (docs/protocol.md §3 `component[]`). */
export const COMPONENT_STATES = ['PENDING', 'RUNNING', 'FAILED', 'STOPPED', 'SLEEPING'] as const;
export type ComponentState = (typeof COMPONENT_STATES)[number];

/** One component (container or bar process) the agent runs. */
export const Component = Type.Object({
  instance_id: Type.String({ description: 'business instance id the component belongs to' }),
  uuid: Type.String({ description: 'component instance uuid' }),
  index: Type.Integer({ description: 'index of the component within its instance' }),
  config: Type.Object({
    name: Type.String({ description: 'container or bundle name' }),
    id: Type.String({ description: 'container id, or the bar process pid as a string' }),
  }),
  state: Type.Union(
    [
      Type.Literal('PENDING'),
      Type.Literal('RUNNING'),
      Type.Literal('FAILED'),
      Type.Literal('STOPPED'),
      Type.Literal('SLEEPING'),
    ],
    { description: 'PENDING/RUNNING/FAILED/STOPPED/SLEEPING' },
  ),
  resource: Type.Object({
    cpu: Type.Object({ load: Reading('cpu load of the component, % of one core') }),
    memory: Type.Object({
      mem_used: Type.Union([U64('memory used, bytes'), Type.Null()]),
      mem_limit: Type.Union([U64('memory limit, bytes'), Type.Null()]),
    }),
    network: Type.Object({
      tx: Type.Union([U64('bytes sent'), Type.Null()]),
      rx: Type.Union([U64('bytes received'), Type.Null()]),
    }),
  }),
});
export type Component = Static<typeof Component>;

/** Data of a resource report. */
export const ResourceData = Type.Object({
  host_ip: IPv4('address of the interface that routes to the manager'),
  resource: Type.Object({
    cpu: CpuResource,
    memory: MemoryResource,
    network: Type.Array(NetworkResource),
    disk: Type.Array(DiskResource),
    gpu: Type.Array(GpuResource),
  }),
  component: Type.Array(Component),
});
export type ResourceData = Static<typeof ResourceData>;
/** A resource report body. */
export const ResourceBody = envelope(ResourceData, 'resource report (docs/protocol.md §3, agent资源信息上报)');
export type ResourceBody = Static<typeof ResourceBody>;

// ---------------------------------------------------------------------------------------------
// POST /deploy (docs/protocol.md §5 Load command)
// ---------------------------------------------------------------------------------------------

/** Resource requirement of a start: whole cores, memory in bytes, a GPU count. */
export const Require = Type.Object({
  cpu: Type.Integer({ minimum: 0, description: 'whole cores, allocated exclusively' }),
  memory: U64('memory, bytes (hard limit)'),
  gpu: Type.Integer({ minimum: 0, description: 'number of GPUs' }),
});
export type Require = Static<typeof Require>;

/** Fields shared by the deploy request and its reply. */
const deployFields = {
  mode: Type.Union([Type.Literal('start'), Type.Literal('stop')], { description: 'start or stop' }),
  type: WorkloadTypeSchema,
  uuid: Type.String({ minLength: 1, description: 'component instance uuid' }),
  id: Type.Optional(
    Type.Union([Type.String(), Type.Integer({ minimum: 1 })], {
      description: 'container id (string) or bar pid (int); needed to stop',
    }),
  ),
  url: Type.Optional(Type.String({ description: 'software repository: registry host:port, or http(s) base URL' })),
  file: Type.Optional(Type.String({ description: 'image reference, tarball or bundle name' })),
  require: Type.Optional(Require),
  instance_id: Type.Optional(Type.String({ description: 'muster extension: business instance id' })),
  index: Type.Optional(Type.Integer({ description: 'muster extension: component index within the instance' })),
};

/** Data of a deploy request. Conditional rules (start needs url/file/require) are checked in code. */
export const DeployRequestData = Type.Object(deployFields);
export type DeployRequestData = Static<typeof DeployRequestData>;
/** A deploy request body. */
export const DeployRequestBody = envelope(DeployRequestData, 'deploy request (docs/protocol.md §5, 加载命令)');
export type DeployRequestBody = Static<typeof DeployRequestBody>;

/** Data of a deploy reply: the request's fields plus `result` (0 = success) and `message`. */
export const DeployReplyData = Type.Object({
  ...deployFields,
  mode: Type.String(),
  type: Type.String(),
  uuid: Type.String(),
  result: Type.Integer({ description: 'result code, 0 = success' }),
  message: Type.String({ description: 'what happened' }),
});
export type DeployReplyData = Static<typeof DeployReplyData>;
/** A deploy reply body. */
export const DeployReplyBody = envelope(DeployReplyData, 'deploy reply (docs/protocol.md §5, 加载命令 回复)');
export type DeployReplyBody = Static<typeof DeployReplyBody>;

// ---------------------------------------------------------------------------------------------
// POST /alert (docs/protocol.md §4a Agent alert, a muster extension): a board raises or clears one
// ---------------------------------------------------------------------------------------------

/** Data of an agent's alert: a board-local event (a workload crashed, a sensor over its limit). */
export const AgentAlertData = Type.Object({
  host_ip: IPv4('address of the interface that routes to the manager (as in reports)'),
  box_id: Count('chassis (box) number of the board raising it'),
  slot_id: Count('slot number'),
  cpu_id: Count('cpu number on the board'),
  name: Type.String({
    pattern: '^[a-z][a-z0-9_.-]{0,63}$',
    description: 'what the alert is, e.g. component_crashed, sensor_over_limit (lower case, digits, _ . -)',
  }),
  state: Type.Union([Type.Literal('firing'), Type.Literal('resolved')], {
    description: 'firing raises (or updates) the alert; resolved clears it',
  }),
  severity: Type.Optional(literalUnion(SEVERITIES, { description: 'critical, warning or info; default warning' })),
  message: Type.String({ maxLength: 2000, description: 'what happened, for the operator' }),
  instance: Type.Optional(
    Type.String({ maxLength: 200, description: 'which one of several: a component uuid, a sensor, a device' }),
  ),
  metric: Type.Optional(Type.String({ maxLength: 200, description: 'the figure concerned, if any' })),
  value: Type.Optional(Type.Union([Type.Number(), Type.Null()], { description: "the figure's value, in its unit" })),
  threshold: Type.Optional(Type.Union([Type.Number(), Type.Null()], { description: 'the limit it crossed' })),
});
export type AgentAlertData = Static<typeof AgentAlertData>;
/** An agent's alert body. */
export const AgentAlertBody = envelope(AgentAlertData, 'agent alert (muster extension, docs/protocol.md §4a)');
export type AgentAlertBody = Static<typeof AgentAlertBody>;
