/**
 * How a node of the registry is written down elsewhere: its row in the store (manager/store) and
 * its tags in the telemetry (docs/telemetry.md). Shared by the ingest, the event wiring and the
 * composition root.
 */
import type { HeartbeatData } from '../common/protocol.js';
import type { Board, LinkState, NodeRecord, NodeRegistry } from './registry.js';
import type { NodeRow, StoredLink } from './store/store.js';
import type { NodeTags } from './telemetry/index.js';

/** The store row of node `id` as it is now; undefined for an unknown node. */
export function nodeRow(registry: NodeRegistry, id: string): NodeRow | undefined {
  const n = registry.nodes.get(id);
  if (!n) return undefined;
  const b = registry.boardOf(n);
  return {
    id,
    box_id: n.box_id,
    slot_id: n.slot_id,
    cpu_id: n.cpu_id,
    host_ip: n.primary,
    claimants: [...n.claimants],
    hostname: b?.heartbeat?.hostname ?? n.link?.hostname ?? null,
    heartbeat: b?.heartbeat ? JSON.stringify(b.heartbeat) : null,
    state: n.state,
    state_since: n.since,
    first_seen: n.first_seen,
    last_seen: n.link?.last_at || b?.heartbeatAt || n.since,
    link: n.link ? JSON.stringify(storedLink(n.link)) : null,
  };
}

/** What the store keeps of a node's link state (docs/links.md "Linked nodes"). */
function storedLink(l: LinkState): StoredLink {
  return {
    interval_ms: l.interval_ms,
    ...(l.hostname !== undefined ? { hostname: l.hostname } : {}),
    ...(l.os_info !== undefined ? { os_info: l.os_info } : {}),
    metrics: l.metrics,
  };
}

/**
 * A stored link state (JSON text of the nodes table's `link` column), or null when there is none
 * or it cannot be read (the node is then put back as a multicast board).
 */
export function parseLink(text: string | null | undefined): StoredLink | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as StoredLink;
    return typeof v === 'object' && v !== null && Number.isFinite(v.interval_ms) && v.interval_ms > 0 ? v : null;
  } catch {
    return null;
  }
}

/**
 * The telemetry tags of a node, from its shown board's heartbeat (undefined before one).
 * @param shown that board when the caller has it (it is then not looked up)
 */
export function nodeTags(registry: NodeRegistry, n: NodeRecord, shown?: Board): NodeTags | undefined {
  const hb = (shown ?? registry.boardOf(n))?.heartbeat;
  if (!hb) return undefined;
  return { node: n.id, box: n.box_id, slot: n.slot_id, cpu: n.cpu_id, hostname: hb.hostname, host_ip: n.primary };
}

/** A stored heartbeat (JSON text), or null when there is none or it cannot be read. */
export function parseHeartbeat(text: string | null): HeartbeatData | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as HeartbeatData;
  } catch {
    return null;
  }
}
