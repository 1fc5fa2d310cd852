/**
 * The file and screen routes of the agent's command port (docs/files.md "Agent routes"; the
 * contract is common/files.ts): offset, PUT, GET and DELETE of files inside `files.roots`, a
 * directory listing, and `GET /screen`. Each needs the same bearer token as `POST /deploy`,
 * checked before any byte of a body is read. File bodies are not parsed: the raw request stream
 * goes to the upload (agent/files/uploads.ts), so a body is never held in memory and
 * `http.body_limit_bytes` does not apply to it (`files.max_bytes` does). Every refusal is a JSON
 * `{ error, message }` counted in `muster_agent_files_refused_total{reason}`; a PUT refused
 * before its body is read closes the connection instead of draining the body.
 */
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  FILE_ERROR_STATUS,
  FILE_ERRORS,
  type FileError,
  type FileErrorCode,
  MODE_RE,
  OWNER_RE,
  SCREEN_METHODS,
  SHA256_RE,
} from '../../common/files.js';
import { chunkReleaser } from '../../common/gc.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import { deletePath, listDir, openFile } from '../files/ops.js';
import { FileRefusal, type Roots } from '../files/paths.js';
import type { Uploads } from '../files/uploads.js';
import { Counter, type Registry } from '../prom.js';
import type { ScreenCapturer } from '../screen/capture.js';
import { type CommandAuth, unauthorized } from './commands.js';
import { type AgentRequest, type AgentServer, type BeforeHook, type RouteHandler, sendJson } from './server.js';

/** What the file and screen routes use. */
export interface FileRoutesDeps {
  roots: Roots;
  uploads: Uploads;
  screen: ScreenCapturer;
  auth: CommandAuth;
  /** files.max_list_entries. */
  maxListEntries: number;
  metrics: Registry;
  log: Logger;
}

type Query = Record<string, string | undefined>;

function int(q: Query, name: string, required = true): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') {
    if (required) throw new FileRefusal('bad_request', `${name} is required`);
    return undefined;
  }
  if (!/^\d{1,16}$/.test(v)) throw new FileRefusal('bad_request', `${name} must be a whole number`);
  return Number(v);
}

function str(q: Query, name: string): string {
  const v = q[name];
  if (v === undefined || v === '') throw new FileRefusal('bad_request', `${name} is required`);
  return v;
}

function sha(q: Query): string {
  const v = str(q, 'sha256').toLowerCase();
  if (!SHA256_RE.test(v)) throw new FileRefusal('bad_request', 'sha256 must be 64 hex digits');
  return v;
}

/** Parses `mode` (octal text) and `owner` (`uid[:gid]`) of a PUT. */
function modeOwner(q: Query): { mode?: number; owner?: { uid: number; gid: number } } {
  const out: { mode?: number; owner?: { uid: number; gid: number } } = {};
  if (q.mode) {
    if (!MODE_RE.test(q.mode)) throw new FileRefusal('bad_request', 'mode must be octal permission bits, e.g. 0644');
    out.mode = Number.parseInt(q.mode, 8);
  }
  if (q.owner) {
    if (!OWNER_RE.test(q.owner)) throw new FileRefusal('bad_request', 'owner must be a numeric uid or uid:gid');
    const [u, g] = q.owner.split(':');
    out.owner = { uid: Number(u), gid: g === undefined ? -1 : Number(g) };
  }
  return out;
}

