/**
 * The REST API (docs/operations.md "REST API"): one encapsulated plugin context, registered under
 * the `/api/v1` prefix, that registers one plugin per resource group, each with only the
 * dependencies it uses. A hook added to this context (e.g. an `onRequest` access check) covers
 * every API route and none of the wire-protocol or operations routes, which are registered beside
 * it (manager/server.ts).
 *
 * Adding a route group: its request and response schemas in common/api/<group>.ts, a plugin in
 * manager/routes/<group>.ts taking its dependencies as options, one `register` line below, and a
 * tests/unit/routes-<group>.test.ts that builds the plugin with small real dependencies.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type AlertRoutesOptions, alertRoutes } from './alerts.js';
import { type DeployRoutesOptions, deployRoutes } from './deploy.js';
import { type HistoryRoutesOptions, historyRoutes } from './history.js';
import { type NodeRoutesOptions, nodeRoutes } from './nodes.js';
import { type QueryRoutesOptions, queryRoutes } from './query.js';
import { type StatusRoutesOptions, statusRoutes } from './status.js';
import { type TelemetryRoutesOptions, telemetryRoutes } from './telemetry.js';

/** Every dependency of the API's route groups. */
export type ApiOptions = NodeRoutesOptions &
  StatusRoutesOptions &
  QueryRoutesOptions &
  DeployRoutesOptions &
  AlertRoutesOptions &
  HistoryRoutesOptions &
  TelemetryRoutesOptions;

/** The `/api/v1` context: registers the route groups. */
export const apiRoutes: FastifyPluginAsyncTypebox<ApiOptions> = async (api, o) => {
  await api.register(nodeRoutes, { registry: o.registry });
  await api.register(statusRoutes, {
    registry: o.registry,
    alerts: o.alerts,
    telemetry: o.telemetry,
    database: o.database,
    managerIp: o.managerIp,
    managerPort: o.managerPort,
  });
  await api.register(queryRoutes, { rounds: o.rounds });
  await api.register(deployRoutes, { deployer: o.deployer, registry: o.registry });
  await api.register(alertRoutes, { alerts: o.alerts, store: o.store });
  await api.register(historyRoutes, { store: o.store });
  await api.register(telemetryRoutes, { telemetry: o.telemetry, registry: o.registry });
};
