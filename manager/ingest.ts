/**
 * The ingest of the agents' reports (docs/protocol.md "2. Heartbeat", "3. Resource report",
 * "4. The manager's answers to reports"): a validated report goes to the node registry, the store
 * (last seen), the components and alerts (resource reports of the board a node shows), and the
 * telemetry queue; refused reports are counted and logged at a rate limit. The report metrics
 * (docs/operations.md "Prometheus metrics") are declared here.
 */
import os from 'node:os';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Answer } from '../common/api/query.js';
import type { ReportUrl } from '../common/constants.js';
import { type Logger, RateLimitedLog } from '../common/log.js';
import type { HeartbeatData, ResourceData } from '../common/protocol.js';
import type { FieldError } from '../common/validate.js';
import type { AlertEngine } from './alerts/engine.js';
import type { ComponentTracker } from './components.js';
import type { ManagerConfig } from './config.js';
import { nodeTags } from './records.js';
import type { NodeRegistry } from './registry.js';
import type { RefusalReason } from './routes/shared.js';
import type { Store } from './store/store.js';
import type { Telemetry } from './telemetry/index.js';

/** A report stored: its url, node (null for a resource report no heartbeat has named) and sender. */
export type ReportWatcher = (url: ReportUrl, a: Omit<Answer, 'ms'>) => void;

