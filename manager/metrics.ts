/**
 * The manager's Prometheus registry (GET /metrics, docs/operations.md "Prometheus metrics"): one
 * per daemon, with prom-client's default process and Node.js metrics. Each module declares its own
 * metrics in it, next to what they measure: reports in manager/ingest.ts, queries in
 * manager/rounds.ts, nodes and transitions in manager/registry.ts, alerts in
 * manager/alerts/engine.ts, the store in manager/store/, InfluxDB writes in manager/telemetry/.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

/** Creates the daemon's registry, with the default metrics. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
