/**
 * The access check of the REST API (docs/operations.md "Users and access"): an `onRequest` hook
 * on the `/api/v1` plugin context, so it runs before the body is read or parsed (an
 * unauthenticated request costs no parsing), and an `onRoute` hook that refuses, at registration,
 * any API route that does not declare its minimum role in `config.role` (fail closed: the server
 * does not start).
 *
 * Credentials: `Authorization: Bearer <token>` (a session or API token), else the session cookie.
 * Without valid ones: 401 `{ error: 'unauthorized' }` with `WWW-Authenticate: Bearer`; with too
 * small a role: 403 `{ error: 'forbidden' }`. A route with `config.role: 'public'` (only
 * POST /login) is open.
 *
 * CSRF: a request authenticated by the cookie with an unsafe method (anything but GET, HEAD,
 * OPTIONS) must come from the same origin: `Sec-Fetch-Site: same-origin` when the browser sends
 * it, else an `Origin` whose host is the request's `Host`; without either it is refused (403
 * `csrf`). The cookie is SameSite=Strict too. Bearer requests are not checked: a browser never
 * adds that header by itself.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Role, roleAtLeast, SESSION_COOKIE } from '../../common/api/auth.js';
import type { ApiError } from '../../common/api/errors.js';
import type { Access, Principal } from './access.js';

/** What a route declares in `config.role`: the least role that may call it, or `public`. */
export type RouteAccess = Role | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role that may call this API route, or `public` (docs/operations.md "Users and access"). */
    role?: RouteAccess;
  }
  interface FastifyRequest {
    /** Who made the request, once the API's access check let it through. */
    principal?: Principal;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie value of a session (`maxAgeS` 0 clears it). */
export function sessionCookie(token: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** The bearer token of a request, or undefined (also for another scheme). */
export function bearerOf(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** Whether a cookie-authenticated unsafe request comes from the same origin (see the header). */
export function sameOrigin(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin';
  const origin = req.headers.origin;
  if (typeof origin !== 'string') return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function refuse(reply: FastifyReply, access: Access, status: 401 | 403, body: ApiError): FastifyReply {
  access.metrics.refused.inc({ status: String(status) });
  if (status === 401) void reply.header('www-authenticate', 'Bearer realm="muster"');
  return reply.code(status).send(body);
}

/**
 * Installs the access check on `api` (the `/api/v1` context). Call before its routes are
 * registered: the onRoute check covers only routes registered after it.
 */
export function installAccessGuard(api: FastifyInstance, access: Access): void {
  api.addHook('onRoute', (route) => {
    const role = (route.config as { role?: unknown } | undefined)?.role;
    if (role !== 'public' && role !== 'viewer' && role !== 'operator' && role !== 'admin') {
      const method = Array.isArray(route.method) ? route.method.join(',') : route.method;
      throw new Error(`API route ${method} ${route.url} declares no config.role (viewer, operator, admin or public)`);
    }
  });

  api.addHook('onRequest', async (req, reply) => {
    // Fail closed: a route without a declared role (cannot happen past onRoute) needs admin.
    const need: RouteAccess = req.routeOptions.config.role ?? 'admin';
    if (need === 'public') return;
    const bearer = bearerOf(req);
    const cookie = bearer === undefined ? readCookie(req.headers.cookie, SESSION_COOKIE) : undefined;
    const token = bearer ?? cookie;
    const who = token === undefined ? null : access.authenticate(token);
    if (!who) {
      return refuse(reply, access, 401, {
        error: 'unauthorized',
        message:
          token === undefined
            ? 'not logged in: send Authorization: Bearer <token> (muster login) or the session cookie'
            : 'the token or session is unknown, revoked or expired: log in again',
      });
    }
    if (cookie !== undefined && !SAFE_METHODS.has(req.method) && !sameOrigin(req)) {
      return refuse(reply, access, 403, {
        error: 'csrf',
        message: 'a cookie-authenticated change must come from the same origin (Origin or Sec-Fetch-Site)',
      });
    }
    if (!roleAtLeast(who.role, need)) {
      return refuse(reply, access, 403, {
        error: 'forbidden',
        message: `your role ${who.role} cannot ${req.method} ${req.routeOptions.url ?? req.url} (needs ${need})`,
      });
    }
    req.principal = who;
  });
}
