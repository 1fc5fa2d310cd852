/**
 * The SSH relay's wire format (docs/links.md "The SSH relay"): a relay connects out to
 * `ws(s)://<manager>/proxy?proxyId=<id>&apiKey=<key>` and every message, both ways, is one JSON
 * text frame in the link's envelope `{ type, id, timestamp, data }` (common/link.ts), `type` being
 * one of the relay specification's event names and `data` its fields, spelled as the
 * specification spells them:
 *
 * - `execute_command` (manager → relay): `commandId`, `serverId`, `host`, `port`, `username`,
 *   `password` | `privateKey`, `command`, `timeout` (ms);
 * - `command_result` (relay → manager): `commandId`, `result` { `stdout`, `stderr`, `exitCode` };
 *   a failure is `exitCode` 1 with the message in `stderr`;
 * - `command_result_received` (manager → relay): `success`; its envelope `id` is the id of the
 *   `command_result` it acknowledges.
 *
 * Muster extensions (optional fields, ignored by a relay or manager that does not know them):
 * `execute_command.hostKey` (the server's pinned host key fingerprint, `SHA256:<base64>`; absent
 * = trust on first use), `command_result.hostKey` (the fingerprint the relay saw) and
 * `command_result.failure` (why a failure failed: {@link RELAY_FAILURES}); the `instanceId` query
 * parameter (one per relay process: a new one tells the manager that commands sent to the old
 * process will never be answered).
 *
 * Shared by the manager (manager/relay/) and the relay (agent/relay/).
 */
import { type Static, Type } from 'typebox';

/** The relay endpoint's path on the manager's API listener. */
export const RELAY_PATH = '/proxy';

/** Shortest apiKey the manager accepts (the specification asks for at least 32 characters). */
export const RELAY_MIN_KEY_LENGTH = 32;

/** A relay id (`proxyId`) or an SSH server name: letters, digits, `_ . -`, 1..64, starting with a letter or digit. */
export const RELAY_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
/** The same as a RegExp. */
export const RELAY_NAME_RE = new RegExp(RELAY_NAME_PATTERN);

/** The event names of the relay specification. */
export const RELAY_EVENTS = {
  execute: 'execute_command',
  result: 'command_result',
  received: 'command_result_received',
} as const;

/** Why a command failed, as `command_result.failure` names it (muster extension). */
export const RELAY_FAILURES = [
  'timeout',
  'connect',
  'auth',
  'host_key_changed',
  'busy',
  'bad_request',
  'channel',
] as const;
/** One of {@link RELAY_FAILURES}. */
export type RelayFailure = (typeof RELAY_FAILURES)[number];

/** Largest command text, bytes (characters). */
export const RELAY_MAX_COMMAND = 65_536;
/** Largest private key text, characters. */
export const RELAY_MAX_KEY = 16_384;

/** A host key fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64. */
export const HOST_KEY_PATTERN = '^SHA256:[A-Za-z0-9+/]{43}$';

/** `execute_command` data. `serverId` is a number in the specification; muster sends its server's row id. */
export const RelayExecuteData = Type.Object({
  commandId: Type.String({ minLength: 1, maxLength: 128 }),
  serverId: Type.Integer({ minimum: 0 }),
  host: Type.String({ minLength: 1, maxLength: 255 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  username: Type.String({ minLength: 1, maxLength: 128 }),
  password: Type.Optional(Type.String({ maxLength: 1024 })),
  privateKey: Type.Optional(Type.String({ maxLength: RELAY_MAX_KEY })),
  command: Type.String({ minLength: 1, maxLength: RELAY_MAX_COMMAND }),
  timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
  hostKey: Type.Optional(Type.String({ pattern: HOST_KEY_PATTERN })),
});
export type RelayExecuteData = Static<typeof RelayExecuteData>;

/** `command_result` data. */
export const RelayResultData = Type.Object({
  commandId: Type.String({ minLength: 1, maxLength: 128 }),
  result: Type.Object({
    stdout: Type.String(),
    stderr: Type.String(),
    exitCode: Type.Integer(),
  }),
  hostKey: Type.Optional(Type.String({ pattern: HOST_KEY_PATTERN })),
  failure: Type.Optional(Type.String({ maxLength: 32 })),
});
export type RelayResultData = Static<typeof RelayResultData>;

/** `command_result_received` data. */
export const RelayReceivedData = Type.Object({ success: Type.Boolean() });
export type RelayReceivedData = Static<typeof RelayReceivedData>;

/** The seed's error shape: a failed command's result (exitCode 1, the message in stderr). */
export function relayFailure(commandId: string, message: string, failure?: RelayFailure): RelayResultData {
  return { commandId, result: { stdout: '', stderr: message, exitCode: 1 }, ...(failure ? { failure } : {}) };
}

/** A parsed target term naming SSH servers: `server:<glob>` or `relay:<glob>` (docs/links.md "Running commands"). */
export const SERVER_PREFIX = 'server:';
export const RELAY_PREFIX = 'relay:';
