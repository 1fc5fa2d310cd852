/**
 * The seed executor API (docs/exec.md "The seed executor API") on its own port
 * (`exec.osreapi.port`, default 2376, 0 = off), so that an existing client of that executor works
 * against a muster agent unchanged:
 *
 *   GET /            the tasks: `{code:0, message:"成功", data:{running, tasks[], total}}`, `?sort=end|ttl`
 *   POST /           a JSON array of steps (`?ansync=true` or `async=true`: all at once):
 *                    `{code:0, data:{id, count}}`, or HTTP 400 `{code:400, message}`
 *   GET /<id>        per step `{step, name, state, code, message, times:{begin, end, ttl}}` with code 0,
 *                    or `{code:1001, message:"执行中"}`, `{code:1002, message:"N, 执行失败", data:[{code,
 *                    message, step}]}`, `{code:1003, message:"id不存在, 沒有数据"}` — all HTTP 200
 *   PUT /<id>?action=kill   kill the task (its process groups)
 *
 * Served with node:http (no framework: the agent's RSS budget). Every request needs the agent's
 * bearer token like `/deploy` (checked before the body is read; none with auth.disabled); bodies
 * are bounded by http.body_limit_bytes (413) and http.max_json_depth (400, checked before
 * parsing); a request must arrive within exec.osreapi.request_timeout_ms.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { StepSpecSchema, TASK_ID_PATTERN } from '../../common/exec.js';
import { jsonDepthExceeds } from '../../common/json-depth.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import { compile } from '../../common/validate.js';
import { type CommandAuth, tokenMatches } from '../http/commands.js';
import { Counter, type Registry } from '../prom.js';
import { formatGoDuration, rfc3339Local } from './duration.js';
import { type ExecRunner, failMessage, stepCode, type TaskSummary } from './runner.js';
import type { StepRecord, TaskRecord } from './store.js';

// node:http through getBuiltinModule, not `import`: an ESM import of node:http evaluates every
// export of the module, and its lazy WebSocket/EventSource exports load Node's internal undici
// (~4 MiB of RSS per agent; docs/operations.md "Agent footprint").
const nodeHttp = process.getBuiltinModule('node:http');

/** The seed's result codes (in the body; the HTTP status is 200 for all four). */
export const OSREAPI_CODE = { OK: 0, RUNNING: 1001, FAILED: 1002, NOT_FOUND: 1003 } as const;

/** The seed's texts. */
export const TEXT = {
  ok: '成功',
  running: '执行中',
  pending: '等待中',
  ended: '已结束',
  allDone: '所有步骤执行成功',
  failed: '执行失败',
  notFound: 'id不存在, 沒有数据',
  missingId: '缺少id参数',
  skipped: '已跳过',
  killed: '已终止',
  interrupted: '已中断',
} as const;

/** Where and how the seed API listens. */
export interface OsreapiOptions {
  host: string;
  port: number;
  auth: CommandAuth;
  bodyLimit: number;
  maxJsonDepth: number;
  requestTimeoutMs: number;
  keepMs: number;
}

const TASK_ID = new RegExp(TASK_ID_PATTERN);
const checkStep = compile<unknown>(StepSpecSchema);
/** Most connections the seed API holds at once. */
const MAX_CONNECTIONS = 256;

function stepStateText(s: StepRecord['state']): string {
  switch (s) {
    case 'pending':
      return TEXT.pending;
    case 'running':
      return TEXT.running;
    case 'skipped':
      return TEXT.skipped;
    case 'killed':
      return TEXT.killed;
    case 'interrupted':
      return TEXT.interrupted;
    default:
      return TEXT.ended;
  }
}

function taskStateText(s: TaskSummary['state']): string {
  return s === 'queued' ? TEXT.pending : s === 'running' ? TEXT.running : TEXT.ended;
}

/** The failed steps of a task (failed, timed out, killed, interrupted; not the skipped). */
function failedOf(steps: readonly { step: number; state: string }[]): number[] {
  return steps.filter((s) => ['failed', 'timeout', 'killed', 'interrupted'].includes(s.state)).map((s) => s.step);
}

/** A task's seed code and message: 0 所有步骤执行成功, 1001 执行中, 1002 `N, 执行失败` (N = the first failed step). */
export function taskCode(s: TaskSummary): { code: number; message: string } {
  if (s.state === 'queued' || s.state === 'running') return { code: OSREAPI_CODE.RUNNING, message: TEXT.running };
  if (s.state === 'done') return { code: OSREAPI_CODE.OK, message: TEXT.allDone };
  const first = failedOf(s.failed.map((f) => ({ step: f.step, state: 'failed' })))[0] ?? 0;
  return { code: OSREAPI_CODE.FAILED, message: `${first}, ${TEXT.failed}` };
}

/** The seed API over `runner`. */
export class OsreapiServer {
  private readonly server: http.Server;
  private readonly rl: RateLimitedLog;
  private readonly refused: Counter<'reason'>;

