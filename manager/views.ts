/**
 * The REST API's view of nodes (`/api/v1/nodes`), shared by the server and the CLI. Times are
 * ISO-8601 strings; figures keep the spec's units (%, °C, bytes).
 */
import type { Component, HeartbeatData, ResourceData } from '../common/protocol.js';
import type { NodeState, Transition } from './liveness.js';
import type { Board, NodeRecord, NodeRegistry } from './registry.js';

/** A board claiming a position, as shown in a conflict. */
export interface ClaimantView {
  host_ip: string;
  hostname: string | null;
  last_seen: string | null;
  missed_rounds: number;
}

/** One row of `muster nodes`: identity, liveness and headline figures. */
export interface NodeSummary {
  id: string;
  box_id: number;
  slot_id: number;
  cpu_id: number;
  state: NodeState;
  state_since: string;
  host_ip: string;
  hostname: string | null;
  /** Time of the latest heartbeat. */
  last_seen: string | null;
  missed_rounds: number;
  /** cpu usage, %. */
  cpu_percent: number | null;
  /** memory usage, %. */
  memory_percent: number | null;
  /** cpu temperature, °C. */
  temperature: number | null;
  gpu_count: number;
  component_count: number;
  resource_at: string | null;
  /** Set when more than one board claims this position: every claimant, the shown one first. */
  conflict: ClaimantView[] | null;
}

/**
 * What a node has left for workloads, from its latest resource report (null before the first).
 * GPUs: a spec report says which GPUs exist but not which ones running components hold, so the
 * manager cannot know how many are free; `gpus` is null and `gpus_total` is the count present.
 * The agent's own admission is what decides a start (it refuses one that does not fit).
 */
export interface FreeResources {
  /** core_count - core_allocated. */
  cores: number;
  /** memory.free of the report (available memory), bytes. */
  memory_bytes: number;
  /** Free GPUs: unknown to the manager (not in the spec report), always null. */
  gpus: null;
  /** GPUs present on the board. */
  gpus_total: number;
}

/** `muster node <id>`: the summary plus everything last reported and the recent transitions. */
export interface NodeDetail extends NodeSummary {
  heartbeat: HeartbeatData | null;
  resource: ResourceData | null;
  /** What is left for workloads per the latest report; null when there is no report yet. */
  free: FreeResources | null;
  transitions: Transition[];
}

/** One row of `GET /api/v1/components`: a component of a node's latest resource report. */
export type ComponentView = { node: string; host_ip: string } & Component;

const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);

function claimant(reg: NodeRegistry, b: Board | undefined, ip: string): ClaimantView {
  return {
    host_ip: ip,
    hostname: b?.heartbeat?.hostname ?? null,
    last_seen: b ? iso(b.heartbeatAt) : null,
    missed_rounds: b ? reg.missed(b) : reg.round,
  };
}

/** The summary of one node. */
export function summarize(reg: NodeRegistry, n: NodeRecord): NodeSummary {
  const b = reg.boardOf(n);
  const r = b?.resource?.resource;
  return {
    id: n.id,
    box_id: n.box_id,
    slot_id: n.slot_id,
    cpu_id: n.cpu_id,
    state: n.state,
    state_since: new Date(n.since).toISOString(),
    host_ip: n.primary,
    hostname: b?.heartbeat?.hostname ?? null,
    last_seen: b ? iso(b.heartbeatAt) : null,
    missed_rounds: b ? reg.missed(b) : reg.round,
    cpu_percent: r?.cpu.usage_percent ?? null,
    memory_percent: r?.memory.usage_percent ?? null,
    temperature: r?.cpu.temperature ?? null,
    gpu_count: r ? r.gpu.length : (b?.heartbeat?.gpu.length ?? 0),
    component_count: b?.resource?.component.length ?? 0,
    resource_at: b ? iso(b.resourceAt) : null,
    conflict:
      n.claimants.size > 1
        ? [n.primary, ...[...n.claimants].filter((ip) => ip !== n.primary)].map((ip) =>
            claimant(reg, reg.boardOf(n, ip), ip),
          )
        : null,
  };
}

/** The full view of one node. */
export function detail(reg: NodeRegistry, n: NodeRecord): NodeDetail {
  const b = reg.boardOf(n);
  const r = b?.resource?.resource;
  return {
    ...summarize(reg, n),
    heartbeat: b?.heartbeat ?? null,
    resource: b?.resource ?? null,
    free: r
      ? {
          cores: Math.max(0, r.cpu.core_count - r.cpu.core_allocated),
          memory_bytes: r.memory.free,
          gpus: null,
          gpus_total: r.gpu.length,
        }
      : null,
    transitions: [...n.transitions],
  };
}

/** Components of the nodes' latest resource reports (of node `only` when given), by node, in report order. */
export function listComponents(reg: NodeRegistry, only?: string): ComponentView[] {
  const out: ComponentView[] = [];
  for (const n of [...reg.nodes.values()].sort(
    (a, b) => a.box_id - b.box_id || a.slot_id - b.slot_id || a.cpu_id - b.cpu_id,
  )) {
    if (only !== undefined && n.id !== only) continue;
    const res = reg.boardOf(n)?.resource;
    for (const c of res?.component ?? []) out.push({ node: n.id, host_ip: n.primary, ...c });
  }
  return out;
}

/** Summaries of all nodes, ordered by box, slot, cpu. */
export function listNodes(reg: NodeRegistry): NodeSummary[] {
  return [...reg.nodes.values()]
    .sort((a, b) => a.box_id - b.box_id || a.slot_id - b.slot_id || a.cpu_id - b.cpu_id)
    .map((n) => summarize(reg, n));
}
