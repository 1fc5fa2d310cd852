/**
 * The dashboard's files (docs/dashboard.md), on the API listener, outside /api/v1 and public (the
 * page itself holds no data: every figure comes from the API behind the login):
 *
 *   GET /                → index.html (no-cache)
 *   GET /assets/:file    → the bundled script, styles (cached for a day; the page names them
 *                          with a content hash query)
 *
 * The files are the output of `make build` (scripts/build-dashboard.mjs → dist/dashboard/), read
 * once at start into memory, gzip-compressed once, and served compressed to a browser that
 * accepts it: no CDN, nothing fetched from elsewhere, so it works on an air-gapped chassis. When
 * they are missing (`make build` not run), `/` answers 503 saying so, and the API works as before.
 * Every answer carries a Content-Security-Policy that allows only this origin.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../common/log.js';

/** What the dashboard route uses. */
export interface DashboardRoutesOptions {
  /** The built files (dashboard.dir); "" = dist/dashboard of this installation. */
  dir: string;
  log: Logger;
}

/** A file served from memory. */
interface Asset {
  body: Buffer;
  gzip: Buffer | null;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** The answer headers of every dashboard file. */
export const DASHBOARD_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** Largest file read into memory (a built asset is far smaller). */
const MAX_ASSET = 16 << 20;

/**
 * The built dashboard of this installation: `dist/dashboard` under the first ancestor of this
 * module that has one (a checkout run from source or from dist/, or an offline bundle).
 * @returns the directory, or null when none is built
 */
export function findDashboardDir(from = path.dirname(fileURLToPath(import.meta.url))): string | null {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    const c = path.join(dir, 'dist', 'dashboard');
    if (existsSync(path.join(c, 'index.html'))) return c;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/**
 * Reads every file of `dir` (not recursive) into memory.
 * @returns the files by name, empty when `dir` is null or unreadable
 */
export function loadAssets(dir: string | null): Map<string, Asset> {
  const out = new Map<string, Asset>();
  if (!dir || !existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    const st = statSync(file);
    if (!st.isFile() || st.size > MAX_ASSET) continue;
    const type = TYPES[path.extname(name)];
    if (!type) continue;
    const body = readFileSync(file);
    const compressible = !type.startsWith('image/png');
    const gz = compressible ? gzipSync(body, { level: 9 }) : null;
    out.set(name, {
      body,
      gzip: gz && gz.length < body.length ? gz : null,
      type,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    });
  }
  return out;
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset, cache: string) {
  void reply.headers({ ...DASHBOARD_HEADERS, 'content-type': a.type, 'cache-control': cache, etag: a.etag });
  void reply.header('vary', 'accept-encoding');
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  const accepts = String(req.headers['accept-encoding'] ?? '');
  if (a.gzip && /\bgzip\b/.test(accepts)) {
    void reply.header('content-encoding', 'gzip');
    return reply.send(a.gzip);
  }
  return reply.send(a.body);
}

/** Registers GET / and GET /assets/:file. */
export const dashboardRoutes: FastifyPluginAsync<DashboardRoutesOptions> = async (app, o) => {
  const dir = o.dir || findDashboardDir();
  const assets = loadAssets(dir);
  if (!assets.has('index.html')) {
    o.log.warn(
      { dir: dir ?? 'dist/dashboard' },
      'the dashboard is not built (run make build); / answers 503, the API works',
    );
  }

  app.get('/', { config: { role: 'public' } }, async (req, reply) => {
    const index = assets.get('index.html');
    if (!index) {
      return reply
        .code(503)
        .headers(DASHBOARD_HEADERS)
        .type('text/plain; charset=utf-8')
        .send('the muster dashboard is not built: run `make build` (or npm run build) and restart the manager\n');
    }
    return send(req, reply, index, 'no-cache');
  });

  app.get<{ Params: { file: string } }>('/assets/:file', { config: { role: 'public' } }, async (req, reply) => {
    const name = req.params.file;
    const a = name === 'index.html' ? undefined : assets.get(name);
    if (!a) return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    return send(req, reply, a, 'public, max-age=86400');
  });
};
