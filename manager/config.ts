/**
 * The manager's configuration: schema (validated at start) and its type. The documented defaults
 * live in config/manager.yaml; see docs/configuration.md for every key.
 */
import { type Static, Type } from 'typebox';
import { ConfigError, loadConfig } from '../common/config.js';
import { LOG_LEVELS } from '../common/log.js';
import { Millis, Strict } from '../common/schema-util.js';

export const ManagerConfigSchema = Strict({
  http: Strict({
    host: Type.String({ description: 'address the HTTP server listens on' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    body_limit_bytes: Type.Integer({ minimum: 1024, description: 'largest report body; bigger ones get 413' }),
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
  }),
  liveness: Strict({
    suspect_after_rounds: Type.Integer({ minimum: 1, description: 'missed heartbeat rounds before suspect' }),
    offline_after_rounds: Type.Integer({ minimum: 1, description: 'missed heartbeat rounds before offline' }),
  }),
  deploy: Strict({
    token: Type.String({ description: 'bearer token sent to the agents\' POST /deploy; "" = none' }),
    token_file: Type.String({ description: 'file holding the token (read at start); wins over token when it exists' }),
    tokens: Type.Record(Type.String({ pattern: '^[0-9]+-[0-9]+-[0-9]+$' }), Type.String(), {
      description: 'per-node tokens, node id box-slot-cpu → token; win over token_file and token',
    }),
    timeout_ms: Millis('time limit of one POST /deploy to an agent (an image pull can be slow)', 100),
    progress_poll_ms: Millis("how often the agent's GET /deploy/:uuid is polled for progress lines", 50),
  }),
  data_dir: Type.String(),
  log: Strict({ level: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l))) }),
});
/** The manager's validated configuration. */
export type ManagerConfig = Static<typeof ManagerConfigSchema>;

/**
 * Loads the manager config: defaults, `file`, `MUSTER_MANAGER_*` env vars, then `--set` overrides.
 * @throws ConfigError naming the key and what was expected (also when offline ≤ suspect).
 */
export function loadManagerConfig(file?: string, sets?: readonly string[], env?: NodeJS.ProcessEnv): ManagerConfig {
  const cfg = loadConfig<ManagerConfig>(ManagerConfigSchema, { name: 'manager', file, sets, env });
  const l = cfg.liveness;
  if (l.offline_after_rounds <= l.suspect_after_rounds) {
    throw new ConfigError(
      `config key liveness.offline_after_rounds: must be greater than liveness.suspect_after_rounds (${l.offline_after_rounds} <= ${l.suspect_after_rounds})`,
    );
  }
  return cfg;
}
