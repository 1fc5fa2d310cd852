/**
 * Assembles the two reports (docs/protocol.md "2. Heartbeat", "3. Resource report") from the
 * latest samples: a skeleton with the board's configured identity, then each collector's part
 * (agent/collectors/collector.ts `heartbeat` / `resource`). Reads memory only, so a report costs
 * microseconds and never waits on a collector.
 */
import { API_VERSION } from '../../common/constants.js';
import type { HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import type { CollectorDef, HeartbeatData, ResourceData } from '../collectors/collector.js';
import type { AgentConfig } from '../config.js';
import type { Sample } from '../sampler.js';

/** Where the latest samples come from (the sampler). */
export interface SampleSource {
  latest<T>(def: CollectorDef<T>): Sample<T>;
}

/** The fixed part of a heartbeat: the board as configured, and where it serves. */
export interface BoardFacts {
  identity: AgentConfig['identity'];
  /** The command service port (`service.port`), reported as `service_port`. */
  servicePort: number;
  /** The host name, reported as `hostname`. */
  hostname: string;
  /** Config `labels`, sent as the heartbeat's `labels` extension when not empty (docs/protocol.md §2). */
  labels?: Readonly<Record<string, string>>;
}

/** Builds report bodies from the collectors' latest samples. */
export class ReportAssembler {
  constructor(
    private readonly defs: readonly CollectorDef<unknown>[],
    private readonly samples: SampleSource,
    private readonly board: BoardFacts,
  ) {}

  /** A `/heartbeat` body for `hostIp` (the address of the interface that routes to the manager). */
  heartbeat(hostIp: string): HeartbeatBody {
    const id = this.board.identity;
    const data: HeartbeatData = {
      box_id: id.box_id,
      slot_id: id.slot_id,
      cpu_id: id.cpu_id,
      srio_id: id.srio_id,
      host_ip: hostIp,
      hostname: this.board.hostname,
      service_port: this.board.servicePort,
      box_type: id.box_type,
      board_type: id.board_type,
      cpu_type: id.cpu_type || 'unknown',
      os_type: id.os_type || 'unknown',
      resource_type: id.resource_type,
      cpu_arch: 'unknown',
      gpu: [],
    };
    for (const def of this.defs) def.heartbeat?.(this.samples.latest(def).value, data);
    const labels = this.board.labels;
    // Extension (docs/protocol.md §2 "labels"): an object of strings a spec manager ignores.
    if (labels && Object.keys(labels).length > 0) (data as HeartbeatData & { labels?: unknown }).labels = { ...labels };
    return { api_version: API_VERSION, data };
  }

  /** A `/resource` body for `hostIp`. */
  resource(hostIp: string): ResourceBody {
    const data: ResourceData = {
      host_ip: hostIp,
      resource: {
        cpu: {
          usage_percent: 0,
          load_avg_1m: 0,
          load_avg_5m: 0,
          load_avg_15m: 0,
          core_count: 0,
          core_allocated: 0,
          temperature: null,
          voltage: null,
          current: null,
          power: null,
        },
        memory: { total: 0, used: 0, free: 0, usage_percent: 0 },
        network: [],
        disk: [],
        gpu: [],
      },
      component: [],
    };
    for (const def of this.defs) def.resource?.(this.samples.latest(def).value, data);
    return { api_version: API_VERSION, data };
  }
}
