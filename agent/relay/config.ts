/**
 * The relay's configuration (docs/configuration.md "Relay"): schema (validated at start) and its
 * type. The documented defaults live in config/relay.yaml. The apiKey is a secret: it comes from
 * `api_key_file` or the environment (`MUSTER_RELAY_API_KEY`), never the command line.
 */
import { readFileSync } from 'node:fs';
import { type Static, Type } from 'typebox';
import { ConfigError, loadConfig } from '../../common/config.js';
import { LOG_LEVELS } from '../../common/log.js';
import { RELAY_MIN_KEY_LENGTH, RELAY_NAME_PATTERN } from '../../common/relay.js';
import { Millis, Strict } from '../../common/schema-util.js';

export const RelayConfigSchema = Strict({
  id: Type.String({ pattern: RELAY_NAME_PATTERN, description: "this relay's proxyId (muster relays add ID)" }),
  manager_url: Type.String({
    pattern: '^wss?://',
    description: "ws(s)://<manager>:<port>/proxy (the manager's API listener)",
  }),
  api_key: Type.String({ description: 'the apiKey; "" = read api_key_file (prefer the file or the environment)' }),
  api_key_file: Type.String({ description: 'file holding the apiKey (muster relays add prints it once), mode 0600' }),
  tls_ca_file: Type.String({ description: 'CA bundle to trust for a wss:// manager_url; "" = the system CAs' }),
  reconnect_interval_ms: Millis('delay before each reconnect (the relay specification: 5 s, without limit)', 100),
  ping_interval_ms: Millis('WebSocket ping; no answer for two intervals ends the connection', 100),
  max_message_bytes: Type.Integer({ minimum: 1024, description: 'largest message taken from the manager' }),
  max_held_results: Type.Integer({
    minimum: 1,
    description: 'results kept until the manager acknowledges them (command_result_received); the oldest go first',
  }),
  ssh: Strict({
    max_concurrent: Type.Integer({ minimum: 1, description: 'commands running at once over SSH' }),
    max_queued: Type.Integer({ minimum: 0, description: 'commands waiting for a slot; one more fails as busy' }),
    max_connections: Type.Integer({
      minimum: 1,
      description: 'SSH connections kept in the pool (the idlest go first)',
    }),
    idle_close_ms: Millis('an SSH connection unused this long is closed', 1000),
    connect_timeout_ms: Millis('time limit of an SSH connection and its authentication', 100),
    default_timeout_ms: Millis('time limit of a command that gives none', 100),
    max_output_bytes: Type.Integer({ minimum: 1024, description: 'stdout and stderr kept per command (the tail)' }),
  }),
  metrics: Strict({
    host: Type.String({ description: "address of the relay's /metrics listener" }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: '0 = no metrics listener' }),
  }),
  log: Strict({ level: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l))) }),
});

/** The relay's configuration. */
export type RelayConfig = Static<typeof RelayConfigSchema>;

/**
 * Loads the relay config (config/relay.yaml, `--config FILE`, `MUSTER_RELAY_*`, `--set`).
 * @throws ConfigError on a bad key, or when no apiKey of at least 32 characters can be read
 */
export function loadRelayConfig(file?: string, sets?: readonly string[], env = process.env): RelayConfig {
  const cfg = loadConfig<RelayConfig>(RelayConfigSchema, { name: 'relay', file, sets, env });
  relayApiKey(cfg);
  return cfg;
}

/**
 * The apiKey: `api_key` (from the environment or a config file), else the content of
 * `api_key_file` (trimmed).
 * @throws ConfigError when there is none or it is shorter than 32 characters
 */
export function relayApiKey(cfg: RelayConfig): string {
  let key = cfg.api_key;
  if (key === '' && cfg.api_key_file !== '') {
    try {
      key = readFileSync(cfg.api_key_file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`api_key_file ${cfg.api_key_file}: ${(err as Error).message}`);
    }
  }
  if (key.length < RELAY_MIN_KEY_LENGTH)
    throw new ConfigError(
      `the apiKey (api_key_file or MUSTER_RELAY_API_KEY) must be at least ${RELAY_MIN_KEY_LENGTH} characters`,
    );
  return key;
}
