/**
 * The {@link AgentClient} over HTTP (undici) to the agent's command service
 * `http://<host_ip>:<service_port>` (docs/protocol.md "5. Load command"): POST /deploy with the
 * spec's `{ api_version: 1, data }` body and the node's bearer token, the reply checked against
 * DeployReplyBody; GET /deploy/:uuid for progress. Whatever goes wrong on the way (agent
 * unreachable, time limit, a reply that is not the spec's shape) is an outcome with a negative
 * result, never a throw.
 *
 * Reply bodies are read in chunks and counted: one larger than deploy.max_reply_bytes (declared
 * by its content-length or found while reading) is aborted — the connection closed, nothing more
 * read or kept — and counted in `muster_manager_agent_replies_refused_total{reason="too_large"}`
 * (docs/configuration.md "deploy"). A refused deploy reply is the outcome BAD_REPLY (-3) naming the
 * key; a refused progress reply is no progress (null).
 */
import { type Readable, Transform } from 'node:stream';
import { Counter, type Registry } from 'prom-client';
import { type TSchema, Type } from 'typebox';
import { request } from 'undici';
import { MANAGER_RESULT } from '../../common/api/deploy.js';
import { API_VERSION } from '../../common/constants.js';
import {
  CommandSetReplyData,
  type CommandSetRequestData,
  ExecFileReplyData,
  type ExecFileRequestData,
  type ExecKillRequestData,
  ExecReplyData,
  type ExecRequestData,
  ExecStatusReplyData,
  type ExecStatusRequestData,
} from '../../common/exec.js';
import type { DeleteReply, FileError, ListReply, OffsetReply, PutReply } from '../../common/files.js';
import { DeployReplyBody, type DeployRequestData } from '../../common/protocol.js';
import { type Checker, compile } from '../../common/validate.js';
import type {
  AgentClient,
  AgentOutcome,
  AgentProgress,
  AgentTarget,
  DeployOutcome,
  ExecKillReplyData,
  FileCall,
  FileDownload,
  FileUploadSpec,
  ScreenShot,
} from './client.js';
import type { AgentCredentials } from './credentials.js';

const checkReply = compile<DeployReplyBody>(DeployReplyBody);

/** Time limits and size bound of the HTTP calls. */
export interface HttpAgentOptions {
  /** Time limit of one POST /deploy, ms (deploy.timeout_ms). */
  timeout_ms: number;
  /** Time limit of one progress GET, ms. */
  progress_timeout_ms: number;
  /** Largest reply body read, bytes (deploy.max_reply_bytes); a bigger one is aborted and refused. */
  max_reply_bytes: number;
  /** The remote-execution calls' bounds (exec.*); defaults when absent: {@link EXEC_CALL_DEFAULTS}. */
  exec?: ExecCallOptions;
  /** The file and screen calls' bounds (manager `files.*`); defaults below when absent. */
  files?: HttpFileOptions;
}

/** Bounds of the file and screen calls (docs/configuration.md "files" of the manager). */
export interface HttpFileOptions {
  /** Time limit of an offset, list or delete call, and of the answer's headers, ms. */
  request_timeout_ms: number;
  /** An upload or download that moves no byte for this long is aborted, ms. */
  stall_timeout_ms: number;
  /** Time limit of one screen capture, ms. */
  screen_timeout_ms: number;
  /** Largest PNG taken from an agent, bytes. */
  screen_max_bytes: number;
}

const FILE_DEFAULTS: HttpFileOptions = {
  request_timeout_ms: 10_000,
  stall_timeout_ms: 30_000,
  screen_timeout_ms: 15_000,
  screen_max_bytes: 64 << 20,
};

/** Why a reply read from an agent was refused (the `reason` label). */
export type ReplyRefusal = 'too_large' | 'not_json' | 'not_a_reply';

/** A reply body read within the bound, or the fact that it was over it. */
type Bounded = { ok: true; text: string } | { ok: false; bytes: number };

/**
 * Reads a body as UTF-8 in chunks, stopping (and destroying the stream, which closes the
 * connection) as soon as more than `max` bytes have come, or at once when `declared`
 * (content-length) already says so. Never holds more than `max` bytes plus one chunk.
 */
async function readBounded(
  body: AsyncIterable<Uint8Array> & { destroy(err?: Error): unknown },
  declared: string | string[] | undefined,
  max: number,
): Promise<Bounded> {
  const length = Number(Array.isArray(declared) ? declared[0] : declared);
  if (Number.isFinite(length) && length > max) {
    body.destroy();
    return { ok: false, bytes: length };
  }
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.byteLength;
    if (bytes > max) {
      body.destroy();
      return { ok: false, bytes };
    }
    chunks.push(chunk);
  }
  return { ok: true, text: Buffer.concat(chunks).toString('utf8') };
}

