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
import { Counter, type Registry } from 'prom-client';
import { request } from 'undici';
import { MANAGER_RESULT } from '../../common/api/deploy.js';
import { API_VERSION } from '../../common/constants.js';
import { DeployReplyBody, type DeployRequestData } from '../../common/protocol.js';
import { compile } from '../../common/validate.js';
import type { AgentClient, AgentProgress, AgentTarget, DeployOutcome } from './client.js';
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
}

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
      help: 'Replies from agents (POST /deploy, GET /deploy/:uuid) refused, by reason: too_large, not_json, not_a_reply',
      labelNames: ['reason'],
      registers: [metrics],
    });
  }

  private auth(node: string): Record<string, string> {
    const token = this.credentials.tokenFor(node);
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  async deploy(target: AgentTarget, data: DeployRequestData): Promise<DeployOutcome> {
    const base = `http://${target.host_ip}:${target.port}`;
    const timeout = this.opts.timeout_ms;
    const max = this.opts.max_reply_bytes;
    let status: number;
    let read: Bounded;
    try {
      const res = await request(`${base}/deploy`, {
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
            message: `agent ${base} did not answer within ${timeout} ms (deploy.timeout_ms); the operation may still complete on the board`,
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
        message: `agent ${base} answered HTTP ${status} with a reply over ${max} bytes (deploy.max_reply_bytes); refused after ${read.bytes} bytes`,
      };
    }
    const text = read.text;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      this.refused.inc({ reason: 'not_json' });
      return {
        ok: false,
        result: MANAGER_RESULT.BAD_REPLY,
        message: `agent ${base} answered HTTP ${status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 200))}`,
      };
    }
    const checked = checkReply.check(doc);
    if (!checked.ok) {
      this.refused.inc({ reason: 'not_a_reply' });
      return {
        ok: false,
        result: MANAGER_RESULT.BAD_REPLY,
        message: `agent ${base} answered HTTP ${status} with a body that is not a deploy reply: ${checked.error.field} ${checked.error.message}`,
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
}
