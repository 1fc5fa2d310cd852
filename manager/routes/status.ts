/**
 * The manager's own state (docs/operations.md "REST API"), under the API prefix:
 *
 *   GET /status → version, uptime, round, advertised manager_ip/manager_port, node counts by
 *                 state, open alerts by severity, the database file, the telemetry status
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { StatusReplySchema } from '../../common/api/status.js';
import { VERSION } from '../../common/version.js';
import type { AlertEngine } from '../alerts/engine.js';
import type { NodeRegistry } from '../registry.js';
import type { Telemetry } from '../telemetry/index.js';
import { ERROR_RESPONSES } from './shared.js';

/** What the status route uses. */
export interface StatusRoutesOptions {
  registry: Pick<NodeRegistry, 'round' | 'countByState'>;
  alerts: Pick<AlertEngine, 'countOpen'>;
  telemetry: Pick<Telemetry, 'status'>;
  /** The SQLite database file. */
  database: string;
  /** manager_ip and manager_port written into queries. */
  managerIp: string;
  managerPort: number;
}

/** Registers GET /status. */
export const statusRoutes: FastifyPluginAsyncTypebox<StatusRoutesOptions> = async (app, o) => {
  app.get(
    '/status',
    { config: { role: 'viewer' }, schema: { response: { 200: StatusReplySchema, ...ERROR_RESPONSES } } },
    async () => ({
      version: VERSION,
      uptime_s: Math.round(process.uptime()),
      round: o.registry.round,
      manager_ip: o.managerIp,
      manager_port: o.managerPort,
      nodes: o.registry.countByState(),
      alerts_open: o.alerts.countOpen(),
      database: o.database,
      telemetry: o.telemetry.status(),
    }),
  );
};