/** Registers the routes on `app` (see the module comment). */
export function fileRoutes(app: AgentServer, d: FileRoutesDeps): void {
  const rl = new RateLimitedLog(d.log);
  const refused = new Counter({
    name: 'muster_agent_files_refused_total',
    help: 'File and screen requests refused, by reason (outside_roots, bad_path, too_large, no_space, busy, hash_mismatch, no_display, ...)',
    labelNames: ['reason'],
    registers: [d.metrics],
  });
  for (const r of FILE_ERRORS) refused.inc({ reason: r }, 0);
  const uploaded = new Counter({
    name: 'muster_agent_files_uploads_total',
    help: 'Files put in place by PUT /files/content, by whether the upload resumed a partial one (resumed=yes/no)',
    labelNames: ['resumed'],
    registers: [d.metrics],
  });
  const captures = new Counter({
    name: 'muster_agent_screen_captures_total',
    help: 'Screen captures that gave a PNG, by method (x11, wayland, fb)',
    labelNames: ['method'],
    registers: [d.metrics],
  });
  for (const m of SCREEN_METHODS) captures.inc({ method: m }, 0);

  const fail = (req: AgentRequest, res: ServerResponse, err: unknown, drop = false): void => {
    let code: FileErrorCode = 'internal';
    let message = 'internal error';
    let offset: number | undefined;
    if (err instanceof FileRefusal) {
      code = err.code;
      message = err.message;
      offset = err.offset;
    } else {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EACCES' || e.code === 'EPERM') {
        code = 'outside_roots';
        message = `permission denied: ${e.message}`;
      } else if (e.code === 'ENOENT') {
        code = 'not_found';
        message = e.message;
      } else d.log.error({ err: e.message, url: req.url }, 'file request failed');
    }
    refused.inc({ reason: code });
    rl.warn(
      `files:${code}:${req.ip}`,
      { from: req.ip, url: req.url.slice(0, 300), why: message },
      'file request refused',
    );
    const body: FileError = { error: code, message, ...(offset !== undefined ? { offset } : {}) };
    if (res.headersSent) {
      // A download that failed mid-stream: the status is gone, the connection is cut.
      res.destroy();
      return;
    }
    // An unread upload body is not drained: the connection is closed after the answer.
    sendJson(res, FILE_ERROR_STATUS[code], body, drop ? { connection: 'close' } : {});
  };

  const checkAuth: BeforeHook = (req, res) => {
    const why = unauthorized(d.auth, req.raw.headers.authorization);
    if (why === null) return false;
    refused.inc({ reason: 'unauthorized' });
    rl.warn(`auth:${req.ip}`, { from: req.ip, path: req.url.slice(0, 300), why }, 'file request refused: unauthorized');
    sendJson(res, 401, { error: 'unauthorized', message: `unauthorized: ${why}` }, { connection: 'close' });
    return true;
  };
  refused.inc({ reason: 'unauthorized' }, 0);

  // Every route: the token first; a handler's refusal goes through `fail`.
  const route = (method: 'GET' | 'PUT' | 'DELETE', path: string, h: RouteHandler) =>
    app.route(method, path, h, checkAuth);
  const answer = async (req: AgentRequest, res: ServerResponse, work: () => Promise<unknown>) => {
    try {
      sendJson(res, 200, await work());
    } catch (err) {
      fail(req, res, err);
    }
  };

  route('GET', '/files/offset', (req, res) =>
    answer(req, res, () => {
      const q = req.query;
      return d.uploads.offset({ path: str(q, 'path'), sha256: sha(q), size: int(q, 'size') as number });
    }),
  );

  route('PUT', '/files/content', async (req, res) => {
    const q = req.query;
    let started = false;
    try {
      const spec = {
        path: str(q, 'path'),
        sha256: sha(q),
        size: int(q, 'size') as number,
        offset: int(q, 'offset', false) ?? 0,
        ...modeOwner(q),
      };
      const declared = Number(req.raw.headers['content-length']);
      if (Number.isFinite(declared) && declared > spec.size - spec.offset)
        throw new FileRefusal(
          'bad_request',
          `content-length ${declared} is more than size - offset = ${spec.size - spec.offset}`,
        );
      started = true;
      const out = await d.uploads.put(spec, req.raw);
      uploaded.inc({ resumed: out.offset > 0 ? 'yes' : 'no' });
      sendJson(res, 200, out);
    } catch (err) {
      fail(req, res, err, !started || !req.raw.readableEnded);
    }
  });

  route('GET', '/files/content', async (req, res) => {
    let f: Awaited<ReturnType<typeof openFile>>;
    try {
      f = await openFile(d.roots, str(req.query, 'path'));
    } catch (err) {
      return fail(req, res, err);
    }
    f.stream.on('data', (c: string | Buffer) => chunkReleaser.add(c.length));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': f.size });
    try {
      await pipeline(f.stream, res);
    } catch (err) {
      // The reader went away, or the file could not be read to its end: the status is sent, so
      // the connection is cut (the client sees a short body against the content-length).
      if (!res.destroyed) fail(req, res, err);
    }
  });

  route('GET', '/files/list', (req, res) =>
    answer(req, res, () => listDir(d.roots, str(req.query, 'path'), d.maxListEntries)),
  );

  route('DELETE', '/files/content', (req, res) =>
    answer(req, res, () => {
      const q = req.query;
      return deletePath(d.roots, str(q, 'path'), q.recursive === '1' || q.recursive === 'true');
    }),
  );

  route('GET', '/screen', async (req, res) => {
    try {
      const c = await d.screen.capture();
      captures.inc({ method: c.method });
      res.writeHead(200, {
        'content-type': 'image/png',
        'x-muster-screen-method': c.method,
        'cache-control': 'no-store',
        'content-length': c.png.length,
      });
      res.end(c.png);
    } catch (err) {
      fail(req, res, err);
    }
  });
}
