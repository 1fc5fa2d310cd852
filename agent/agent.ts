/**
 * The agent daemon (`muster agent`, docs/operations.md "systemd units"): answers multicast
 * queries with reports (docs/protocol.md "1. Query" to "3. Resource report") and serves the
 * command port (GET /healthz, GET /metrics, POST /deploy and GET /deploy/:uuid, docs/protocol.md
 * "5. Load command"). The object graph is built by agent/app.ts; this is the entry the CLI runs.
 */

import type { Logger } from '../common/log.js';
import { type AgentApp, type AgentOptions, buildAgent } from './app.js';
import type { AgentConfig } from './config.js';
import type { Supervisor } from './deploy/supervisor.js';
import type { Registry } from './prom.js';

export type { AgentOptions } from './app.js';

/** A running agent: sampler, multicast link and command service (see agent/app.ts). */
export class AgentDaemon {
  private readonly app: AgentApp;

  constructor(cfg: AgentConfig, log: Logger, opts: AgentOptions = {}) {
    this.app = buildAgent(cfg, log, opts);
  }

  /** The daemon's metrics registry. */
  get registry(): Registry {
    return this.app.metrics;
  }

  /** Runs the workloads of POST /deploy. */
  get supervisor(): Supervisor {
    return this.app.supervisor;
  }

  /** The node id this agent claims: `box-slot-cpu`. */
  get nodeId(): string {
    return this.app.nodeId;
  }

  /** Takes first samples, opens the command port, then joins the multicast group. */
  start(): Promise<void> {
    return this.app.start();
  }

  /** Stops answering, closes the port and connections. Workloads are left running. */
  stop(): Promise<void> {
    return this.app.stop();
  }
}
