/**
 * The REST API (docs/operations.md "REST API"): one encapsulated plugin context, registered under
 * the `/api/v1` prefix, that registers one plugin per resource group, each with only the
 * dependencies it uses. A hook added to this context (e.g. an `onRequest` access check) covers
 * every API route and none of the wire-protocol or operations routes, which are registered beside
 * it (manager/server.ts). The access check is such a hook (docs/operations.md "Users and access").
 *
 * Adding a route group: its request and response schemas in common/api/<group>.ts, a plugin in
 * manager/routes/<group>.ts taking its dependencies as options, each route with `config: { role }`, one `register` line below, and a
 * tests/unit/routes-<group>.test.ts that builds the plugin with small real dependencies.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import type { AlertEngine } from '../alerts/engine.js';
import type { Access } from '../auth/access.js';
import { installAccessGuard } from '../auth/guard.js';
import { EVENTS_DEFAULTS, EventHub, type EventsConfig } from '../events.js';
import { type AlertRoutesOptions, alertRoutes } from './alerts.js';
import { authRoutes } from './auth.js';
import { type CommandRoutesOptions, commandRoutes } from './commands.js';
import { type DeployRoutesOptions, deployRoutes } from './deploy.js';
import { eventRoutes } from './events.js';
import { type FileRoutesOptions, fileRoutes } from './files.js';
import { type HistoryRoutesOptions, historyRoutes } from './history.js';
import { type InstanceRoutesOptions, instanceRoutes } from './instances.js';
import { type LinkRoutesOptions, linkRoutes } from './links.js';
import { type NodeRoutesOptions, nodeRoutes } from './nodes.js';
import { type QueryRoutesOptions, queryRoutes } from './query.js';
import { type RelayRoutesOptions, relayRoutes } from './relays.js';
import { screenRoutes } from './screen.js';
import { type StatusRoutesOptions, statusRoutes } from './status.js';
import { type TaskRoutesOptions, taskRoutes } from './tasks.js';
import { type TelemetryRoutesOptions, telemetryRoutes } from './telemetry.js';
import { tokenRoutes } from './tokens.js';
import { userRoutes } from './users.js';

/** Every dependency of the API's route groups. */
export type ApiOptions = NodeRoutesOptions &
  StatusRoutesOptions &
  QueryRoutesOptions &
  DeployRoutesOptions &
  AlertRoutesOptions &
  HistoryRoutesOptions &
  InstanceRoutesOptions &
  TelemetryRoutesOptions &
  TaskRoutesOptions &
  CommandRoutesOptions &
  LinkRoutesOptions &
  Omit<RelayRoutesOptions, 'alerts'> & {
    /** Files and screens (docs/files.md). */
    files: Omit<FileRoutesOptions, 'registry' | 'metrics'>;
    /** The daemon's metrics registry (the file and screen counters, the event hub's metrics). */
    metrics: Registry;
    /** Users, sessions and tokens: the access check of every route, login, users, tokens. */
    access: Access;
    /** dashboard.events: the live event stream GET /events (absent: the defaults). */
    events?: EventsConfig;
    /** The alert engine as the event hub reads it (open alerts). */
    alerts: Pick<AlertEngine, 'openAlerts' | 'resolve'>;
  };

/**
 * The `/api/v1` context: installs the access check (manager/auth/guard.ts: every route declares
 * `config: { role }`, and a request without credentials is refused before its body is read), then
 * registers the route groups.
 */
export const apiRoutes: FastifyPluginAsyncTypebox<ApiOptions> = async (api, o) => {
  installAccessGuard(api, o.access);
  await api.register(authRoutes, { access: o.access });
  await api.register(userRoutes, { access: o.access, store: o.store });
  await api.register(tokenRoutes, { access: o.access, store: o.store });
  await api.register(nodeRoutes, { registry: o.registry, alerts: o.alerts, store: o.store });
  await api.register(statusRoutes, {
    registry: o.registry,
    alerts: o.alerts,
    telemetry: o.telemetry,
    database: o.database,
    managerIp: o.managerIp,
    managerPort: o.managerPort,
  });
  await api.register(queryRoutes, { rounds: o.rounds });
  await api.register(deployRoutes, { deployer: o.deployer, placer: o.placer, registry: o.registry });
  await api.register(instanceRoutes, { instances: o.instances });
  await api.register(alertRoutes, { alerts: o.alerts, store: o.store });
  await api.register(historyRoutes, { store: o.store });
  await api.register(linkRoutes, { store: o.store });
  await api.register(relayRoutes, {
    store: o.store,
    relayHub: o.relayHub,
    secretBox: o.secretBox,
    relayConfig: o.relayConfig,
    alerts: o.alerts,
  });
  await api.register(telemetryRoutes, { telemetry: o.telemetry, registry: o.registry });
  await api.register(taskRoutes, { runner: o.runner, store: o.store, sse: o.sse });
  await api.register(commandRoutes, { catalog: o.catalog });
  const hub = new EventHub(o.registry, o.alerts, o.events ?? EVENTS_DEFAULTS, o.metrics);
  api.addHook('onClose', async () => hub.close());
  await api.register(eventRoutes, { events: hub });
  await api.register(fileRoutes, { ...o.files, registry: o.registry, metrics: o.metrics });
  await api.register(screenRoutes, {
    registry: o.registry,
    agents: o.files.agents,
    history: o.files.history,
    metrics: o.metrics,
  });
};
