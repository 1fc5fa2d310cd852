/**
 * The manager's configuration: schema (validated at start) and its type. The documented defaults
 * live in config/manager.yaml; see docs/configuration.md for every key.
 */
import { type Static, Type } from 'typebox';
import { type AlertRuleBody, AlertRuleBodySchema, RULE_NAME_PATTERN } from '../common/api/alerts.js';
import { literalUnion, NODE_ID_PATTERN, SEVERITIES } from '../common/api/primitives.js';
import { ConfigError, loadConfig } from '../common/config.js';
import { LOG_LEVELS } from '../common/log.js';
import { Millis, Strict } from '../common/schema-util.js';
import { isMetric, metricNames } from './alerts/catalog.js';

/** An alert severity of an event (alerts.events), described for the config's schema. */
const Severity = (description: string) => literalUnion(SEVERITIES, { description });

/**
 * A threshold rule as written in the config (docs/configuration.md "alerts"): the same schema as
 * the body of PUT /api/v1/alert-rules/:name (common/api/alerts.ts).
 */
export const AlertRuleConfig = AlertRuleBodySchema;
/** A threshold rule as written in the config. */
export type AlertRuleConfig = AlertRuleBody;

export const ManagerConfigSchema = Strict({
  http: Strict({
    host: Type.String({ description: 'address the HTTP server listens on' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    body_limit_bytes: Type.Integer({ minimum: 1024, description: 'largest report body; bigger ones get 413' }),
    max_json_depth: Type.Integer({
      minimum: 2,
      maximum: 1000,
      description: 'deepest JSON nesting of a request body (reports and API); deeper ones get 400 before parsing',
    }),
    metrics_auth: Type.Boolean({ description: 'GET /metrics needs Authorization: Bearer <token> of any role' }),
    api: Strict({
      host: Type.String({ description: 'address of a separate REST API listener; "" = http.host' }),
      port: Type.Integer({
        minimum: 0,
        maximum: 65535,
        description: 'port of a separate REST API listener; 0 = the API is served on http.port with the reports',
      }),
      tls: Strict({
        cert_file: Type.String({ description: 'PEM certificate (chain) of the API listener; "" = plain HTTP' }),
        key_file: Type.String({ description: 'PEM private key of the API listener; "" = plain HTTP' }),
      }),
    }),
  }),
  dashboard: Strict({
    enabled: Type.Boolean({ description: 'serve the web dashboard at / on the API listener' }),
    dir: Type.String({ description: 'the built dashboard files; "" = dist/dashboard of this installation' }),
    console: Type.Boolean({ description: 'serve the web console API of the original specification at /console/' }),
    console_wait_ms: Millis('how long POST /console/exec and /console/file wait for their task or push to end', 100),
    events: Strict({
      interval_ms: Millis('how often GET /api/v1/events looks for node and alert changes and sends them', 100),
      ping_ms: Millis('how often an idle event stream gets a ping', 1000),
      max_clients: Type.Integer({ minimum: 1, maximum: 10_000, description: 'most event streams open at once' }),
      max_buffer_bytes: Type.Integer({
        minimum: 65_536,
        description: 'most bytes queued for one event stream before it is dropped (a reader that does not keep up)',
      }),
    }),
  }),
  auth: Strict({
    session_ttl_ms: Millis('how long a login session lasts', 60_000),
    initial_admin_password_file: Type.String({
      description:
        'first start: the admin password is read from this file when it exists, else written to it (0600); "" = <data_dir>/initial-admin-password',
    }),
    lockout: Strict({
      address_failures: Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'failed logins from one address before it is locked',
      }),
      user_failures: Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'failed logins for one user before it is locked for the addresses that failed',
      }),
      base_ms: Millis('first lock; doubles with each further failure', 100),
      max_ms: Millis('longest lock', 1000),
      window_ms: Millis('failures older than this are forgotten', 1000),
    }),
  }),
  advertise_ip: Type.String({ description: 'manager_ip put in queries; "" = the multicast interface address' }),
  multicast: Strict({
    group: Type.String({ format: 'ipv4' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    interface: Type.String({ description: 'interface name or IPv4 address to send on; "" = the default route' }),
    ttl: Type.Integer({ minimum: 0, maximum: 255 }),
    loopback: Type.Boolean({ description: 'deliver queries to agents on this machine too' }),
  }),
  query: Strict({
    heartbeat_interval_ms: Millis('interval of /heartbeat queries (one liveness round)', 100),
    resource_interval_ms: Millis('interval of /resource queries', 100),
    jitter_ms: Type.Integer({
      minimum: 0,
      maximum: 60000,
      description: 'smallest reply window suggested to agents, ms; 0 = suggest none',
    }),
    jitter_per_node_ms: Type.Number({ minimum: 0, description: 'window grows by this per known node, ms' }),
    signing: Strict({
      key_file: Type.String({
        description:
          'shared key file (mode 0600) to sign queries with (ts and sig fields); "" = queries are not signed',
      }),
    }),
  }),
  reports: Strict({
    require_source_match: Type.Boolean({
      description: 'refuse (400) a report whose host_ip is not the address it came from; false = only count it',
    }),
  }),
  registry: Strict({
    max_nodes: Type.Integer({
      minimum: 1,
      description: 'most nodes (positions) held; a heartbeat for a new position beyond it gets 503 and is counted',
    }),
    expire_never_online_ms: Type.Integer({
      minimum: 0,
      description: 'a position heard only in the round of its first heartbeat is removed this long after it; 0 = never',
    }),
    prune_offline_after_ms: Type.Integer({
      minimum: 0,
      description: 'a node offline this long is removed (its open alerts resolved); 0 = never (the default)',
    }),
  }),
  link: Strict({
    enabled: Type.Boolean({ description: 'serve the WebSocket node link on the API listener (/api/v1/ws)' }),
    max_connections: Type.Integer({ minimum: 1, description: 'open link connections; one more is refused with 503' }),
    max_message_bytes: Type.Integer({
      minimum: 1024,
      description: 'largest link message; a bigger one closes the connection (1009)',
    }),
    max_messages_per_second: Type.Number({
      minimum: 0.1,
      description: 'messages one connection may send per second on average (burst: twice that); over it closes (1008)',
    }),
    heartbeat_interval_ms: Millis("a linked node's heartbeat cadence until it has shown its own", 1000),
    ping_interval_ms: Millis('WebSocket ping of every connection; no pong by the next ping ends it', 100),
    register_timeout_ms: Millis('a connection that has not registered by then is closed', 100),
    command_grace_ms: Millis("time past a command's own timeout before COMMAND_TIMEOUT", 0),
    max_output_bytes: Type.Integer({ minimum: 1024, description: 'stdout and stderr kept per command result' }),
    max_pending_commands: Type.Integer({ minimum: 1, description: 'commands in flight per node; one more is refused' }),
  }),
  relay: Strict({
    enabled: Type.Boolean({ description: 'serve the SSH relay endpoint on the API listener (/proxy)' }),
    max_connections: Type.Integer({
      minimum: 1,
      description: 'relays connected at once; one more is refused with 503',
    }),
    max_relays: Type.Integer({ minimum: 1, description: 'relays that may be added (muster relays add)' }),
    max_servers: Type.Integer({ minimum: 1, description: 'SSH servers that may be added (muster servers add)' }),
    max_message_bytes: Type.Integer({
      minimum: 1024,
      description: 'largest message from a relay; a bigger one closes the connection (1009)',
    }),
    max_messages_per_second: Type.Number({
      minimum: 0.1,
      description: 'messages one relay may send per second on average (burst: twice that); over it closes (1008)',
    }),
    ping_interval_ms: Millis('WebSocket ping of every relay; no pong by the next ping ends the connection', 100),
    default_timeout_ms: Millis('time limit of a command whose task gives none', 1000),
    command_grace_ms: Millis("time past a command's timeout before the manager gives up on its result", 0),
    max_output_bytes: Type.Integer({
      minimum: 1024,
      description: 'stdout and stderr kept per command result (the tail)',
    }),
    max_pending_commands: Type.Integer({
      minimum: 1,
      description: 'commands in flight per relay; one more is refused',
    }),
  }),
  liveness: Strict({
    suspect_after_rounds: Type.Integer({ minimum: 1, description: 'missed heartbeat rounds before suspect' }),
    offline_after_rounds: Type.Integer({ minimum: 1, description: 'missed heartbeat rounds before offline' }),
  }),
  deploy: Strict({
    token: Type.String({ description: 'bearer token sent to the agents\' POST /deploy; "" = none' }),
    token_file: Type.String({ description: 'file holding the token (read at start); wins over token when it exists' }),
    tokens: Type.Record(Type.String({ pattern: NODE_ID_PATTERN }), Type.String(), {
      description: 'per-node tokens, node id box-slot-cpu → token; win over token_file and token',
    }),
    timeout_ms: Millis('time limit of one POST /deploy to an agent (an image pull can be slow)', 100),
    progress_poll_ms: Millis("how often the agent's GET /deploy/:uuid is polled for progress lines", 50),
    max_reply_bytes: Type.Integer({
      minimum: 1024,
      description:
        "largest reply body read from an agent's POST /deploy or GET /deploy/:uuid; past it the read is aborted",
    }),
  }),
  scheduler: Strict({
    reserve_memory_bytes: Type.Integer({
      minimum: 0,
      description: "memory of each board kept for its system, bytes (as the agents' deploy.reserve_memory_bytes)",
    }),
    reservation_ttl_ms: Millis(
      'longest a placement reserves resources without the component showing in a report',
      1000,
    ),
    refused_cooldown_ms: Millis('a node whose agent refused a start for lack of resources is passed over this long', 0),
    max_attempts: Type.Integer({
      minimum: 1,
      maximum: 100,
      description: 'placements of one start when agents refuse it for lack of resources',
    }),
    default_scoring: Type.Union([Type.Literal('binpack'), Type.Literal('spread')], {
      description: 'how feasible nodes are ranked when a start or group names no scoring',
    }),
  }),
  instances: Strict({
    reconcile_interval_ms: Millis('how often every instance is reconciled against the reports', 100),
    reschedule_after_ms: Millis(
      "a component whose node is offline this long is started elsewhere (a group's reschedule_after_ms wins)",
      0,
    ),
    start_timeout_ms: Millis('a component started but not reported this long has failed', 1000),
    max_instances: Type.Integer({
      minimum: 1,
      description: 'most instances; an apply of a new one beyond it gets 409',
    }),
    max_components: Type.Integer({
      minimum: 1,
      maximum: 4096,
      description: "most components of one instance (the sum of its groups' count); more gets 400",
    }),
  }),
  exec: Strict({
    max_nodes_per_task: Type.Integer({
      minimum: 1,
      description: 'most nodes one task may target; a bigger target is refused (400) and counted',
    }),
    max_concurrent_tasks: Type.Integer({
      minimum: 1,
      description: 'most tasks running at once; one more is refused (429) and counted',
    }),
    max_buffered_lines: Type.Integer({
      minimum: 100,
      description: 'live output lines held per task for late readers (SSE); beyond it the oldest go and are counted',
    }),
    max_sse_clients: Type.Integer({
      minimum: 1,
      description: 'most open task event streams (GET /api/v1/tasks/:id/events); one more gets 503 and is counted',
    }),
    status_wait_ms: Type.Integer({
      minimum: 0,
      maximum: 25000,
      description: 'how long one exec_status long poll waits on the agent for new lines, ms',
    }),
    call_timeout_ms: Millis('time limit of one exec call to an agent (a long poll adds status_wait_ms)', 100),
    lost_after_ms: Millis("a node's agent unreachable this long is given up (its part: error)", 100),
    task_timeout_ms: Millis('time limit of a task that gives none (seed exec_timeout: 24 h); 0 = none'),
    max_reply_bytes: Type.Integer({
      minimum: 1024,
      description: 'largest reply body read from an agent exec call; past it the read is aborted and counted',
    }),
    max_file_bytes: Type.Integer({
      minimum: 0,
      description: 'largest generate_file fetched back and kept with a result; a bigger one is noted, not kept',
    }),
    max_tail_bytes: Type.Integer({
      minimum: 256,
      description: "bytes of each step's stdout and stderr tail kept with a node's result",
    }),
    keep_tasks: Type.Integer({ minimum: 1, description: 'finished tasks kept in memory for live readers' }),
    push_concurrency: Type.Integer({
      minimum: 1,
      maximum: 1024,
      description: 'agents a command-set change is pushed to at once',
    }),
  }),
  files: Strict({
    max_upload_bytes: Type.Integer({
      minimum: 0,
      description: 'largest file uploaded to the manager for a push, bytes',
    }),
    max_stored_bytes: Type.Integer({
      minimum: 0,
      description: 'most bytes of uploads held in <data_dir>/files at once; an upload past it gets 507',
    }),
    upload_ttl_ms: Millis('an upload no push is using is deleted this long after it came', 1000),
    push_concurrency: Type.Integer({ minimum: 1, maximum: 256, description: 'boards one push sends to at once' }),
    retries: Type.Integer({
      minimum: 0,
      maximum: 100,
      description: 'attempts after the first of one file to one board',
    }),
    retry_backoff_ms: Millis('wait before the first retry; doubles each retry', 0),
    retry_backoff_max_ms: Millis('longest wait between retries', 0),
    request_timeout_ms: Millis("time limit of an agent's offset, list or delete answer", 100),
    stall_timeout_ms: Millis(
      'a transfer to or from a board that moves no byte this long is aborted (then resumed); an upload to the manager that sends nothing this long is dropped (408 stalled)',
      100,
    ),
    screen_timeout_ms: Millis('time limit of one screen capture', 100),
    screen_max_bytes: Type.Integer({ minimum: 1024, description: 'largest PNG taken from an agent, bytes' }),
    max_pull_bytes: Type.Integer({ minimum: 0, description: 'largest file passed through from a board, bytes' }),
    pushes_kept: Type.Integer({ minimum: 1, maximum: 100000, description: 'pushes kept in memory for GET' }),
  }),
  data_dir: Type.String({ description: 'state directory: the SQLite database (store.file) lives here' }),
  store: Strict({
    file: Type.String({ minLength: 1, description: 'SQLite database file; a relative path is under data_dir' }),
    flush_interval_ms: Millis('how often last-seen times, heartbeats and open alerts are written, batched', 100),
    touch_interval_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 86_400_000,
        description:
          "least time between two writes of a node's row for its heartbeats alone (last-seen time, heartbeat); state changes are written at once",
      }),
    ),
    retention: Strict({
      days: Type.Number({
        minimum: 0,
        description: 'history, resolved alerts and finished deployments older than this are removed; 0 = no age limit',
      }),
      max_rows: Type.Integer({
        minimum: 0,
        description: 'most rows kept per table (history, alerts, deployments); 0 = no row limit',
      }),
    }),
    write_queue: Type.Optional(
      Strict({
        max_items: Type.Integer({
          minimum: 100,
          maximum: 10_000_000,
          description: 'most writes waiting in the store write queue; past it a write is dropped and counted',
        }),
        batch_items: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          description: 'most queued writes per transaction; the event loop runs between transactions',
        }),
        delay_ms: Type.Integer({
          minimum: 1,
          maximum: 10_000,
          description: 'longest time a queued write waits for its transaction, ms',
        }),
        batch_ms: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 10_000,
            description:
              'longest a queue transaction (or a step of the periodic flush) holds the event loop, ms: it commits and yields when this is past',
          }),
        ),
      }),
    ),
    cleanup_interval_ms: Millis('how often retention runs', 1000),
    cleanup_batch_rows: Type.Integer({
      minimum: 1,
      maximum: 100000,
      description: 'rows deleted per step; the event loop runs between steps, so ingest never waits on a cleanup',
    }),
  }),
  alerts: Strict({
    max_open_per_kind: Type.Integer({
      minimum: 1,
      description:
        'most open alerts of one kind (node_offline, threshold, agent, ...); beyond it new ones are counted, not opened',
    }),
    events: Strict({
      node_offline: Severity('a node went offline (resolved when it is back online)'),
      identity_conflict: Severity('two boards claim one position (resolved when one is left)'),
      component_failed: Severity('a component is reported FAILED (resolved when it is not)'),
    }),
    rules: Type.Record(Type.String({ pattern: RULE_NAME_PATTERN }), AlertRuleConfig, {
      additionalProperties: false,
      description: 'threshold rules by name; see docs/configuration.md#alerts for the metric names',
    }),
  }),
  telemetry: Strict({
    recent: Strict({
      window_ms: Millis('how far back the in-memory history of each node reaches', 1000),
      max_samples: Type.Integer({ minimum: 2, maximum: 100000, description: 'most samples kept per node' }),
    }),
    influxdb: Strict({
      enabled: Type.Boolean({ description: 'write every report as points to InfluxDB 1.x' }),
      url: Type.String({ minLength: 1, description: 'InfluxDB base URL, e.g. http://127.0.0.1:8086' }),
      database: Type.String({
        minLength: 1,
        pattern: '^[A-Za-z0-9_.-]+$',
        description: 'database (created when missing)',
      }),
      username: Type.String(),
      password: Type.String(),
      retention_policy: Type.String({ description: 'retention policy written to; "" = the database default' }),
      batch_points: Type.Integer({ minimum: 1, maximum: 100000, description: 'most points per write' }),
      flush_interval_ms: Millis('longest time a point waits before a write is tried', 50),
      buffer_points: Type.Integer({
        minimum: 1,
        description: 'most points held while InfluxDB is down or slow; beyond it the oldest are dropped and counted',
      }),
      timeout_ms: Millis('time limit of one write', 100),
      retry_max_ms: Millis('longest wait between retries while InfluxDB is down', 100),
      query: Strict({
        max_points: Type.Integer({
          minimum: 10,
          maximum: 10000,
          description: 'most buckets per line of GET /nodes/:id/series (InfluxDB aggregates to fit)',
        }),
        timeout_ms: Millis('time limit of one series query to InfluxDB', 100),
        max_concurrent: Type.Integer({ minimum: 1, maximum: 64, description: 'most series queries in flight' }),
        max_reply_bytes: Type.Integer({
          minimum: 1024,
          description: "most bytes read of InfluxDB's answer to a series query",
        }),
      }),
    }),
  }),
  log: Strict({ level: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l))) }),
});
/** The manager's validated configuration. */
export type ManagerConfig = Static<typeof ManagerConfigSchema>;

