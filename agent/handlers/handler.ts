/**
 * Commands the manager sends to an agent (docs/protocol.md "5. Load command": `deploy`; `exec`,
 * `files` and `screen` are to follow) as transport-free handlers: the HTTP command port
 * (agent/http/commands.ts) is one adapter over the registry, the WebSocket node link will be
 * another, and neither holds any command logic.
 *
 * Every command speaks the spec's envelope (`{ api_version, data }`) both ways, and every reply's
 * `data` is the request's fields plus `result` (a code of agent/deploy/results.ts, 0 = success)
 * and `message` (docs/protocol.md "Reply", "Result codes").
 */
import type { TSchema } from 'typebox';
import { API_VERSION } from '../../common/constants.js';
import { DeployReplyData } from '../../common/protocol.js';
import { type Checker, compile } from '../../common/validate.js';
import type { ResultCode } from '../deploy/results.js';

/** Who sent a command, for logs: an address and the transport (`http`, later `link`). */
export interface CommandContext {
  /** The peer's address, e.g. `192.168.10.254`. */
  from: string;
  /** The transport it came over. */
  transport: string;
}

/** A command reply in the spec's envelope: `data` holds at least `result` and `message`. */
export interface CommandReply {
  api_version: number;
  data: { result: ResultCode; message: string } & Record<string, unknown>;
}

/**
 * One command: its name (the HTTP path `/<name>`, the link's message type), the schema its
 * request envelope must match (checked by the registry before `handle` runs), and `handle`, which
 * never throws: every failure is a reply with a non-zero `result`.
 */
export interface CommandHandler<Req = unknown> {
  readonly name: string;
  readonly request: TSchema;
  handle(request: Req, ctx: CommandContext): Promise<CommandReply>;
}

/**
 * The reply to a request refused before its handler ran (unauthorized, malformed): the spec's
 * envelope echoing what can be read of the request's `data`, plus `result` and `message`.
 */
export function refusal(body: unknown, result: ResultCode, message: string): CommandReply {
  const data = (body as { data?: unknown } | null | undefined)?.data;
  const echo =
    typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
  // The reply must stay a spec reply whatever the request held (a manager validating it still
  // reads `result`): a field of the reply's schema is echoed only when it fits it, and `mode`,
  // `type`, `uuid` are '' when missing or malformed. Unknown fields are echoed as they came.
  const kept = Object.entries(echo).filter(([k, v]) => REPLY_FIELDS.get(k)?.check(v).ok ?? true);
  return {
    api_version: API_VERSION,
    data: { mode: '', type: '', uuid: '', ...Object.fromEntries(kept), result, message },
  };
}

/** Each field of a reply's `data` (deploy's, the one command so far), checked on its own. */
const REPLY_FIELDS = new Map<string, Checker<unknown>>(
  Object.entries(DeployReplyData.properties).map(([k, schema]) => [k, compile<unknown>(schema)]),
);