/** The report metrics, in the daemon's registry. */
function ingestMetrics(registry: Registry) {
  const registers = [registry];
  return {
    ingested: new Counter({
      name: 'muster_manager_reports_ingested_total',
      help: 'Reports accepted and stored, by url',
      labelNames: ['url'],
      registers,
    }),
    rejected: new Counter({
      name: 'muster_manager_reports_rejected_total',
      help: 'Reports refused, by url and reason',
      labelNames: ['url', 'reason'],
      registers,
    }),
    sourceMismatch: new Counter({
      name: 'muster_manager_reports_source_mismatch_total',
      help: 'Reports whose host_ip is not the address they came from, by url (refused unless reports.require_source_match is false)',
      labelNames: ['url'],
      registers,
    }),
    nodesRefused: new Counter({
      name: 'muster_manager_nodes_refused_total',
      help: 'Heartbeats for a new position refused (503) because the registry holds registry.max_nodes nodes',
      registers,
    }),
    unmatched: new Counter({
      name: 'muster_manager_resource_unmatched_total',
      help: 'Resource reports from an address no heartbeat has named yet',
      registers,
    }),
    seconds: new Histogram({
      name: 'muster_manager_ingest_seconds',
      help: 'Time from a report body parsed to stored',
      labelNames: ['url'],
      buckets: [0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
      registers,
    }),
  };
}

/** A TCP peer address as a dotted IPv4: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is unwrapped. */
export function peerIPv4(remote: string | undefined): string {
  if (!remote) return '';
  return remote.toLowerCase().startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1';

/** The IPv4 addresses of this machine's interfaces. */
function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const addrs of Object.values(os.networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === 'IPv4') out.add(a.address);
  return out;
}

/**
 * Whether a report naming `hostIp` may come from TCP peer `peer` (docs/protocol.md "4. The
 * manager's answers to reports", report source check): the same address, or, for a process on
 * the manager's own machine (a loopback peer), a loopback `host_ip` or one of this machine's
 * addresses (an agent reporting its LAN address to a manager on the same host).
 * @param peer the peer address, IPv4-mapped IPv6 allowed
 * @param locals this machine's IPv4 addresses; read from the interfaces when absent
 */
export function sourceMatches(peer: string | undefined, hostIp: string, locals?: ReadonlySet<string>): boolean {
  const p = peerIPv4(peer);
  if (p === hostIp) return true;
  if (!isLoopback(p)) return false;
  return hostIp.startsWith('127.') || (locals ?? localAddresses()).has(hostIp);
}

/** What the ingest writes to. */
export interface IngestDeps {
  registry: NodeRegistry;
  store: Pick<Store, 'touchNode'>;
  components: Pick<ComponentTracker, 'observe'>;
  alerts: Pick<AlertEngine, 'evaluate'>;
  telemetry: Pick<Telemetry, 'heartbeat' | 'resource'>;
  log: Logger;
  /** The daemon's Prometheus registry. */
  metrics: Registry;
  /** The `reports` section of the config; absent = no source check (tests that inject bodies). */
  reports?: ManagerConfig['reports'];
}

/** Takes validated reports in; called by the report routes (manager/routes/reports.ts). */
export class Ingest {
  private readonly m: ReturnType<typeof ingestMetrics>;
  private readonly rl: RateLimitedLog;
  private readonly watchers = new Set<ReportWatcher>();
  /** The per-url children of the counter and histogram every stored report updates (no label lookup per report). */
  private readonly per: Record<ReportUrl, { ingested: Counter.Internal; seconds: Histogram.Internal<'url'> }>;

  constructor(private readonly d: IngestDeps) {
    this.m = ingestMetrics(d.metrics);
    this.rl = new RateLimitedLog(d.log);
    const child = (url: ReportUrl) => ({ ingested: this.m.ingested.labels(url), seconds: this.m.seconds.labels(url) });
    this.per = { '/heartbeat': child('/heartbeat'), '/resource': child('/resource') };
  }

  /** Calls `w` for every report stored from now on; returns the function that stops it. */
  watch(w: ReportWatcher): () => void {
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  /**
   * The report source check (docs/protocol.md "4. The manager's answers to reports"): a report
   * whose `host_ip` is not its sender's address is counted, logged at a rate limit and, with
   * `reports.require_source_match`, refused (counted as `source_mismatch` too).
   * @param peer the TCP peer address (`req.socket.remoteAddress`)
   * @returns the 400 to answer, or null when the report may be stored
   */
  checkSource(url: ReportUrl, hostIp: string, peer: string | undefined): FieldError | null {
    const cfg = this.d.reports;
    if (!cfg || sourceMatches(peer, hostIp)) return null;
    const from = peerIPv4(peer);
    this.m.sourceMismatch.inc({ url });
    const refuse = cfg.require_source_match;
    this.rl.warn(
      `source:${url}:${refuse}`,
      { from, url, host_ip: hostIp },
      refuse ? 'refused a report whose host_ip is not its sender' : "a report's host_ip is not its sender (accepted)",
    );
    if (!refuse) return null;
    this.m.rejected.inc({ url, reason: 'source_mismatch' });
    return {
      field: '/data/host_ip',
      message: `/data/host_ip ${hostIp} is not the address the report came from (${from})`,
    };
  }

  /**
   * Stores a validated heartbeat (POST /heartbeat).
   * @returns null when stored, or the 503 `registry_full` to answer when it names a new position
   *   beyond registry.max_nodes (counted in muster_manager_nodes_refused_total, logged at a rate limit)
   */
  heartbeat(h: HeartbeatData): FieldError | null {
    const t0 = performance.now();
    const { registry, store, telemetry } = this.d;
    const node = registry.ingestHeartbeat(h);
    if (node === null) {
      this.m.nodesRefused.inc();
      this.m.rejected.inc({ url: '/heartbeat', reason: 'registry_full' });
      this.rl.warn(
        'registry-full',
        { host_ip: h.host_ip, max_nodes: registry.maxNodes },
        'refused a heartbeat for a new position: the registry is full (registry.max_nodes)',
      );
      return {
        field: '/data',
        message: `the manager already holds ${registry.maxNodes} nodes (registry.max_nodes); position ${h.box_id}-${h.slot_id}-${h.cpu_id} refused`,
      };
    }
    store.touchNode(node);
    telemetry.heartbeat(
      { node, box: h.box_id, slot: h.slot_id, cpu: h.cpu_id, hostname: h.hostname, host_ip: h.host_ip },
      h,
      Date.now(),
    );
    const m = this.per['/heartbeat'];
    m.ingested.inc();
    m.seconds.observe((performance.now() - t0) / 1000);
    for (const w of this.watchers) w('/heartbeat', { node, host_ip: h.host_ip });
    return null;
  }

  /**
   * Stores a validated resource report (POST /resource).
   * @param text the body's JSON text whose `data` parsed to `r` (the lean report path): the
   *   registry then keeps the text, not `r` (manager/registry.ts Board)
   */
  resource(r: ResourceData, text?: string): void {
    const t0 = performance.now();
    const { registry, components, alerts, telemetry } = this.d;
    const b = registry.reportResource(r, text);
    const node = b === null ? null : b.node;
    if (b === null) this.m.unmatched.inc();
    else {
      const n = registry.nodes.get(b.node);
      // Alerts and components follow the board a node shows; a conflicting claimant's reports do not count.
      if (n && n.primary === r.host_ip) {
        const at = Date.now();
        components.observe(b.node, r.component, at);
        alerts.evaluate(b.node, r, at);
        const tags = nodeTags(registry, n, b);
        if (tags) telemetry.resource(tags, r, at);
      }
    }
    const m = this.per['/resource'];
    m.ingested.inc();
    m.seconds.observe((performance.now() - t0) / 1000);
    for (const w of this.watchers) w('/resource', { node, host_ip: r.host_ip });
  }

  /**
   * A report refused by the server (docs/protocol.md "4. The manager's answers to reports"):
   * counted by `reason` (undefined: not counted) and logged at a rate limit.
   */
  refused(from: string, url: ReportUrl, reason: RefusalReason | undefined, why: string): void {
    if (reason) this.m.rejected.inc({ url, reason });
    this.rl.warn(`reject:${from}:${url}`, { from, url, why }, 'refused a report');
  }
}