/** Calls agents over HTTP. */
export class HttpAgentClient implements AgentClient {
  private readonly refused: Counter<'reason'>;

  /**
   * @param opts time limits and deploy.max_reply_bytes
   * @param credentials the per-node bearer tokens
   * @param metrics registry for `muster_manager_agent_replies_refused_total{reason}`: `too_large`
   *   (over deploy.max_reply_bytes), `not_json`, `not_a_reply` (not the spec's deploy reply)
   */
  constructor(
    private readonly opts: HttpAgentOptions,
    private readonly credentials: Pick<AgentCredentials, 'tokenFor'>,
    metrics: Registry,
  ) {
    this.refused = new Counter({
      name: 'muster_manager_agent_replies_refused_total',
      help: 'Replies from agents (POST /deploy, GET /deploy/:uuid, the exec commands) refused, by reason: too_large, not_json, not_a_reply',
      labelNames: ['reason'],
      registers: [metrics],
    });
  }

  private auth(node: string): Record<string, string> {
    const token = this.credentials.tokenFor(node);
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  async deploy(target: AgentTarget, data: DeployRequestData): Promise<DeployOutcome> {
    const posted = await this.post(target, 'deploy', data, this.opts.timeout_ms, this.opts.max_reply_bytes, {
      timeout: 'deploy.timeout_ms; the operation may still complete on the board',
      max: 'deploy.max_reply_bytes',
    });
    if (!posted.ok) return posted;
    const checked = checkReply.check(posted.doc);
    if (!checked.ok) {
      this.refused.inc({ reason: 'not_a_reply' });
      return {
        ok: false,
        result: MANAGER_RESULT.BAD_REPLY,
        message: `agent ${posted.base} answered HTTP ${posted.status} with a body that is not a deploy reply: ${checked.error.field} ${checked.error.message}`,
      };
    }
    return { ok: true, reply: checked.value.data };
  }

  async progress(target: AgentTarget, uuid: string): Promise<AgentProgress | null> {
    const url = `http://${target.host_ip}:${target.port}/deploy/${encodeURIComponent(uuid)}`;
    try {
      const res = await request(url, {
        method: 'GET',
        headers: this.auth(target.node),
        signal: AbortSignal.timeout(this.opts.progress_timeout_ms),
      });
      const read = await readBounded(res.body, res.headers['content-length'], this.opts.max_reply_bytes);
      if (!read.ok) {
        this.refused.inc({ reason: 'too_large' });
        return null;
      }
      if (res.statusCode !== 200) return null;
      const doc = JSON.parse(read.text) as unknown;
      return typeof doc === 'object' && doc !== null ? (doc as AgentProgress) : null;
    } catch {
      return null;
    }
  }

  /**
   * POSTs `{ api_version, data }` to `/<name>` with the node's token and reads the reply within
   * `max` bytes, parsed as JSON: `{ ok, status, doc }`, or the failure as an outcome —
   * UNREACHABLE, TIMEOUT (naming `keys.timeout`), BAD_REPLY for a reply over `max` (naming
   * `keys.max`, counted `too_large`) or one that is not JSON (counted `not_json`). Never throws.
   */
  private async post(
    target: AgentTarget,
    name: string,
    data: unknown,
    timeout: number,
    max: number,
    keys: { timeout: string; max: string },
  ): Promise<
    { ok: true; base: string; status: number; doc: unknown } | { ok: false; result: number; message: string }
  > {
    const base = `http://${target.host_ip}:${target.port}`;
    let status: number;
    let read: Bounded;
    try {
      const res = await request(`${base}/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.auth(target.node) },
        body: JSON.stringify({ api_version: API_VERSION, data }),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      status = res.statusCode;
      read = await readBounded(res.body, res.headers['content-length'], max);
    } catch (err) {
      const e = err as Error & { code?: string };
      const timedOut =
        e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
      return timedOut
        ? {
            ok: false,
            result: MANAGER_RESULT.TIMEOUT,
            message: `agent ${base} did not answer ${name} within ${timeout} ms (${keys.timeout})`,
          }
        : {
            ok: false,
            result: MANAGER_RESULT.UNREACHABLE,
            message: `cannot reach agent ${base} (${e.code ?? e.name}: ${e.message})`,
          };
    }
    if (!read.ok) {
      this.refused.inc({ reason: 'too_large' });
      return {
        ok: false,
        result: MANAGER_RESULT.BAD_REPLY,
        message: `agent ${base} answered ${name} (HTTP ${status}) with a reply over ${max} bytes (${keys.max}); refused after ${read.bytes} bytes`,
      };
    }
    try {
      return { ok: true, base, status, doc: JSON.parse(read.text) as unknown };
    } catch {
      this.refused.inc({ reason: 'not_json' });
      return {
        ok: false,
        result: MANAGER_RESULT.BAD_REPLY,
        message: `agent ${base} answered ${name} (HTTP ${status}) with a body that is not JSON: ${JSON.stringify(read.text.slice(0, 200))}`,
      };
    }
  }

  // Remote execution (docs/exec.md "Agent commands"; contract common/exec.ts) -------------------

  exec(target: AgentTarget, data: ExecRequestData): Promise<AgentOutcome<ExecReplyData>> {
    return this.command(target, 'exec', data, REPLY_CHECKS.exec, this.execOpts.call_timeout_ms);
  }

  execStatus(target: AgentTarget, data: ExecStatusRequestData): Promise<AgentOutcome<ExecStatusReplyData>> {
    return this.command(
      target,
      'exec_status',
      data,
      REPLY_CHECKS.exec_status,
      (data.wait_ms ?? 0) + this.execOpts.call_timeout_ms,
    );
  }

  execKill(target: AgentTarget, data: ExecKillRequestData): Promise<AgentOutcome<ExecKillReplyData>> {
    return this.command(target, 'exec_kill', data, REPLY_CHECKS.exec_kill, this.execOpts.call_timeout_ms);
  }

  execFile(target: AgentTarget, data: ExecFileRequestData): Promise<AgentOutcome<ExecFileReplyData>> {
    // A file reply carries the file base64 (4/3 of it) besides the fields.
    const max = Math.ceil((this.execOpts.max_file_bytes * 4) / 3) + this.execOpts.max_reply_bytes;
    return this.command(target, 'exec_file', data, REPLY_CHECKS.exec_file, this.execOpts.call_timeout_ms, max);
  }

  commandSet(target: AgentTarget, data: CommandSetRequestData): Promise<AgentOutcome<CommandSetReplyData>> {
    return this.command(target, 'command_set', data, REPLY_CHECKS.command_set, this.execOpts.call_timeout_ms);
  }

  private get execOpts(): ExecCallOptions {
    return this.opts.exec ?? EXEC_CALL_DEFAULTS;
  }

  /**
   * Agent command `name` through {@link post} within exec.max_reply_bytes (or `max`): the reply's
   * `data` when it matches `check`; the agent's own
   * refusal (a reply whose `data` has a non-zero `result` and a `message`: unauthorized, bad
   * request) as a failure with that result; anything else a failure with a MANAGER_RESULT.
   */
  private async command<T>(
    target: AgentTarget,
    name: string,
    data: unknown,
    check: Checker<{ data: T }>,
    timeout: number,
    max = this.execOpts.max_reply_bytes,
  ): Promise<AgentOutcome<T>> {
    const posted = await this.post(target, name, data, timeout, max, {
      timeout: 'exec.call_timeout_ms',
      max: 'exec.max_reply_bytes',
    });
    if (!posted.ok) return posted;
    const doc = posted.doc;
    const checked = check.check(doc);
    if (checked.ok) return { ok: true, reply: checked.value.data };
    const refusal = REPLY_CHECKS.refusal.check(doc);
    if (refusal.ok && refusal.value.data.result !== 0) {
      return { ok: false, result: refusal.value.data.result, message: refusal.value.data.message };
    }
    this.refused.inc({ reason: 'not_a_reply' });
    return {
      ok: false,
      result: MANAGER_RESULT.BAD_REPLY,
      message: `agent ${posted.base} answered ${name} (HTTP ${posted.status}) with a body that is not its reply: ${checked.error.field} ${checked.error.message}`,
    };
  }

  // ---- files and screen (docs/files.md "Agent routes", common/files.ts) ----

  private get fo(): HttpFileOptions {
    return this.opts.files ?? FILE_DEFAULTS;
  }

  private fileUrl(t: AgentTarget, route: string, q: Record<string, string | number | undefined>): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, String(v));
    const s = qs.toString();
    return `http://${t.host_ip}:${t.port}${route}${s ? `?${s}` : ''}`;
  }

  /** A failure of a call that got no answer: unreachable, or timeout. */
  private static lost<T>(t: AgentTarget, err: unknown, stalled = false): FileCall<T> {
    const e = err as Error & { code?: string };
    const base = `${t.host_ip}:${t.port}`;
    if (stalled) return { ok: false, status: 0, error: 'stalled', message: `agent ${base}: the transfer stalled` };
    const timedOut =
      e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
    return timedOut
      ? { ok: false, status: 0, error: 'timeout', message: `agent ${base} did not answer in time` }
      : {
          ok: false,
          status: 0,
          error: 'unreachable',
          message: `cannot reach agent ${base} (${e.code ?? e.name}: ${e.message})`,
        };
  }

  /** Reads a JSON answer (bounded by deploy.max_reply_bytes): the value on 200, else the agent's refusal. */
  private async fileJson<T>(
    t: AgentTarget,
    res: {
      statusCode: number;
      headers: Record<string, string | string[] | undefined>;
      body: Readable & { destroy(e?: Error): unknown };
    },
  ): Promise<FileCall<T>> {
    const read = await readBounded(res.body as never, res.headers['content-length'], this.opts.max_reply_bytes);
    if (!read.ok) {
      this.refused.inc({ reason: 'too_large' });
      return {
        ok: false,
        status: res.statusCode,
        error: 'bad_reply',
        message: `agent ${t.host_ip}: answer over ${this.opts.max_reply_bytes} bytes`,
      };
    }
    let doc: unknown;
    try {
      doc = JSON.parse(read.text);
    } catch {
      this.refused.inc({ reason: 'not_json' });
      return {
        ok: false,
        status: res.statusCode,
        error: 'bad_reply',
        message: `agent ${t.host_ip} answered HTTP ${res.statusCode} with a body that is not JSON`,
      };
    }
    if (res.statusCode === 200) return { ok: true, value: doc as T };
    const e = (doc ?? {}) as Partial<FileError>;
    if (typeof e.error !== 'string' || typeof e.message !== 'string') {
      this.refused.inc({ reason: 'not_a_reply' });
      return {
        ok: false,
        status: res.statusCode,
        error: 'bad_reply',
        message: `agent ${t.host_ip} answered HTTP ${res.statusCode}`,
      };
    }
    return {
      ok: false,
      status: res.statusCode,
      error: e.error as FileError['error'],
      message: e.message,
      ...(typeof e.offset === 'number' ? { offset: e.offset } : {}),
    };
  }

  private async fileCall<T>(
    t: AgentTarget,
    method: 'GET' | 'DELETE',
    route: string,
    q: Record<string, string | number | undefined>,
  ): Promise<FileCall<T>> {
    const timeout = this.fo.request_timeout_ms;
    try {
      const res = await request(this.fileUrl(t, route, q), {
        method,
        headers: this.auth(t.node),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      return await this.fileJson<T>(t, res as never);
    } catch (err) {
      return HttpAgentClient.lost<T>(t, err);
    }
  }

  fileOffset(t: AgentTarget, spec: FileUploadSpec): Promise<FileCall<OffsetReply>> {
    return this.fileCall<OffsetReply>(t, 'GET', '/files/offset', { ...spec });
  }

  fileList(t: AgentTarget, path: string): Promise<FileCall<ListReply>> {
    return this.fileCall<ListReply>(t, 'GET', '/files/list', { path });
  }

  fileDelete(t: AgentTarget, path: string, recursive: boolean): Promise<FileCall<DeleteReply>> {
    return this.fileCall<DeleteReply>(t, 'DELETE', '/files/content', { path, ...(recursive ? { recursive: 1 } : {}) });
  }

  async filePut(
    t: AgentTarget,
    spec: FileUploadSpec & { offset: number; mode?: string | undefined; owner?: string | undefined },
    body: Readable,
    signal?: AbortSignal,
  ): Promise<FileCall<PutReply>> {
    // A watchdog: no byte of the body taken for stall_timeout_ms (the link is down, the agent
    // stopped reading) aborts the request; the agent keeps what it got for a resume.
    const ac = new AbortController();
    let stalled = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = true;
        ac.abort();
      }, this.fo.stall_timeout_ms);
    };
    const watched = body.pipe(
      new Transform({
        transform(c: Buffer, _e, cb) {
          arm();
          cb(null, c);
        },
      }),
    );
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    arm();
    try {
      const res = await request(this.fileUrl(t, '/files/content', { ...spec }), {
        method: 'PUT',
        headers: {
          ...this.auth(t.node),
          'content-type': 'application/octet-stream',
          'content-length': String(spec.size - spec.offset),
        },
        body: watched,
        headersTimeout: 0,
        bodyTimeout: this.fo.stall_timeout_ms,
        signal: ac.signal,
      });
      // The whole body is sent; the agent now hashes, syncs and renames: its answer may take a while.
      clearTimeout(timer);
      return await this.fileJson<PutReply>(t, res as never);
    } catch (err) {
      return HttpAgentClient.lost<PutReply>(t, err, stalled);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      watched.destroy();
      body.destroy();
    }
  }

  async fileGet(t: AgentTarget, path: string): Promise<FileCall<FileDownload>> {
    try {
      const res = await request(this.fileUrl(t, '/files/content', { path }), {
        method: 'GET',
        headers: this.auth(t.node),
        headersTimeout: this.fo.request_timeout_ms,
        bodyTimeout: this.fo.stall_timeout_ms,
      });
      if (res.statusCode !== 200) return await this.fileJson<FileDownload>(t, res as never);
      const size = Number(res.headers['content-length']);
      if (!Number.isSafeInteger(size)) {
        res.body.destroy();
        return { ok: false, status: 200, error: 'bad_reply', message: `agent ${t.host_ip} sent no content-length` };
      }
      return { ok: true, value: { size, body: res.body } };
    } catch (err) {
      return HttpAgentClient.lost<FileDownload>(t, err);
    }
  }

  async screen(t: AgentTarget): Promise<FileCall<ScreenShot>> {
    const timeout = this.fo.screen_timeout_ms;
    try {
      const res = await request(this.fileUrl(t, '/screen', {}), {
        method: 'GET',
        headers: this.auth(t.node),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      if (res.statusCode !== 200) return await this.fileJson<ScreenShot>(t, res as never);
      const max = this.fo.screen_max_bytes;
      const length = Number(res.headers['content-length']);
      const chunks: Buffer[] = [];
      let bytes = 0;
      if (Number.isFinite(length) && length > max) bytes = length;
      else {
        for await (const c of res.body) {
          bytes += (c as Buffer).length;
          if (bytes > max) break;
          chunks.push(c as Buffer);
        }
      }
      if (bytes > max) {
        res.body.destroy();
        this.refused.inc({ reason: 'too_large' });
        return {
          ok: false,
          status: 200,
          error: 'bad_reply',
          message: `agent ${t.host_ip}: screen over ${max} bytes (files.screen_max_bytes)`,
        };
      }
      const png = Buffer.concat(chunks);
      if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
        this.refused.inc({ reason: 'not_a_reply' });
        return {
          ok: false,
          status: 200,
          error: 'bad_reply',
          message: `agent ${t.host_ip} sent a screen that is not a PNG`,
        };
      }
      const method = res.headers['x-muster-screen-method'];
      return { ok: true, value: { png, method: typeof method === 'string' ? method : '' } };
    } catch (err) {
      return HttpAgentClient.lost<ScreenShot>(t, err);
    }
  }

  // ---- end of files and screen ----
}

/** Bounds of the remote-execution calls (docs/configuration.md "exec"). */
export interface ExecCallOptions {
  /** Time limit of one exec call, ms (exec.call_timeout_ms); a long poll adds its wait_ms. */
  call_timeout_ms: number;
  /** Largest reply read, bytes (exec.max_reply_bytes). */
  max_reply_bytes: number;
  /** Largest generate_file fetched back, bytes (exec.max_file_bytes). */
  max_file_bytes: number;
}

/** The shipped defaults of {@link ExecCallOptions} (config/manager.yaml). */
export const EXEC_CALL_DEFAULTS: ExecCallOptions = {
  call_timeout_ms: 10_000,
  max_reply_bytes: 4 << 20,
  max_file_bytes: 8 << 20,
};

const reply = (data: TSchema) => Type.Object({ api_version: Type.Integer(), data });
/** The reply checkers, by command; `refusal` is any reply with a result and a message (also used by the link client, manager/link/client.ts). */
export const REPLY_CHECKS = {
  exec: compile<{ data: ExecReplyData }>(reply(ExecReplyData)),
  exec_status: compile<{ data: ExecStatusReplyData }>(reply(ExecStatusReplyData)),
  exec_kill: compile<{ data: ExecKillReplyData }>(
    reply(Type.Object({ result: Type.Integer(), message: Type.String() })),
  ),
  exec_file: compile<{ data: ExecFileReplyData }>(reply(ExecFileReplyData)),
  command_set: compile<{ data: CommandSetReplyData }>(reply(CommandSetReplyData)),
  refusal: compile<{ data: { result: number; message: string } }>(
    reply(Type.Object({ result: Type.Integer(), message: Type.String() })),
  ),
};
