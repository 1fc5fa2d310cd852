/**
 * `muster relay` (docs/links.md "The SSH relay"): the relay daemon — the SSH pool, the link to the
 * manager, and a `/metrics` listener (Prometheus text; `metrics.port` 0 = none). systemd runs it
 * with systemd/muster-relay.service.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../../common/log.js';
import { collectDefaultMetrics, Registry } from '../prom.js';
import { type RelayConfig, relayApiKey } from './config.js';
import { RelayLink } from './link.js';
import { SshPool } from './pool.js';

/** The relay daemon. */
export class RelayDaemon {
  readonly metrics = new Registry();
  readonly pool: SshPool;
  readonly link: RelayLink;
  private http: Server | null = null;

  /** @throws ConfigError (agent/relay/config.ts) when no usable apiKey can be read */
  constructor(
    private readonly cfg: RelayConfig,
    private readonly log: Logger,
  ) {
    collectDefaultMetrics({ register: this.metrics, prefix: 'muster_relay_process_' });
    this.pool = new SshPool(cfg.ssh, log, this.metrics);
    this.link = new RelayLink(cfg, relayApiKey(cfg), this.pool, this.metrics, log);
  }

  async start(): Promise<void> {
    if (this.cfg.metrics.port !== 0) {
      const http = createServer((req, res) => {
        if (req.method !== 'GET' || req.url !== '/metrics') {
          res.writeHead(404).end();
          return;
        }
        void this.metrics.metrics().then((text) => {
          res.writeHead(200, { 'content-type': this.metrics.contentType }).end(text);
        });
      });
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(this.cfg.metrics.port, this.cfg.metrics.host, () => resolve());
      });
      this.http = http;
    }
    this.link.start();
    this.log.info(
      {
        relay: this.cfg.id,
        metrics: this.cfg.metrics.port ? `${this.cfg.metrics.host}:${this.cfg.metrics.port}` : null,
      },
      'relay started',
    );
  }

  async stop(): Promise<void> {
    this.link.stop();
    this.pool.stop();
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
  }
}
