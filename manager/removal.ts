/**
 * Node removal (docs/operations.md "Removing nodes"): one code path for `DELETE /api/v1/nodes/:id`
 * (an admin) and the automatic pruning of manager/prune.ts (`registry.expire_never_online_ms`,
 * `registry.prune_offline_after_ms`). The node is forgotten by the registry (its boards and its
 * addresses' claims too), its open alerts are resolved, its threshold holds dropped, its store row
 * deleted, and `node.rm` is recorded in the history with who did it and why.
 */
import type { AlertEngine } from './alerts/engine.js';
import type { NodeRegistry } from './registry.js';
import type { Store } from './store/store.js';

/** What a removal touches. */
export interface RemovalDeps {
  registry: Pick<NodeRegistry, 'forget'>;
  alerts: Pick<AlertEngine, 'openOn' | 'resolve' | 'forgetHolds'>;
  store: Pick<Store, 'removeNode' | 'addHistory'>;
}

/** Why a node is removed: an operator (`api`), or pruning (`never_online`, `offline`). */
export type RemovalReason = 'api' | 'never_online' | 'offline';

const WHY: Record<RemovalReason, string> = {
  api: 'removed',
  never_online: 'pruned: it never came online (registry.expire_never_online_ms)',
  offline: 'pruned: offline too long (registry.prune_offline_after_ms)',
};

/**
 * Removes node `id` (see the module doc).
 * @param who the history's `who`: the user or token for `api`, `manager` for pruning
 * @param at when, ms since the epoch
 * @returns the node and the count of open alerts resolved, or null when the node is unknown
 */
export function removeNode(
  d: RemovalDeps,
  id: string,
  who: string,
  reason: RemovalReason = 'api',
  at = Date.now(),
): { node: string; alerts_resolved: number } | null {
  if (!d.registry.forget(id)) return null;
  let resolved = 0;
  for (const a of d.alerts.openOn(id)) if (d.alerts.resolve(a.key, at, `node ${id} ${WHY[reason]}`)) resolved++;
  d.alerts.forgetHolds(id);
  d.store.removeNode(id);
  d.store.addHistory({
    at,
    node: id,
    kind: 'operation',
    operation: 'node.rm',
    args: reason === 'api' ? { node: id } : { node: id, reason },
    result: 0,
    message: `node ${id} ${WHY[reason]}; ${resolved} open alert(s) resolved`,
    who,
  });
  return { node: id, alerts_resolved: resolved };
}
