/**
 * Login and logout (docs/operations.md "Users and access"), under the API prefix:
 *
 *   POST /login `{ username, password }` → `{ token, expires_at, user, role }` and the session
 *        cookie (HttpOnly, SameSite=Strict, Secure over HTTPS); 401 for a wrong user or password
 *        (the same answer and time for both), 429 with Retry-After while locked out, 413 for a
 *        body over 1 KiB. The only public API route.
 *   POST /logout → 204: ends the session used (the cookie is cleared)
 *   GET  /whoami → `{ user, role, via, token? }`
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { LOGIN_BODY_LIMIT, LoginBodySchema, LoginReplySchema, WhoAmIReplySchema } from '../../common/api/auth.js';
import type { Access } from '../auth/access.js';
import { sessionCookie } from '../auth/guard.js';
import { ERROR_RESPONSES } from './shared.js';

/** What the login routes use. */
export interface AuthRoutesOptions {
  access: Access;
}

/** Registers POST /login, POST /logout and GET /whoami. */
export const authRoutes: FastifyPluginAsyncTypebox<AuthRoutesOptions> = async (app, { access }) => {
  // A login body that is too large or malformed is counted before the error handler answers it.
  app.addHook('onError', async (req, _reply, err) => {
    if (req.routeOptions.url !== '/api/v1/login' && !req.routeOptions.url?.endsWith('/login')) return;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') access.metrics.loginFailures.inc({ reason: 'too_large' });
    else if ((err as { validation?: unknown }).validation || err.statusCode === 400)
      access.metrics.loginFailures.inc({ reason: 'bad_body' });
  });

  app.post(
    '/login',
    {
      config: { role: 'public' },
      bodyLimit: LOGIN_BODY_LIMIT,
      schema: { body: LoginBodySchema, response: { 200: LoginReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const r = await access.login(req.body.username, req.body.password, req.ip);
      if (!r.ok) {
        if (r.reason === 'locked') {
          const s = Math.ceil(r.retryAfterMs / 1000);
          return reply
            .code(429)
            .header('retry-after', String(s))
            .send({ error: 'locked', message: `too many failed logins: try again in ${s} s` });
        }
        return reply.code(401).send({ error: 'unauthorized', message: 'wrong user name or password' });
      }
      const maxAge = Math.max(1, Math.floor((r.expiresAt - Date.now()) / 1000));
      void reply.header('set-cookie', sessionCookie(r.token, maxAge, req.protocol === 'https'));
      return { token: r.token, expires_at: new Date(r.expiresAt).toISOString(), user: r.user, role: r.role };
    },
  );

  app.post(
    '/logout',
    { config: { role: 'viewer' }, schema: { response: { 204: Type.Null(), ...ERROR_RESPONSES } } },
    async (req, reply) => {
      if (req.principal) access.logout(req.principal);
      void reply.header('set-cookie', sessionCookie('', 0, req.protocol === 'https'));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/whoami',
    { config: { role: 'viewer' }, schema: { response: { 200: WhoAmIReplySchema, ...ERROR_RESPONSES } } },
    async (req) => {
      const p = req.principal;
      if (!p) throw new Error('no principal past the access check');
      return { user: p.user, role: p.role, via: p.via, ...(p.token ? { token: p.token } : {}) };
    },
  );
};
