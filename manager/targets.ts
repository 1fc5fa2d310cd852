/**
 * Target resolution against the registry (docs/exec.md "Targets"): the nodes a task, a file push
 * or a screen capture acts on, fixed at submit time. The grammar and the matching are
 * common/target.ts; this module only turns a node record into the attributes matched.
 */
import { parseTarget, selectTarget, type Target, type TargetNode } from '../common/target.js';
import type { NodeRecord, NodeRegistry } from './registry.js';

/** A node as targets see it, with the record it came from. */
export interface ResolvedNode extends TargetNode {
  record: NodeRecord;
  /** host_ip of the board the node shows. */
  host_ip: string;
}

/** Largest label value kept from a heartbeat, characters; most labels kept per node. */
const MAX_LABEL_LENGTH = 256;
const MAX_LABELS = 64;

/**
 * Agent labels from a heartbeat's `labels` extension (an object of strings); anything else,
 * too long or too many, is ignored.
 */
export function labelsOf(hb: unknown): Record<string, string> {
  const raw = (hb as { labels?: unknown } | null | undefined)?.labels;
  const out: Record<string, string> = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out;
  let n = 0;
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string' || v.length > MAX_LABEL_LENGTH || k.length > 64) continue;
    out[k] = v;
    if (++n >= MAX_LABELS) break;
  }
  return out;
}

/** The target view of one node record. */
export function targetNodeOf(reg: NodeRegistry, n: NodeRecord): ResolvedNode {
  const hb = reg.boardOf(n)?.heartbeat ?? null;
  return {
    id: n.id,
    record: n,
    host_ip: n.primary,
    attrs: {
      box: String(n.box_id),
      slot: String(n.slot_id),
      cpu: String(n.cpu_id),
      state: n.state,
      board_type: hb?.board_type,
      box_type: hb?.box_type,
      cpu_arch: hb?.cpu_arch,
      cpu_type: hb?.cpu_type,
      os_type: hb?.os_type,
      resource_type: hb?.resource_type,
      hostname: hb?.hostname ?? n.link?.hostname,
      host_ip: n.primary,
      link: n.link ? 'ws' : 'mcast',
    },
    labels: labelsOf(hb),
  };
}

/**
 * The nodes of the registry that `target` selects, ordered by id.
 * @throws TargetError (common/target.ts) when `target` is a text that does not parse
 */
export function resolveTarget(reg: NodeRegistry, target: string | Target): ResolvedNode[] {
  const t = typeof target === 'string' ? parseTarget(target) : target;
  const all = [...reg.nodes.values()].map((n) => targetNodeOf(reg, n));
  all.sort(
    (a, b) =>
      a.record.box_id - b.record.box_id || a.record.slot_id - b.record.slot_id || a.record.cpu_id - b.record.cpu_id,
  );
  return selectTarget(t, all);
}
