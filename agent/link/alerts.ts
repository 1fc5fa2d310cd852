/**
 * Component alerts (docs/protocol.md "4a. Agent alert (向服务端报警)": `component_crashed`): tells
 * the manager of the latest query that a component crashed, or that a crash reported earlier is
 * over (the component was started or stopped again). Sent once, never retried: the manager also
 * sees FAILED in reports.
 */
import { API_VERSION } from '../../common/constants.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import type { AgentConfig } from '../config.js';
import type { ComponentRecord } from '../drivers/driver.js';
import type { ReportBuilder } from './answer.js';
import type { MulticastLink } from './multicast.js';

/** Sends component_crashed alerts through the link. */
export class ComponentAlerts {
  /** uuids whose crash was reported to the manager and not yet cleared. */
  private readonly crashed = new Set<string>();
  private readonly rl: RateLimitedLog;

  constructor(
    private readonly link: MulticastLink,
    private readonly builder: ReportBuilder,
    private readonly identity: AgentConfig['identity'],
    private readonly log: Logger,
  ) {
    this.rl = new RateLimitedLog(log);
  }

  /**
   * The supervisor's component event: `crashed` fires an alert, `cleared` resolves one fired
   * earlier (and is ignored otherwise). Never throws; the send runs in the background.
   */
  notify(event: 'crashed' | 'cleared', rec: Pick<ComponentRecord, 'uuid' | 'type' | 'id' | 'exitCode'>): void {
    if (event === 'cleared' && !this.crashed.has(rec.uuid)) return;
    if (event === 'crashed') this.crashed.add(rec.uuid);
    else this.crashed.delete(rec.uuid);
    const m = this.link.manager;
    if (!m) {
      this.log.warn({ uuid: rec.uuid, event }, 'no manager known yet (no query received): component alert not sent');
      return;
    }
    void (async () => {
      const hostIp = await this.builder.hostIpFor(m.ip).catch(() => '0.0.0.0');
      const id = this.identity;
      const body = JSON.stringify({
        api_version: API_VERSION,
        data: {
          host_ip: hostIp,
          box_id: id.box_id,
          slot_id: id.slot_id,
          cpu_id: id.cpu_id,
          name: 'component_crashed',
          state: event === 'crashed' ? 'firing' : 'resolved',
          severity: 'warning',
          instance: rec.uuid,
          message:
            event === 'crashed'
              ? `${rec.type} component ${rec.uuid}${rec.id ? ` (${rec.id})` : ''} exited on its own with code ${rec.exitCode ?? 'unknown'}`
              : `component ${rec.uuid} was started or stopped again`,
        },
      });
      const d = await this.link.sendAlert(m, body);
      if (!d.ok)
        this.rl.warn(
          'alert',
          { manager: `${m.ip}:${m.port}`, reason: d.reason, detail: d.detail },
          'component alert not delivered',
        );
    })();
  }
}
