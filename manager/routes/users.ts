/**
 * Users (docs/operations.md "Users and access"), under the API prefix; admin only, except that a
 * user may change their own password:
 *
 *   GET    /users → `{ users }`
 *   POST   /users `{ username, password, role }` → 201 `{ user }`; 409 when the name is taken
 *   PUT    /users/:name/password `{ password }` → 204 (their sessions end)
 *   PUT    /users/:name/role `{ role }` → `{ user }`; 409 when it would leave no admin
 *   DELETE /users/:name → 204 (with their sessions and tokens); 409 for the last admin
 *
 * Each change is recorded in the history (kind operation, node null), never the password.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import {
  PasswordBodySchema,
  roleAtLeast,
  UserCreateBodySchema,
  UserListReplySchema,
  UserParamsSchema,
  UserReplySchema,
  UserRoleBodySchema,
} from '../../common/api/auth.js';
import { type Access, AccessError } from '../auth/access.js';
import type { Store } from '../store/store.js';
import { type ApiError, ERROR_RESPONSES, whoOf } from './shared.js';

/** What the user routes use. */
export interface UserRoutesOptions {
  access: Access;
  store: Pick<Store, 'addHistory'>;
}

/** Answers an AccessError as its status and body; rethrows anything else. */
export function sendAccessError(reply: FastifyReply, err: unknown): FastifyReply {
  if (!(err instanceof AccessError)) throw err;
  return reply
    .code(err.status)
    .send({ error: err.code, ...(err.field ? { field: err.field } : {}), message: err.message } satisfies ApiError);
}

/** Registers the user routes. */
export const userRoutes: FastifyPluginAsyncTypebox<UserRoutesOptions> = async (app, { access, store }) => {
  const record = (who: string, operation: string, args: Record<string, unknown>, message: string) =>
    store.addHistory({ at: Date.now(), node: null, kind: 'operation', operation, args, result: 0, message, who });

  app.get(
    '/users',
    { config: { role: 'admin' }, schema: { response: { 200: UserListReplySchema, ...ERROR_RESPONSES } } },
    async () => ({ users: access.listUsers() }),
  );

  app.post(
    '/users',
    {
      config: { role: 'admin' },
      schema: { body: UserCreateBodySchema, response: { 201: UserReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      try {
        const user = await access.addUser(req.body.username, req.body.password, req.body.role);
        record(whoOf(req), 'user_add', { user: user.name, role: user.role }, `user ${user.name} added (${user.role})`);
        return reply.code(201).send({ user });
      } catch (err) {
        return sendAccessError(reply, err);
      }
    },
  );

  app.put(
    '/users/:name/password',
    {
      config: { role: 'viewer' },
      schema: {
        params: UserParamsSchema,
        body: PasswordBodySchema,
        response: { 204: Type.Null(), ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const p = req.principal;
      const name = req.params.name;
      if (!p || (p.user !== name && !roleAtLeast(p.role, 'admin'))) {
        return reply.code(403).send({
          error: 'forbidden',
          message: `your role ${p?.role ?? 'none'} cannot set another user's password (needs admin)`,
        });
      }
      try {
        await access.setPassword(name, req.body.password);
        record(whoOf(req), 'user_passwd', { user: name }, `password of ${name} changed`);
        return reply.code(204).send(null);
      } catch (err) {
        return sendAccessError(reply, err);
      }
    },
  );

  app.put(
    '/users/:name/role',
    {
      config: { role: 'admin' },
      schema: {
        params: UserParamsSchema,
        body: UserRoleBodySchema,
        response: { 200: UserReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      try {
        const user = access.setRole(req.params.name, req.body.role);
        record(
          whoOf(req),
          'user_role',
          { user: user.name, role: user.role },
          `role of ${user.name} set to ${user.role}`,
        );
        return { user };
      } catch (err) {
        return sendAccessError(reply, err);
      }
    },
  );

  app.delete(
    '/users/:name',
    {
      config: { role: 'admin' },
      schema: { params: UserParamsSchema, response: { 204: Type.Null(), ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      try {
        access.removeUser(req.params.name);
        record(whoOf(req), 'user_rm', { user: req.params.name }, `user ${req.params.name} removed`);
        return reply.code(204).send(null);
      } catch (err) {
        return sendAccessError(reply, err);
      }
    },
  );
};
