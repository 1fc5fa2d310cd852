/**
 * The components each node reports (docs/protocol.md "`component[]`: the agent's workloads"), followed across reports:
 * a change of state is written to the store and the history, a component reported FAILED raises
 * a `component_failed` alert, resolved once it is reported in another state or no longer
 * reported. Only changes are written, so a steady fleet writes nothing.
 */

import type { Severity } from '../common/api/primitives.js';
import type { Component } from '../common/protocol.js';
import type { AlertEngine } from './alerts/engine.js';
import { alertKey } from './alerts/engine.js';
import type { Store } from './store/store.js';

/** Components named one by one in the history entry of a node's first report (the rest counted). */
export const FIRST_REPORT_LISTED = 32;

/** A pseudo-state recorded when a component disappears from its node's reports. */
export const GONE = 'GONE';

interface Known {
  uuid: string;
  state: string;
  name: string;
  id: string;
}

/** What is known of one node's components. */
interface NodeComponents {
  /** By uuid. */
  known: Map<string, Known>;
  /**
   * The entries of `known` for the node's latest report, in report order, null before one: a report
   * that repeats it is recognised with one pass and no lookup (the fast path of `observe`).
   */
  latest: Known[] | null;
}

/** Follows component states per node. */
export class ComponentTracker {
  private readonly nodes = new Map<string, NodeComponents>();

  constructor(
    private readonly store: Store,
    private readonly alerts: AlertEngine,
    private severity: Severity,
  ) {}

  /** Loads the last known states from the store (at start). */
  restore(): void {
    for (const c of this.store.loadComponents()) {
      if (c.state === null || c.state === GONE) continue;
      this.of(c.node).known.set(c.uuid, { uuid: c.uuid, state: c.state, name: c.name ?? '', id: c.cid ?? '' });
    }
  }

  /** Severity of component_failed alerts from now on (a config reload). */
  setSeverity(s: Severity): void {
    this.severity = s;
  }

  private of(node: string): NodeComponents {
    let m = this.nodes.get(node);
    if (!m) {
      m = { known: new Map(), latest: null };
      this.nodes.set(node, m);
    }
    return m;
  }

  /** Compares a node's latest report with what was known; records and alerts on changes. */
  observe(node: string, components: readonly Component[], at: number): void {
    const rec = this.of(node);
    const { known, latest } = rec;
    // Most reports repeat the previous one: the same components, in the same order, unchanged.
    if (latest !== null && latest.length === components.length && known.size === latest.length) {
      let same = true;
      for (let i = 0; i < components.length; i++) {
        const c = components[i] as Component;
        const before = latest[i] as Known;
        if (before.uuid !== c.uuid || before.state !== c.state || before.id !== c.config.id) {
          same = false;
          break;
        }
      }
      if (same) return;
    }
    if (known.size === 0 && components.length > 0) this.firstReport(node, known, components, at);
    else {
      const present = new Set<string>();
      for (const c of components) {
        present.add(c.uuid);
        const before = known.get(c.uuid);
        if (before && before.state === c.state && before.id === c.config.id) continue;
        known.set(c.uuid, { uuid: c.uuid, state: c.state, name: c.config.name, id: c.config.id });
        this.change(node, c.uuid, c.config.name, c.config.id, before?.state ?? null, c.state, at);
      }
      for (const [uuid, k] of known) {
        if (present.has(uuid)) continue;
        known.delete(uuid);
        this.change(node, uuid, k.name, k.id, k.state, GONE, at);
      }
    }
    rec.latest = components.map((c) => known.get(c.uuid) as Known);
  }

  /**
   * The first report of a node the tracker knows nothing of (a new board, or one whose components
   * were all gone): each component's row, and **one** history entry naming them all (a fleet of
   * 5,000 new boards with 8 components each writes 5,000 entries, not 40,000). A FAILED one also
   * gets its own entry (`new → FAILED`) and raises its alert; an alert left open from before for
   * one reported in another state is resolved.
   */
  private firstReport(node: string, known: Map<string, Known>, components: readonly Component[], at: number): void {
    const listed: { uuid: string; name: string; id: string; state: string }[] = [];
    for (const c of components) {
      if (known.has(c.uuid)) continue; // a uuid repeated in the report counts once
      known.set(c.uuid, { uuid: c.uuid, state: c.state, name: c.config.name, id: c.config.id });
      listed.push({ uuid: c.uuid, name: c.config.name, id: c.config.id, state: c.state });
      if (c.state === 'FAILED') {
        // A failure is news even in a first report: its own entry, as for a change, and its alert.
        this.change(node, c.uuid, c.config.name, c.config.id, null, c.state, at);
        continue;
      }
      this.save(node, c.uuid, c.config.name, c.config.id, c.state, at);
      this.alert(node, c.uuid, c.config.name, c.state, at);
    }
    const shown = listed.slice(0, FIRST_REPORT_LISTED);
    const more = listed.length - shown.length;
    this.store.addHistory({
      at,
      node,
      kind: 'component',
      operation: 'REPORTED',
      args: { components: shown, ...(more > 0 ? { more } : {}) },
      message:
        `${node} reports ${listed.length} component${listed.length === 1 ? '' : 's'}: ` +
        shown.map((c) => `${c.name || c.uuid} (${c.uuid}) ${c.state}`).join(', ') +
        (more > 0 ? ` and ${more} more` : ''),
      who: 'manager',
    });
  }

  private save(node: string, uuid: string, name: string, id: string, state: string, at: number): void {
    this.store.saveComponent({
      node,
      uuid,
      type: null,
      name: name || null,
      cid: id || null,
      state,
      deployment: null,
      first_seen: at,
      last_seen: at,
    });
  }

  /** Raises component_failed for a FAILED component; resolves an open one otherwise (messages built only then). */
  private alert(node: string, uuid: string, name: string, to: string, at: number): void {
    const label = () => `component ${name || uuid} (${uuid}) on ${node}`;
    if (to === 'FAILED') {
      this.alerts.raise(
        {
          kind: 'component_failed',
          rule: 'component_failed',
          severity: this.severity,
          node,
          instance: uuid,
          message: `${label()} is FAILED`,
        },
        at,
      );
      return;
    }
    const key = alertKey('component_failed', node, 'component_failed', uuid);
    if (this.alerts.isOpen(key))
      this.alerts.resolve(key, at, to === GONE ? `${label()} is no longer reported` : `${label()} is ${to}`);
  }

  private change(
    node: string,
    uuid: string,
    name: string,
    id: string,
    from: string | null,
    to: string,
    at: number,
  ): void {
    this.save(node, uuid, name, id, to, at);
    const label = `component ${name || uuid} (${uuid}) on ${node}`;
    this.store.addHistory({
      at,
      node,
      kind: 'component',
      operation: to,
      args: { uuid, name, id, from },
      message: to === GONE ? `${label} is no longer reported` : `${label}: ${from ?? 'new'} → ${to}`,
      who: 'manager',
    });
    this.alert(node, uuid, name, to, at);
  }
}
