/**
 * Business instances (docs/scheduling.md "Instances", docs/operations.md "REST API"), under the
 * API prefix; the contract is common/api/instances.ts:
 *
 *   PUT    /instances/:id          apply a spec (operator) → `{ instance, plan }`
 *   POST   /instances/:id/plan     what apply would do (operator) → `{ plan }`
 *   GET    /instances              (viewer) → `{ instances }`
 *   GET    /instances/:id          (viewer) → `{ instance }`
 *   GET    /instances/:id/history  (viewer) → `{ events, next }`, newest first
 *   POST   /instances/:id/stop     (operator) → `{ instance }`
 *   DELETE /instances/:id          (operator) → 202 `{ instance }`
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  InstanceApplyReplySchema,
  InstanceHistoryQuerySchema,
  InstanceHistoryReplySchema,
  InstanceListReplySchema,
  InstanceParamsSchema,
  InstancePlanReplySchema,
  InstanceReplySchema,
  InstanceSpecSchema,
} from '../../common/api/instances.js';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../../common/api/paging.js';
import type { InstanceController } from '../instances/controller.js';
import { badRequest, ERROR_RESPONSES, notFound, whoOf } from './shared.js';

/** What the instance routes use. */
export interface InstanceRoutesOptions {
  instances: Pick<
    InstanceController,
    'apply' | 'plan' | 'list' | 'get' | 'has' | 'history' | 'stopInstance' | 'remove'
  >;
}

/** Registers the instance routes. */
export const instanceRoutes: FastifyPluginAsyncTypebox<InstanceRoutesOptions> = async (app, { instances }) => {
  app.put(
    '/instances/:id',
    {
      config: { role: 'operator' },
      schema: {
        params: InstanceParamsSchema,
        body: InstanceSpecSchema,
        response: { 200: InstanceApplyReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req) => {
      return instances.apply(req.params.id, req.body, whoOf(req));
    },
  );

  app.post(
    '/instances/:id/plan',
    {
      config: { role: 'operator' },
      schema: {
        params: InstanceParamsSchema,
        body: InstanceSpecSchema,
        response: { 200: InstancePlanReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req) => {
      return { plan: instances.plan(req.params.id, req.body) };
    },
  );

  app.get(
    '/instances',
    { config: { role: 'viewer' }, schema: { response: { 200: InstanceListReplySchema, ...ERROR_RESPONSES } } },
    async () => ({ instances: instances.list() }),
  );

  app.get(
    '/instances/:id',
    {
      config: { role: 'viewer' },
      schema: { params: InstanceParamsSchema, response: { 200: InstanceReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const instance = instances.get(req.params.id);
      if (!instance) return reply.code(404).send(notFound(`no instance ${req.params.id}`));
      return { instance };
    },
  );

  app.get(
    '/instances/:id/history',
    {
      config: { role: 'viewer' },
      schema: {
        params: InstanceParamsSchema,
        querystring: InstanceHistoryQuerySchema,
        response: { 200: InstanceHistoryReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const limit = req.query.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(req.query.limit);
      if (limit < 1 || limit > MAX_PAGE_LIMIT)
        return reply.code(400).send(badRequest('limit', `limit ${req.query.limit}: must be 1..${MAX_PAGE_LIMIT}`));
      const page = instances.history(
        req.params.id,
        limit,
        req.query.before === undefined ? undefined : Number(req.query.before),
      );
      if (page.items.length === 0 && !instances.has(req.params.id) && req.query.before === undefined)
        return reply.code(404).send(notFound(`no instance ${req.params.id} and no history of one`));
      return { events: page.items, next: page.next };
    },
  );

  app.post(
    '/instances/:id/stop',
    {
      config: { role: 'operator' },
      schema: { params: InstanceParamsSchema, response: { 200: InstanceReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const instance = instances.stopInstance(req.params.id, whoOf(req));
      if (!instance) return reply.code(404).send(notFound(`no instance ${req.params.id}`));
      return { instance };
    },
  );

  app.delete(
    '/instances/:id',
    {
      config: { role: 'operator' },
      schema: { params: InstanceParamsSchema, response: { 202: InstanceReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const instance = instances.remove(req.params.id, whoOf(req));
      if (!instance) return reply.code(404).send(notFound(`no instance ${req.params.id}`));
      return reply.code(202).send({ instance });
    },
  );
};