  constructor(
    private readonly runner: ExecRunner,
    private readonly opts: OsreapiOptions,
    private readonly log: Logger,
    metrics: Registry,
  ) {
    this.rl = new RateLimitedLog(log);
    this.refused = new Counter({
      name: 'muster_agent_osreapi_refused_total',
      help: 'Requests to the seed executor API refused before they ran, by reason',
      labelNames: ['reason'],
      registers: [metrics],
    });
    for (const r of ['unauthorized', 'too_large', 'too_deep', 'bad_request', 'timeout', 'busy'])
      this.refused.inc({ reason: r }, 0);
    this.server = nodeHttp.createServer(
      {
        requestTimeout: opts.requestTimeoutMs,
        // How often node checks the request timeout (its default, 30 s, would let a slow client
        // hold a connection up to 30 s past the bound).
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(opts.requestTimeoutMs / 2))),
        headersTimeout: Math.min(opts.requestTimeoutMs, 60_000),
        keepAliveTimeout: 5000,
        maxHeaderSize: 16 * 1024,
      },
      (req, res) => void this.handle(req, res),
    );
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') this.refused.inc({ reason: 'timeout' });
      if (socket.writable) socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Listens; resolves with the bound port. */
  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private unauthorized(req: http.IncomingMessage): string | null {
    const a = this.opts.auth;
    if (a.disabled) return null;
    if (a.token === null) return 'no token is configured on this agent (auth.token or auth.token_file)';
    if (!req.headers.authorization) return 'missing Authorization: Bearer token';
    return tokenMatches(req.headers.authorization, a.token) ? null : 'wrong token';
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const why = this.unauthorized(req);
    if (why !== null) {
      this.refused.inc({ reason: 'unauthorized' });
      this.rl.warn(
        `osreapi-auth:${req.socket.remoteAddress}`,
        { from: req.socket.remoteAddress, why },
        'osreapi refused: unauthorized',
      );
      req.resume();
      return this.send(res, 401, { code: 401, message: `unauthorized: ${why}` });
    }
    try {
      const parts = url.pathname.split('/').filter((p) => p !== '');
      if (parts.length === 0) {
        if (req.method === 'GET') {
          const out = this.list(url);
          return this.send(res, out.code === 400 ? 400 : 200, out);
        }
        if (req.method === 'POST') return await this.submit(req, res, url);
        if (req.method === 'PUT') {
          req.resume();
          return this.send(res, 400, { code: 400, message: TEXT.missingId });
        }
      } else if (parts.length === 1) {
        let id = '';
        try {
          id = decodeURIComponent(parts[0] as string);
        } catch {
          // not an id: answered as unknown
        }
        if (req.method === 'GET') return this.send(res, 200, await this.get(id));
        if (req.method === 'PUT') {
          req.resume();
          const [status, body] = this.kill(id, url);
          return this.send(res, status, body);
        }
      } else {
        req.resume();
        return this.send(res, 404, { code: 404, message: `no route ${url.pathname}` });
      }
      req.resume();
      res.setHeader('allow', parts.length === 0 ? 'GET, POST' : 'GET, PUT');
      return this.send(res, 405, { code: 405, message: `method ${req.method} not allowed` });
    } catch (err) {
      this.log.error({ err: (err as Error).stack ?? String(err) }, 'osreapi handler threw');
      if (!res.headersSent) this.send(res, 500, { code: 500, message: 'internal error' });
    }
  }

  /** GET /: the tasks, sorted by begin (default), end or ttl. */
  private list(url: URL): { code: number } & Record<string, unknown> {
    const sort = (url.searchParams.get('sort') ?? 'begin').toLowerCase();
    const all = this.runner.summaries();
    const begin = (s: TaskSummary) => s.begin ?? s.created;
    const end = (s: TaskSummary) => s.end ?? Number.MAX_SAFE_INTEGER;
    if (sort === 'end' || sort === 'completed') all.sort((a, b) => end(a) - end(b) || begin(a) - begin(b));
    else if (sort === 'ttl' || sort === 'expired') all.sort((a, b) => end(a) - end(b) || begin(a) - begin(b));
    else if (sort === 'begin' || sort === 'start') all.sort((a, b) => begin(a) - begin(b));
    else return { code: 400, message: `sort must be end or ttl (default: by begin), not ${JSON.stringify(sort)}` };
    const now = Date.now();
    const tasks = all.map((s) => ({
      id: s.id,
      state: taskStateText(s.state),
      ...taskCode(s),
      count: s.count,
      times: this.times(s.begin, s.end, now),
    }));
    return {
      code: 0,
      message: TEXT.ok,
      data: { running: this.runner.activeCount(), tasks, total: tasks.length },
    };
  }

  /** `{begin, end, ttl}` as the seed writes them; ttl (time left before expiry) counts from `taskEnd`. */
  private times(begin: number | null, end: number | null, now: number, taskEnd = end): Record<string, string> {
    const t: Record<string, string> = {};
    if (begin !== null) t.begin = rfc3339Local(begin);
    if (end !== null) t.end = rfc3339Local(end);
    if (taskEnd !== null) t.ttl = formatGoDuration(Math.max(0, taskEnd + this.opts.keepMs - now));
    return t;
  }

  /** POST /: a JSON array of steps. */
  private async submit(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const bad = (message: string, reason = 'bad_request', status = 400) => {
      this.refused.inc({ reason });
      return this.send(res, status, { code: status, message });
    };
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.opts.bodyLimit) {
      req.resume();
      return bad(`body is larger than ${this.opts.bodyLimit} bytes (http.body_limit_bytes)`, 'too_large', 413);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const read = await new Promise<'ok' | 'over' | 'gone'>((resolve) => {
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.opts.bodyLimit) {
          req.removeAllListeners('data');
          req.resume();
          resolve('over');
        } else chunks.push(c);
      });
      req.on('end', () => resolve('ok'));
      // A client gone (or cut by the request timeout) before the end: nothing to answer.
      req.on('error', () => resolve('gone'));
      req.on('close', () => resolve(req.complete ? 'ok' : 'gone'));
    });
    if (read === 'gone') return;
    if (read === 'over')
      return bad(`body is larger than ${this.opts.bodyLimit} bytes (http.body_limit_bytes)`, 'too_large', 413);
    const text = Buffer.concat(chunks).toString('utf8');
    if (jsonDepthExceeds(text, this.opts.maxJsonDepth))
      return bad(
        `body is nested too deep: more than ${this.opts.maxJsonDepth} levels (http.max_json_depth)`,
        'too_deep',
      );
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return bad('body is not valid JSON: a JSON array of steps is expected');
    }
    if (!Array.isArray(body) || body.length === 0) return bad('a JSON array of at least one step is expected');
    for (let i = 0; i < body.length; i++) {
      const r = checkStep.check(body[i]);
      if (!r.ok) return bad(`step ${i}: ${r.error.field.replace(/^\//, '') || 'step'} ${r.error.message}`);
    }
    const flag = (name: string) => ['true', '1', 'yes'].includes((url.searchParams.get(name) ?? '').toLowerCase());
    const out = this.runner.submit({ steps: body, async: flag('ansync') || flag('async'), source: 'osreapi' });
    if (!out.ok) {
      if (out.reason === 'max_requests' || out.reason === 'stopping') return bad(out.message, 'busy', 503);
      this.refused.inc({ reason: 'bad_request' });
      return this.send(res, 400, { code: 400, message: out.message });
    }
    this.log.info({ task: out.id, from: req.socket.remoteAddress, steps: out.count }, 'osreapi task accepted');
    return this.send(res, 200, { code: 0, data: { id: out.id, count: out.count } });
  }

  /** GET /<id>. */
  private async get(id: string): Promise<unknown> {
    const rec = TASK_ID.test(id) ? await this.runner.record(id) : null;
    if (!rec) return { code: OSREAPI_CODE.NOT_FOUND, message: TEXT.notFound };
    if (rec.state === 'queued' || rec.state === 'running') return { code: OSREAPI_CODE.RUNNING, message: TEXT.running };
    const failed = failedOf(rec.steps);
    if (failed.length > 0) {
      return {
        code: OSREAPI_CODE.FAILED,
        message: `${failed[0]}, ${TEXT.failed}`,
        data: failed.map((i) => {
          const s = rec.steps[i] as StepRecord;
          return { code: stepCode(s), message: failMessage(s), step: s.step };
        }),
      };
    }
    return { code: OSREAPI_CODE.OK, message: TEXT.ok, data: this.steps(rec) };
  }

  private steps(rec: TaskRecord): unknown[] {
    const now = Date.now();
    return rec.steps.map((s) => ({
      step: s.step,
      name: s.name,
      state: stepStateText(s.state),
      code: stepCode(s),
      message: s.state === 'skipped' ? s.message : (this.runner.stepOutput(rec.id, s.step) ?? s.output),
      times: this.times(s.begin, s.end, now, rec.end),
    }));
  }

  /** PUT /<id>?action=kill: the HTTP status and body. */
  private kill(id: string, url: URL): [number, unknown] {
    const action = url.searchParams.get('action');
    if (action !== 'kill') {
      this.refused.inc({ reason: 'bad_request' });
      return [400, { code: 400, message: 'action must be kill' }];
    }
    if (!TASK_ID.test(id) || this.runner.kill(id).result === 5)
      return [200, { code: OSREAPI_CODE.NOT_FOUND, message: TEXT.notFound }];
    this.log.info({ task: id }, 'osreapi kill');
    return [200, { code: 0, message: TEXT.ok }];
  }
}
