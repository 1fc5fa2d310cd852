/**
 * The chassis view (docs/dashboard.md "Chassis"): one row per box, one cell per board (slot.cpu),
 * coloured by liveness state, with CPU %, temperature and GPU count; a conflict and an open alert
 * marked with a symbol and words (not only colour); a cell is a link to the board page. Boards
 * without a box/slot position (linked nodes whose id is not box-slot-cpu) are listed beside.
 */
import { Component } from 'preact';
import { useMemo } from 'preact/hooks';
import type { NodeSummary } from '../../../common/api/nodes.js';
import { fmt } from '../format.js';
import { live, useLive } from '../live.js';
import { html, StateBadge } from '../ui.js';

const POSITIONED = /^\d+-\d+-\d+$/;

interface CellProps {
  n: NodeSummary;
  alert: boolean;
}

/** What a cell shows: a new report that changes none of it (last_seen moves on every one) costs no render. */
const shown = (p: CellProps) =>
  `${p.n.state}|${p.n.conflict !== null}|${p.alert}|${p.n.cpu_percent?.toFixed(0)}|${p.n.temperature?.toFixed(0)}|${p.n.gpu_count}`;

/** One board; re-renders only when what it shows changed. */
class Cell extends Component<CellProps> {
  override shouldComponentUpdate(next: CellProps): boolean {
    return shown(next) !== shown(this.props);
  }
  override render() {
    const { n, alert } = this.props;
    const conflict = n.conflict !== null;
    const label = `board ${n.id}, ${conflict ? 'identity conflict, ' : ''}${n.state}, cpu ${fmt(n.cpu_percent, '%')}, ${fmt(n.temperature, '°C')}, ${n.gpu_count} GPUs${alert ? ', open alert' : ''}`;
    return html`<a class=${`cell st-${n.state}${conflict ? ' st-conflict' : ''}`} href=${`#/node/${n.id}`} aria-label=${label} data-node=${n.id}>
      <span class="cell-id">${n.slot_id}.${n.cpu_id}${alert ? html`<span class="mark" title="open alert"> ⚠</span>` : ''}${conflict ? html`<span class="mark" title="identity conflict"> ⇄</span>` : ''}</span>
      <span class="cell-fig">${fmt(n.cpu_percent, '%', 0)}</span>
      <span class="cell-fig">${fmt(n.temperature, '°C', 0)}</span>
      <span class="cell-fig">${n.gpu_count > 0 ? `${n.gpu_count} GPU` : ''}</span>
    </a>`;
  }
}

/** The chassis page. */
export function Chassis() {
  const v = useLive();
  const { boxes, linked } = useMemo(() => {
    const boxes = new Map<number, NodeSummary[]>();
    const linked: NodeSummary[] = [];
    for (const n of live.sorted()) {
      if (!POSITIONED.test(n.id)) {
        linked.push(n);
        continue;
      }
      const row = boxes.get(n.box_id) ?? [];
      row.push(n);
      boxes.set(n.box_id, row);
    }
    return { boxes: [...boxes.entries()], linked };
  }, [v]);
  const counts = useMemo(() => {
    const c = { online: 0, suspect: 0, offline: 0 };
    for (const n of live.nodes.values()) c[n.state]++;
    return c;
  }, [v]);
  return html`<section aria-labelledby="chassis-h">
    <h1 id="chassis-h">Chassis</h1>
    <p class="summary" aria-live="polite">${live.nodes.size} boards: ${counts.online} online, ${counts.suspect} suspect, ${counts.offline} offline; ${live.open.length} open alerts</p>
    <div class="legend" aria-hidden="true"><span class="cell st-online">online</span><span class="cell st-suspect">suspect</span><span class="cell st-offline">offline</span><span class="cell st-online st-conflict">conflict ⇄</span><span>⚠ open alert</span></div>
    <div class="chassis-wrap">
      <div class="chassis" role="list" aria-label="boxes">
        ${boxes.length === 0 ? html`<p>No board has reported yet.</p>` : ''}
        ${boxes.map(
          ([box, nodes]) => html`<div class="box-row" role="listitem" key=${box}>
            <div class="box-label">box ${box}</div>
            <div class="slots">${nodes.map((n) => html`<${Cell} key=${n.id} n=${n} alert=${live.alerting.has(n.id)} />`)}</div>
          </div>`,
        )}
      </div>
      ${
        linked.length > 0
          ? html`<aside class="linked" aria-labelledby="linked-h">
        <h2 id="linked-h">Without a position</h2>
        <ul>${linked.map((n) => html`<li key=${n.id}><a href=${`#/node/${n.id}`}>${n.id}</a> <${StateBadge} state=${n.state} /></li>`)}</ul>
      </aside>`
          : ''
      }
    </div>
  </section>`;
}
