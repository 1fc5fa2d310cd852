/**
 * Assembles the two reports of seed 003 from the latest samples. Pure functions: no I/O, so a
 * report costs microseconds and never waits on a collector.
 */
import { API_VERSION } from '../common/constants.js';
import type {
  CpuResource,
  DiskResource,
  GpuResource,
  HeartbeatBody,
  MemoryResource,
  NetworkResource,
  ResourceBody,
} from '../common/protocol.js';
import type { AgentConfig } from './config.js';
import type { WorkloadSnapshot } from './workloads.js';

/** Detected identity of the board. */
export interface DetectedIdentity {
  cpu_type: string;
  os_type: string;
  cpu_arch: string;
}

/**
 * Builds a `/heartbeat` body (seed 003 "agent心跳信息上报").
 * @param identity the config's identity section (box/slot/cpu/srio ids and types)
 * @param detected cpu_type / os_type / cpu_arch as detected (config overrides win)
 * @param gpus the latest GPU sample; the heartbeat names each GPU by index and name
 */
export function buildHeartbeat(
  identity: AgentConfig['identity'],
  servicePort: number,
  hostIp: string,
  hostname: string,
  detected: DetectedIdentity,
  gpus: readonly GpuResource[],
): HeartbeatBody {
  return {
    api_version: API_VERSION,
    data: {
      box_id: identity.box_id,
      slot_id: identity.slot_id,
      cpu_id: identity.cpu_id,
      srio_id: identity.srio_id,
      host_ip: hostIp,
      hostname,
      service_port: servicePort,
      box_type: identity.box_type,
      board_type: identity.board_type,
      cpu_type: identity.cpu_type || detected.cpu_type,
      os_type: identity.os_type || detected.os_type,
      resource_type: identity.resource_type,
      cpu_arch: detected.cpu_arch,
      gpu: gpus.map((g) => ({ index: g.index, name: g.name })),
    },
  };
}

/** The samples a resource report is made of. */
export interface ResourceParts {
  cpu: { usage_percent: number; core_count: number };
  load: { load_avg_1m: number; load_avg_5m: number; load_avg_15m: number };
  sensors: Pick<CpuResource, 'temperature' | 'voltage' | 'current' | 'power'>;
  memory: MemoryResource;
  network: NetworkResource[];
  disk: DiskResource[];
  gpu: GpuResource[];
  work: WorkloadSnapshot;
}

/** Builds a `/resource` body (seed 003 "agent资源信息上报") from the latest samples. */
export function buildResource(hostIp: string, p: ResourceParts): ResourceBody {
  return {
    api_version: API_VERSION,
    data: {
      host_ip: hostIp,
      resource: {
        cpu: {
          usage_percent: p.cpu.usage_percent,
          load_avg_1m: p.load.load_avg_1m,
          load_avg_5m: p.load.load_avg_5m,
          load_avg_15m: p.load.load_avg_15m,
          core_count: p.cpu.core_count,
          core_allocated: p.work.coreAllocated,
          temperature: p.sensors.temperature,
          voltage: p.sensors.voltage,
          current: p.sensors.current,
          power: p.sensors.power,
        },
        memory: p.memory,
        network: p.network,
        disk: p.disk,
        gpu: p.gpu,
      },
      component: p.work.components,
    },
  };
}
