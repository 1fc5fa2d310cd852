/** The manager's Prometheus metrics (GET /metrics). */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Creates the manager's registry and metrics. */
export function managerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    nodes: new Gauge({
      name: 'muster_manager_nodes',
      help: 'Nodes by liveness state',
      labelNames: ['state'],
      registers: r,
    }),
    conflicts: new Gauge({
      name: 'muster_manager_identity_conflicts',
      help: 'Node ids claimed by more than one board',
      registers: r,
    }),
    ingested: new Counter({
      name: 'muster_manager_reports_ingested_total',
      help: 'Reports accepted and stored, by url',
      labelNames: ['url'],
      registers: r,
    }),
    rejected: new Counter({
      name: 'muster_manager_reports_rejected_total',
      help: 'Reports refused, by url and reason',
      labelNames: ['url', 'reason'],
      registers: r,
    }),
    unmatched: new Counter({
      name: 'muster_manager_resource_unmatched_total',
      help: 'Resource reports from an address no heartbeat has named yet',
      registers: r,
    }),
    ingest: new Histogram({
      name: 'muster_manager_ingest_seconds',
      help: 'Time from a report body parsed to stored',
      labelNames: ['url'],
      buckets: [0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
      registers: r,
    }),
    queries: new Counter({
      name: 'muster_manager_queries_sent_total',
      help: 'Multicast queries sent, by url',
      labelNames: ['url'],
      registers: r,
    }),
    queryErrors: new Counter({
      name: 'muster_manager_query_errors_total',
      help: 'Multicast queries that could not be sent, by url',
      labelNames: ['url'],
      registers: r,
    }),
    transitions: new Counter({
      name: 'muster_manager_transitions_total',
      help: 'Liveness transitions, by target state',
      labelNames: ['to'],
      registers: r,
    }),
    alertsOpen: new Gauge({
      name: 'muster_manager_alerts_open',
      help: 'Open alerts, by severity',
      labelNames: ['severity'],
      registers: r,
    }),
    alertsRaised: new Counter({
      name: 'muster_manager_alerts_raised_total',
      help: 'Alerts opened, by kind',
      labelNames: ['kind'],
      registers: r,
    }),
  };
}
export type ManagerMetrics = ReturnType<typeof managerMetrics>;
