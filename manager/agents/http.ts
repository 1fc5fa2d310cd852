/**
 * The {@link AgentClient} over HTTP (undici) to the agent's command service
 * `http://<host_ip>:<service_port>` (docs/protocol.md "5. Load command"): POST /deploy with the
 * spec's `{ api_version: 1, data }` body and the node's bearer token, the reply checked against
 * DeployReplyBody; GET /deploy/:uuid for progress. Whatever goes wrong on the way (agent
 * unreachable, time limit, a reply that is not the spec's shape) is an outcome with a negative
 * result, never a throw.
 */
import { request } from 'undici';
import { MANAGER_RESULT } from '../../common/api/deploy.js';
import { API_VERSION } from '../../common/constants.js';
import { DeployReplyBody, type DeployRequestData } from '../../common/protocol.js';
import { compile } from '../../common/validate.js';
import type { AgentClient, AgentProgress, AgentTarget, DeployOutcome } from './client.js';
import type { AgentCredentials } from './credentials.js';

const checkReply = compile<DeployReplyBody>(DeployReplyBody);

/** Time limits of the HTTP calls. */
export interface HttpAgentOptions {
  /** Time limit of one POST /deploy, ms (deploy.timeout_ms). */
  timeout_ms: number;
  /** Time limit of one progress GET, ms. */
  progress_timeout_ms: number;
}

/** Calls agents over HTTP. */
export class HttpAgentClient implements AgentClient {
  constructor(
    private readonly opts: HttpAgentOptions,
    private readonly credentials: Pick<AgentCredentials, 'tokenFor'>,
  ) {}

  private auth(node: string): Record<string, string> {
    const token = this.credentials.tokenFor(node);
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  async deploy(target: AgentTarget, data: DeployRequestData): Promise<DeployOutcome> {
    const base = `http://${target.host_ip}:${target.port}`;
    const timeout = this.opts.timeout_ms;
    let status: number;
    let text: string;
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
      text = await res.body.text();
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
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return {
        ok: false,
        result: MANAGER_RESULT.BAD_REPLY,
        message: `agent ${base} answered HTTP ${status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 200))}`,
      };
    }
    const checked = checkReply.check(doc);
    if (!checked.ok) {
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
      const text = await res.body.text();
      if (res.statusCode !== 200) return null;
      const doc = JSON.parse(text) as unknown;
      return typeof doc === 'object' && doc !== null ? (doc as AgentProgress) : null;
    } catch {
      return null;
    }
  }
}
