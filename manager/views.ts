/**
 * The REST API's views of nodes (docs/operations.md "REST API": `/api/v1/nodes`,
 * `/api/v1/components`), built from the node registry. Their shapes are the contract's
 * (common/api/nodes.ts), which the CLI reads too. Times are ISO-8601 strings; figures keep the
 * protocol's units (%, °C, bytes).
 */
import type { ClaimantView, ComponentView, FreeResources, NodeDetail, NodeSummary } from '../common/api/nodes.js';
import type { Board, NodeRecord, NodeRegistry } from './registry.js';

export type { ClaimantView, ComponentView, FreeResources, NodeDetail, NodeSummary };

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
  const g = b?.gist;
  return {
    id: n.id,
    box_id: n.box_id,
    slot_id: n.slot_id,
    cpu_id: n.cpu_id,
    state: n.state,
    state_since: new Date(n.since).toISOString(),
    host_ip: n.primary,
    hostname: b?.heartbeat?.hostname ?? n.link?.hostname ?? null,
    last_seen: b ? iso(b.heartbeatAt) : null,
    missed_rounds: b ? reg.missed(b) : reg.round,
    cpu_percent: g?.cpu_percent ?? n.link?.metrics?.cpu_usage ?? null,
    memory_percent: g?.memory_percent ?? n.link?.metrics?.memory_usage ?? null,
    temperature: g?.temperature ?? null,
    gpu_count: g ? g.gpu_count : (b?.heartbeat?.gpu.length ?? 0),
    component_count: g?.component_count ?? 0,
    resource_at: b ? iso(b.resourceAt) : null,
    conflict:
      n.claimants.size > 1
        ? [n.primary, ...[...n.claimants].filter((ip) => ip !== n.primary)].map((ip) =>
            claimant(reg, reg.boardOf(n, ip), ip),
          )
        : null,
    link: n.link ? 'ws' : 'mcast',
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
    link_info: n.link
      ? { interval_ms: n.link.interval_ms, os_info: n.link.os_info ?? null, metrics: n.link.metrics }
      : null,
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
