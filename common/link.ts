/**
 * The WebSocket node link's wire format (docs/links.md "The WebSocket node link"): every message
 * is the envelope `{ type, id, timestamp, data }` (id a UUID v4, timestamp RFC 3339), the message
 * types and their `data` fields exactly as the link specification names them, plus muster's own
 * extension types (prefixed `muster.`, docs/links.md "Muster extension messages") that carry an
 * agent's full reports and its command requests and replies.
 *
 * Shared by the manager (manager/link/) and the agent (agent/link/ws.ts); the spec-only test
 * (tests/e2e/ws-link.test.ts) does NOT use it.
 */

import { type Static, Type } from 'typebox';
import { nodeCrypto } from './node-crypto.js';

/** The path of the link on the manager's API listener. */
export const LINK_PATH = '/api/v1/ws';

/** Error codes of the `error` message (docs/links.md "Errors"). */
export const LINK_ERROR_CODES = [
  'INVALID_TOKEN',
  'NODE_NOT_FOUND',
  'COMMAND_TIMEOUT',
  'PARSE_ERROR',
  'UNKNOWN_MESSAGE_TYPE',
  'DATABASE_ERROR',
] as const;
/** An `error` message's `error_code`. */
export type LinkErrorCode = (typeof LINK_ERROR_CODES)[number];

/** Message types a node sends (the spec's, then muster's extension). */
export const NODE_MESSAGE_TYPES = [
  'node_register',
  'heartbeat',
  'command_started',
  'command_result',
  'muster.report',
  'muster.reply',
] as const;

/** The envelope of every message. `data` is checked per type. */
export const LinkEnvelope = Type.Object({
  type: Type.String({ maxLength: 64 }),
  id: Type.String({ maxLength: 64 }),
  timestamp: Type.String({ maxLength: 64 }),
  data: Type.Optional(Type.Unknown()),
});
/** The envelope of every message. */
export interface LinkMessage<D = unknown> {
  type: string;
  id: string;
  timestamp: string;
  data: D;
}

/** A node id as a linked node gives it (docs/links.md "Node ids"): letters, digits, `_ . -`, 1..64. */
export const LINK_NODE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
/** The same as a RegExp. */
export const LINK_NODE_ID_RE = new RegExp(LINK_NODE_ID_PATTERN);

const Str = (max: number, description?: string) =>
  Type.String({ maxLength: max, ...(description ? { description } : {}) });
const Pct = (description: string) => Type.Number({ minimum: 0, description });

/**
 * `node_register` data. `box_id`, `slot_id`, `cpu_id` and `heartbeat_interval_s` are muster
 * extensions (optional): a node that reports a position is registered as `box-slot-cpu`.
 */
export const NodeRegisterData = Type.Object({
  node_id: Type.Optional(Type.String({ pattern: LINK_NODE_ID_PATTERN })),
  hostname: Type.Optional(Str(255)),
  ip_address: Type.Optional(Str(64)),
  os_info: Type.Optional(Str(255)),
  box_id: Type.Optional(Type.Integer({ minimum: 0, maximum: 999_999_999 })),
  slot_id: Type.Optional(Type.Integer({ minimum: 0, maximum: 999_999_999 })),
  cpu_id: Type.Optional(Type.Integer({ minimum: 0, maximum: 999_999_999 })),
  heartbeat_interval_s: Type.Optional(Type.Number({ minimum: 1, maximum: 3600 })),
});
export type NodeRegisterData = Static<typeof NodeRegisterData>;

/** `heartbeat` metrics, in % (load_average unitless). */
export const LinkMetrics = Type.Object({
  cpu_usage: Type.Optional(Pct('cpu usage, %')),
  memory_usage: Type.Optional(Pct('memory usage, %')),
  disk_usage: Type.Optional(Pct('disk usage, %')),
  load_average: Type.Optional(Type.Number({ minimum: 0 })),
});
export type LinkMetrics = Static<typeof LinkMetrics>;

/** `heartbeat` data. */
export const LinkHeartbeatData = Type.Object({
  node_id: Type.Optional(Str(64)),
  status: Type.Optional(Str(32)),
  metrics: Type.Optional(LinkMetrics),
});
export type LinkHeartbeatData = Static<typeof LinkHeartbeatData>;

/** `execute_command` data (core → node); timeout in seconds. */
export interface ExecuteCommandData {
  command_id: string;
  command_text: string;
  timeout: number;
}

/** `command_started` data. */
export const CommandStartedData = Type.Object({ command_id: Str(128) });

/** `command_result` data. */
export const CommandResultData = Type.Object({
  command_id: Str(128),
  exit_code: Type.Integer(),
  stdout: Type.String(),
  stderr: Type.String(),
  execution_time_ms: Type.Optional(Type.Number({ minimum: 0 })),
});
export type CommandResultData = Static<typeof CommandResultData>;

/**
 * `muster.report` data (extension, node → core): an agent's full report body as it would POST it
 * (docs/protocol.md "2. Heartbeat", "3. Resource report"), checked against the same schemas.
 */
export const MusterReportData = Type.Object({
  url: Type.Union([Type.Literal('/heartbeat'), Type.Literal('/resource')]),
  body: Type.Unknown(),
});
export type MusterReportData = Static<typeof MusterReportData>;

/**
 * `muster.command` data (extension, core → node): one agent command (agent/handlers: deploy,
 * exec, exec_status, ...) with its spec envelope body. `command_id` identifies it across
 * reconnects: the agent runs one id once and answers a repeat with the reply it kept.
 */
export interface MusterCommandData {
  command_id: string;
  command: string;
  body: unknown;
  /** Time limit the manager waits, ms (informative). */
  timeout_ms: number;
}

/** `muster.reply` data (extension, node → core): the handler's reply to a `muster.command`. */
export const MusterReplyData = Type.Object({
  command_id: Str(128),
  reply: Type.Unknown(),
});
export type MusterReplyData = Static<typeof MusterReplyData>;

/** A new envelope with a fresh UUID v4 (or `id` when it answers a message) and the time now. */
export function linkMessage<D>(type: string, data: D, id: string = nodeCrypto().randomUUID()): LinkMessage<D> {
  return { type, id, timestamp: new Date().toISOString(), data };
}

/**
 * The bound of the reconnect delay before attempt `attempt` (0 = the first reconnect after a
 * connection is lost): `min(maxMs, baseMs × 2^attempt)`, ms (docs/links.md "A muster agent on the
 * link", exponential backoff, capped).
 */
export function reconnectWindow(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
}

/**
 * A reconnect delay with full jitter: uniform in `[0, reconnectWindow(attempt, baseMs, maxMs))`,
 * whole ms, so that a fleet that lost its manager at one instant does not come back at one instant.
 * @param random a uniform number in [0, 1) (Math.random by default; tests pass their own)
 */
export function reconnectDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * reconnectWindow(attempt, baseMs, maxMs));
}
