/**
 * The agent's configuration: schema (validated at start) and its type. The documented defaults
 * live in config/agent.yaml; see docs/configuration.md for every key.
 */
import { type Static, Type } from 'typebox';
import { ConfigError, loadConfig } from '../common/config.js';
import { SCREEN_METHODS } from '../common/files.js';
import { LOG_LEVELS } from '../common/log.js';
import { Millis, Strict } from '../common/schema-util.js';
import { GO_DURATION_PATTERN } from './exec/duration.js';
import { ALLOW_PATTERN } from './link/listener.js';

/** A Go duration string such as `24h`, `30m`, `1h30m`, `500ms`. */
const GoDuration = (description: string) => Type.String({ pattern: GO_DURATION_PATTERN, description });

export const AgentConfigSchema = Strict({
  identity: Strict({
    box_id: Type.Integer({ minimum: 0 }),
    slot_id: Type.Integer({ minimum: 0 }),
    cpu_id: Type.Integer({ minimum: 0 }),
    srio_id: Type.Integer({ minimum: 0 }),
    box_type: Type.String(),
    board_type: Type.String(),
    resource_type: Type.String(),
    cpu_type: Type.String({ description: 'override of the detected cpu type; "" = detect' }),
    os_type: Type.String({ description: 'override of the detected os type; "" = detect' }),
  }),
  service: Strict({
    host: Type.String({ description: 'address the command service listens on' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
  }),
  manager: Strict({
    allow: Type.Array(Type.String({ pattern: ALLOW_PATTERN }), {
      description: "addresses or CIDRs a query's manager_ip must be in; others are ignored and counted; [] = any",
    }),
  }),
  link: Strict({
    mode: Type.Union([Type.Literal('multicast'), Type.Literal('websocket'), Type.Literal('both')], {
      description: 'how the agent reaches its manager: multicast queries, the WebSocket node link, or both',
    }),
    websocket: Strict({
      url: Type.String({ description: 'ws(s)://<manager>/api/v1/ws; required with mode websocket or both' }),
      token_file: Type.String({ description: 'file holding the link token (muster links tokens create)' }),
      heartbeat_interval_ms: Millis('full heartbeat body sent over the link this often', 1000),
      resource_interval_ms: Millis('full resource body sent over the link this often', 1000),
      ping_interval_ms: Millis('WebSocket ping; no answer for two intervals ends the connection', 100),
      backoff_base_ms: Millis('first reconnect delay bound (exponential backoff, full jitter)', 10),
      backoff_max_ms: Millis('largest reconnect delay bound', 100),
      max_held_replies: Type.Integer({
        minimum: 1,
        description: 'command replies kept until the manager acknowledges them (the oldest go first)',
      }),
    }),
  }),
  multicast: Strict({
    group: Type.String({ format: 'ipv4' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    interface: Type.String({ description: 'interface name or IPv4 address to join on; "" = the default' }),
    rejoin_interval_ms: Millis('how often the group membership is checked and renewed', 1000),
  }),
  report: Strict({
    jitter_ms: Millis('largest random delay before a report when the query suggests none'),
    timeout_ms: Millis('time limit of one report POST', 100),
    max_in_flight: Type.Integer({ minimum: 1, maximum: 64, description: 'reports of one url under way at once' }),
    host_ip: Type.String({
      description: 'override of the detected host_ip; "" = the interface routing to the manager',
    }),
    rate_per_destination: Type.Number({
      exclusiveMinimum: 0,
      description: 'reports per second one manager_ip:manager_port may get, sustained (token bucket refill)',
    }),
    burst_per_destination: Type.Integer({
      minimum: 1,
      description: 'reports one destination may get at once after a quiet period (token bucket size)',
    }),
    max_destinations: Type.Integer({
      minimum: 1,
      maximum: 100000,
      description: 'most destinations whose rate is tracked besides the known manager; beyond it new ones are dropped',
    }),
    max_in_flight_total: Type.Integer({
      minimum: 1,
      maximum: 1024,
      description: 'reports under way at once to destinations other than the known manager',
    }),
  }),
  query: Strict({
    signing: Strict({
      key_file: Type.String({
        description: 'shared key file (mode 0600); set = only queries signed with it are answered; "" = any',
      }),
      previous_key_file: Type.String({
        description: 'a second key accepted too, during a key rollover; "" = none',
      }),
      max_skew_ms: Millis("largest difference between a signed query's ts and this clock, either way", 1000),
      replay_cache_size: Type.Integer({
        minimum: 16,
        maximum: 1000000,
        description: 'most signatures remembered to refuse replays within the window',
      }),
    }),
  }),
  collect: Strict({
    interval_ms: Millis('sampling interval of cpu, load, memory, network and sensors', 100),
    disk_interval_ms: Millis('sampling interval of disks', 100),
    gpu_interval_ms: Millis('sampling interval of GPUs', 100),
    timeout_ms: Millis('time limit of one collector run; a mount or nvidia-smi slower than this is skipped', 50),
    proc_root: Type.String(),
    sys_root: Type.String(),
    nvidia_smi: Type.String({ description: 'nvidia-smi command; absent = no GPUs' }),
    network_exclude: Type.Array(Type.String(), { description: 'interface names to leave out; * matches any run' }),
    disk_exclude_fstypes: Type.Array(Type.String()),
    disk_exclude_mounts: Type.Array(Type.String(), { description: 'mount points to leave out; * matches any run' }),
    cpu_temperature_sensor: Type.String({ description: 'hwmon "chip/label" or thermal zone type; "" = auto' }),
    cpu_power_chip: Type.String({ description: 'hwmon chip with the cpu voltage/current/power; "" = none' }),
  }),
  auth: Strict({
    token: Type.String({ description: 'bearer token the manager must send to /deploy' }),
    token_file: Type.String({ description: 'file holding the token; wins over token' }),
    disabled: Type.Boolean({ description: 'accept /deploy without a token (legacy managers)' }),
  }),
  deploy: Strict({
    reserved_cores: Type.Array(Type.Integer({ minimum: 0 }), { description: 'core ids never given to workloads' }),
    reserve_memory_bytes: Type.Integer({ minimum: 0, description: 'memory kept for the system, bytes' }),
    stop_grace_ms: Millis('time between the stop signal and SIGKILL'),
    keep_ended_ms: Millis('how long a stopped component stays in reports'),
    fetch_timeout_ms: Millis('time limit of one image pull or bundle fetch', 1000),
    max_bundle_bytes: Type.Integer({ minimum: 1, description: 'largest bar bundle or image tarball fetched, bytes' }),
    log_max_bytes: Type.Integer({ minimum: 1024, description: 'size bound of each bar stdout/stderr log file, bytes' }),
    docker_socket: Type.String({ description: 'docker engine socket; "" = no docker driver' }),
    cgroup_root: Type.String({ description: 'cgroup mount root for bar cpuset and memory limits' }),
  }),
  bar: Strict({
    max_unpacked_bytes: Type.Integer({
      minimum: 1,
      description: 'largest total size of an unpacked bar bundle, bytes',
    }),
    max_files: Type.Integer({ minimum: 1, description: 'most entries (files, directories, links) in a bar bundle' }),
    allow_symlinks: Type.Boolean({ description: 'accept symlinks in bundles (their targets must resolve inside)' }),
    cache_max_bytes: Type.Integer({ minimum: 0, description: 'largest total size of the bundle cache, bytes (LRU)' }),
  }),
  http: Strict({
    body_limit_bytes: Type.Integer({ minimum: 1024, description: 'largest request body of the command routes, bytes' }),
    max_json_depth: Type.Integer({ minimum: 2, maximum: 1000, description: 'deepest JSON nesting of a request body' }),
  }),
  exec: Strict({
    step_timeout: GoDuration('time limit of a step that names no timeout (seed --exec_timeout)'),
    keep: GoDuration('how long a task and its results are kept after it ended (seed --key_expire)'),
    kill_grace: GoDuration("time between SIGTERM to a step's process group and SIGKILL"),
    pool_size: Type.Integer({ minimum: 1, maximum: 1024, description: 'steps running at once on this board' }),
    max_requests: Type.Integer({
      minimum: 1,
      maximum: 100000,
      description: 'tasks queued or running at once; a submission beyond it is refused',
    }),
    max_tasks: Type.Integer({ minimum: 1, maximum: 1000000, description: 'tasks kept (ended ones, oldest dropped)' }),
    max_output_bytes: Type.Integer({
      minimum: 1024,
      description: 'bytes kept of each stream of a step (the tail; the head is cut and counted)',
    }),
    output_lines: Type.Integer({
      minimum: 16,
      maximum: 1000000,
      description: 'live output lines held per task for exec_status (ring)',
    }),
    log_max_bytes: Type.Integer({ minimum: 1024, description: 'exec log size before it is rotated to exec.log.1' }),
    commands_dir: Type.String({ description: 'the command set: named executables with a .json sidecar' }),
    allow_raw: Type.Boolean({ description: 'run raw command_content; false = only command-set entries' }),
    max_generate_file_bytes: Type.Integer({ minimum: 1, description: 'largest generate_file exec_file returns' }),
    osreapi: Strict({
      host: Type.String({ description: 'address of the seed executor API; "" = service.host' }),
      port: Type.Integer({ minimum: 0, maximum: 65535, description: 'port of the seed executor API; 0 = off' }),
      request_timeout_ms: Millis('time limit of one request to the seed executor API', 100),
    }),
  }),
  labels: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.String({ maxLength: 256 }), {
    maxProperties: 64,
    additionalProperties: false,
    description: 'free labels sent in heartbeats (extension), matched by targets',
  }),
  files: Strict({
    roots: Type.Array(Type.String({ minLength: 1 }), {
      description:
        'absolute directories files may be written to, read from and deleted in; [] = none (every file request refused)',
    }),
    max_bytes: Type.Integer({ minimum: 0, description: 'largest file one upload may write, bytes' }),
    max_concurrent_uploads: Type.Integer({ minimum: 1, maximum: 256, description: 'uploads written at once' }),
    min_free_bytes: Type.Integer({
      minimum: 0,
      description: 'free space an upload must leave on its file system, bytes',
    }),
    partial_ttl_ms: Millis('a partial upload untouched this long is deleted', 1000),
    idle_timeout_ms: Millis('an upload body that sends nothing for this long is dropped (the partial file kept)', 100),
    max_list_entries: Type.Integer({
      minimum: 1,
      maximum: 1000000,
      description: 'most entries of one directory listing',
    }),
  }),
  screen: Strict({
    methods: Type.Array(Type.Union(SCREEN_METHODS.map((m) => Type.Literal(m))), {
      description: 'capture methods tried in order: x11, wayland, fb',
    }),
    timeout_ms: Millis('time limit of one capture', 100),
    max_bytes: Type.Integer({ minimum: 1024, description: 'largest capture output (raw dump and PNG), bytes' }),
    display: Type.String({ description: 'X11 DISPLAY; "" = the lowest display with a socket in x11_socket_dir' }),
    xauthority: Type.String({ description: 'X11 XAUTHORITY file; "" = the one of a running process of that display' }),
    x11_socket_dir: Type.String({ description: 'directory of the X11 sockets X<n>' }),
    wayland_display: Type.String({ description: 'Wayland socket name; "" = the first wayland-<n> found' }),
    xdg_runtime_dir: Type.String({ description: 'directory of the Wayland socket; "" = look in /run/user/*' }),
    fb_device: Type.String({ description: 'Linux frame buffer device' }),
  }),
  data_dir: Type.String(),
  log: Strict({ level: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l))) }),
});
/** The agent's validated configuration. */
export type AgentConfig = Static<typeof AgentConfigSchema>;

/**
 * Loads the agent config: defaults, `file`, `MUSTER_AGENT_*` env vars, then `--set` overrides.
 * @throws ConfigError naming the key and what was expected.
 */
export function loadAgentConfig(file?: string, sets?: readonly string[], env?: NodeJS.ProcessEnv): AgentConfig {
  const cfg = loadConfig<AgentConfig>(AgentConfigSchema, { name: 'agent', file, sets, env });
  if (cfg.link.mode !== 'multicast' && !/^wss?:\/\//.test(cfg.link.websocket.url)) {
    throw new ConfigError(
      `config key link.websocket.url: link.mode ${cfg.link.mode} needs a ws:// or wss:// url (e.g. ws://manager:3926/api/v1/ws)`,
    );
  }
  return cfg;
}
