/**
 * The manager's event wiring: what follows from the registry's and the deployer's events.
 *
 * - a liveness transition (docs/operations.md "Liveness"): a history entry, the node row written
 *   at once, the node_offline alert raised or resolved, threshold holds forgotten, a telemetry
 *   node_state point;
 * - an identity conflict and its end (docs/operations.md "Identity conflicts"): history, the
 *   identity_conflict alert, the node row; a board that moved: history and the node row;
 * - a deployment created or finished (docs/protocol.md "5. Load command"): the record and its
 *   history entry written, and the component a successful start created.
 */

import type { Severity } from '../common/api/primitives.js';
import type { Logger } from '../common/log.js';
import { type AlertEngine, alertKey } from './alerts/engine.js';
import type { Deployer, DeploymentRecord } from './deploy.js';
import type { Transition } from './liveness.js';
import { nodeRow, nodeTags } from './records.js';
import type { NodeRegistry } from './registry.js';
import type { Store } from './store/store.js';
import type { Telemetry } from './telemetry/index.js';

/** The severities of the event alerts (alerts.events; read at each event, so that a reload applies). */
export interface EventSeverities {
  node_offline: Severity;
  identity_conflict: Severity;
}

/** What the wiring connects. */
export interface WiringDeps {
  registry: NodeRegistry;
  deployer: Pick<Deployer, 'on'>;
  store: Pick<Store, 'addHistory' | 'saveNode' | 'saveDeployment' | 'finishHistory' | 'saveComponent'>;
  alerts: Pick<AlertEngine, 'raise' | 'resolve' | 'forgetHolds'>;
  telemetry: Pick<Telemetry, 'nodeState'>;
  /** The event alerts' severities now. */
  severities: () => EventSeverities;
  log: Logger;
}

/** Writes a history entry done by the manager itself (`who` manager). */
export function managerHistory(
  store: Pick<Store, 'addHistory'>,
  node: string | null,
  kind: 'state' | 'manager',
  operation: string,
  args: Record<string, unknown> | null,
  message: string,
  at = Date.now(),
): void {
  store.addHistory({ at, node, kind, operation, args, message, who: 'manager' });
}

/** Subscribes to the registry's and the deployer's events. */
export function wireEvents(d: WiringDeps): void {
  const { registry, store, alerts, log } = d;
  const history = (
    node: string | null,
    kind: 'state' | 'manager',
    operation: string,
    args: Record<string, unknown> | null,
    message: string,
    at = Date.now(),
  ) => managerHistory(store, node, kind, operation, args, message, at);
  // Written now (after a transition or a conflict): it must survive a SIGKILL.
  const saveNode = (id: string) => {
    const row = nodeRow(registry, id);
    if (row) store.saveNode(row);
  };

  registry.on('transition', (t: Transition) => {
    const level = t.to === 'online' ? 'info' : 'warn';
    log[level]({ node: t.node, from: t.from, to: t.to, reason: t.reason }, 'node state changed');
    const at = Date.parse(t.at);
    history(t.node, 'state', t.to, { from: t.from, reason: t.reason }, `${t.from ?? 'new'} → ${t.to}: ${t.reason}`, at);
    saveNode(t.node);
    // A node that stopped reporting: threshold holds must see the condition again from the start.
    if (t.to !== 'online') alerts.forgetHolds(t.node);
    if (t.to === 'offline') {
      alerts.raise(
        {
          kind: 'node_offline',
          rule: 'node_offline',
          severity: d.severities().node_offline,
          node: t.node,
          message: `node ${t.node} is offline: ${t.reason}`,
        },
        at,
      );
    } else if (t.to === 'online') {
      alerts.resolve(
        alertKey('node_offline', t.node, 'node_offline'),
        at,
        `node ${t.node} is back online: ${t.reason}`,
      );
    }
    const n = registry.nodes.get(t.node);
    const tags = n && nodeTags(registry, n);
    if (n && tags) {
      const b = registry.boardOf(n);
      // A position no board claims any more has no missed-round count (the point leaves it out).
      d.telemetry.nodeState(tags, t.to, b ? registry.missed(b) : Number.POSITIVE_INFINITY, at, t.reason);
    }
  });

  registry.on('conflict', (c: { node: string; claimants: string[] }) => {
    log.error(c, 'identity conflict: more than one board claims this position');
    const at = Date.now();
    const message = `identity conflict: ${c.claimants.join(', ')} all claim position ${c.node}`;
    history(c.node, 'state', 'conflict', { claimants: c.claimants }, message, at);
    alerts.raise(
      {
        kind: 'identity_conflict',
        rule: 'identity_conflict',
        severity: d.severities().identity_conflict,
        node: c.node,
        message,
      },
      at,
    );
    saveNode(c.node);
  });

  registry.on('conflict-cleared', (c: { node: string }) => {
    log.info(c, 'identity conflict cleared');
    const at = Date.now();
    const n = registry.nodes.get(c.node);
    const message = `identity conflict cleared: only ${n?.primary ?? '?'} claims position ${c.node}`;
    history(c.node, 'state', 'conflict-cleared', null, message, at);
    alerts.resolve(alertKey('identity_conflict', c.node, 'identity_conflict'), at, message);
    saveNode(c.node);
  });

  registry.on('address-shared', (c: { host_ip: string; nodes: string[] }) =>
    log.error(
      c,
      'one address reports for several positions: resource reports cannot be told apart (give each agent its own report.host_ip)',
    ),
  );

  registry.on('moved', (c: { node: string; from: string; to: string }) => {
    log.warn(c, 'node now reports from another address');
    history(c.node, 'state', 'moved', { from: c.from, to: c.to }, `now reported by ${c.to} (was ${c.from})`);
    saveNode(c.node);
  });

  d.deployer.on('deployment', (rec: DeploymentRecord) => {
    store.saveDeployment(rec);
    store.addHistory({
      at: Date.parse(rec.at),
      node: rec.node,
      kind: 'operation',
      operation: `deploy.${rec.mode}`,
      args: { ...rec.request },
      who: rec.who,
      ref: rec.id,
    });
  });

  d.deployer.on('finished', (rec: DeploymentRecord) => {
    store.saveDeployment(rec);
    store.finishHistory(rec.id, rec.result as number, rec.message ?? '');
    if (rec.result === 0) {
      const at = Date.now();
      store.saveComponent({
        node: rec.node,
        uuid: rec.uuid,
        type: rec.type,
        name: null,
        cid: rec.reply?.id !== undefined ? String(rec.reply.id) : null,
        state: null,
        deployment: rec.id,
        first_seen: at,
        last_seen: at,
      });
    }
  });
}