/**
 * Loads the manager config: defaults, `file`, `MUSTER_MANAGER_*` env vars, then `--set` overrides.
 * @throws ConfigError naming the key and what was expected (also when offline ≤ suspect, or a rule names an unknown metric).
 */
export function loadManagerConfig(file?: string, sets?: readonly string[], env?: NodeJS.ProcessEnv): ManagerConfig {
  const cfg = loadConfig<ManagerConfig>(ManagerConfigSchema, { name: 'manager', file, sets, env });
  for (const [name, rule] of Object.entries(cfg.alerts.rules)) {
    if (!isMetric(rule.metric)) {
      throw new ConfigError(
        `config key alerts.rules.${name}.metric: unknown metric ${JSON.stringify(rule.metric)}; known: ${metricNames().join(', ')}`,
      );
    }
  }
  // Checked here (InfluxDB need not be reachable) so that a typo stops the start with the key named.
  const url = cfg.telemetry.influxdb.url;
  let protocol = '';
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new ConfigError(
      `config key telemetry.influxdb.url: cannot read ${JSON.stringify(url)} as a URL (e.g. http://127.0.0.1:8086)`,
    );
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new ConfigError(`config key telemetry.influxdb.url: ${JSON.stringify(url)} must be http:// or https://`);
  }
  const api = cfg.http.api;
  const tlsSet = [api.tls.cert_file, api.tls.key_file].filter((f) => f !== '').length;
  if (tlsSet === 1) {
    throw new ConfigError('config key http.api.tls: set both cert_file and key_file, or neither');
  }
  if (tlsSet === 2 && (api.port === 0 || api.port === cfg.http.port)) {
    throw new ConfigError(
      'config key http.api.port: HTTPS needs the API on its own port (the report port stays plain HTTP); set http.api.port',
    );
  }
  if (api.port === cfg.http.port && (api.host === '' || api.host === cfg.http.host)) {
    throw new ConfigError('config key http.api.port: same as http.port; use 0 to serve the API with the reports');
  }
  const l = cfg.liveness;
  if (l.offline_after_rounds <= l.suspect_after_rounds) {
    throw new ConfigError(
      `config key liveness.offline_after_rounds: must be greater than liveness.suspect_after_rounds (${l.offline_after_rounds} <= ${l.suspect_after_rounds})`,
    );
  }
  return cfg;
}
