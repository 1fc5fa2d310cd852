/**
 * Answering a query: the serialized body a report url asks for (docs/protocol.md "1. Query":
 * `url` is `/heartbeat` or `/resource`), with `host_ip` the address of the interface that routes
 * to the manager (docs/configuration.md `report.host_ip`). Transport-free: the multicast link
 * POSTs these bodies today, the WebSocket node link will send the same bodies.
 */
import os from 'node:os';
import type { ReportUrl } from '../../common/constants.js';
import { routeSourceAddress } from '../../common/net.js';
import { Histogram, type Registry } from '../prom.js';
import type { ReportAssembler } from './report.js';

/** How long a detected host_ip is reused for one manager address, ms. */
const HOST_IP_TTL_MS = 30_000;
/** Most manager addresses whose host_ip is remembered (least recently detected forgotten first). */
const HOST_IP_CACHE_MAX = 256;

/** Builds report bodies on demand. */
export class ReportBuilder {
  private readonly hostIps = new Map<string, { ip: string; at: number }>();
  private readonly buildSeconds: Histogram<'url'>;

  /**
   * @param hostIpOverride `report.host_ip`; "" = detect per manager (cached 30 s, at most 256 managers)
   * @param registry the daemon's metrics registry (muster_agent_report_build_seconds)
   */
  constructor(
    private readonly assembler: ReportAssembler,
    private readonly hostIpOverride: string,
    registry: Registry,
  ) {
    this.buildSeconds = new Histogram({
      name: 'muster_agent_report_build_seconds',
      help: 'Time to assemble a report from the latest samples',
      labelNames: ['url'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
      registers: [registry],
    });
  }

  /**
   * The `host_ip` to report to `managerIp`.
   * @throws Error when no route to `managerIp` exists (and no override is configured)
   */
  async hostIpFor(managerIp: string): Promise<string> {
    if (this.hostIpOverride) return this.hostIpOverride;
    const cached = this.hostIps.get(managerIp);
    if (cached && Date.now() - cached.at < HOST_IP_TTL_MS) return cached.ip;
    const ip = await routeSourceAddress(managerIp);
    this.hostIps.delete(managerIp);
    this.hostIps.set(managerIp, { ip, at: Date.now() });
    // Bounded: queries naming ever new addresses cannot grow it (issue 12, per-address caches).
    while (this.hostIps.size > HOST_IP_CACHE_MAX) this.hostIps.delete(this.hostIps.keys().next().value as string);
    return ip;
  }

  /**
   * The JSON body of report `url` for the manager at `managerIp`, from the latest samples.
   * @throws Error when host_ip cannot be determined
   */
  async build(url: ReportUrl, managerIp: string): Promise<string> {
    const hostIp = await this.hostIpFor(managerIp);
    const started = performance.now();
    const body = url === '/heartbeat' ? this.assembler.heartbeat(hostIp) : this.assembler.resource(hostIp);
    const text = JSON.stringify(body);
    this.buildSeconds.observe({ url }, (performance.now() - started) / 1000);
    return text;
  }
}

/** The host name reported in heartbeats. */
export const hostname = (): string => os.hostname();
