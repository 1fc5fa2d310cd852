/**
 * The nodes table (docs/dashboard.md "Nodes"): every column `muster nodes` shows, live, sortable by
 * any column (click or Enter on its header; aria-sort says the order) and filtered by a text that
 * matches the id, hostname, address or state.
 */
import { Component } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { NodeSummary } from '../../../common/api/nodes.js';
import { ago, fmt } from '../format.js';
import { live, useLive } from '../live.js';
import { html, StateBadge } from '../ui.js';

type Key =
  | 'id'
  | 'hostname'
  | 'host_ip'
  | 'state'
  | 'cpu_percent'
  | 'memory_percent'
  | 'temperature'
  | 'gpu_count'
  | 'component_count'
  | 'last_seen';

const COLUMNS: { key: Key; label: string; num?: boolean }[] = [
  { key: 'id', label: 'Node' },
  { key: 'hostname', label: 'Hostname' },
  { key: 'host_ip', label: 'IP' },
  { key: 'state', label: 'State' },
  { key: 'cpu_percent', label: 'CPU %', num: true },
  { key: 'memory_percent', label: 'Mem %', num: true },
  { key: 'temperature', label: 'Temp °C', num: true },
  { key: 'gpu_count', label: 'GPUs', num: true },
  { key: 'component_count', label: 'Comps', num: true },
  { key: 'last_seen', label: 'Last seen' },
];

const STATE_RANK: Record<string, number> = { online: 0, suspect: 1, offline: 2 };

function compare(a: NodeSummary, b: NodeSummary, key: Key): number {
  if (key === 'id') return a.box_id - b.box_id || a.slot_id - b.slot_id || a.cpu_id - b.cpu_id;
  if (key === 'state') return (STATE_RANK[a.state] ?? 3) - (STATE_RANK[b.state] ?? 3);
  const x = a[key];
  const y = b[key];
  if (x === y) return 0;
  if (x === null) return 1;
  if (y === null) return -1;
  return typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
}

interface RowProps {
  n: NodeSummary;
  alert: boolean;
  tick: number;
}

/** One row; re-renders only when its node, alert mark or the clock (for "ago") changed. */
class Row extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    return next.n !== this.props.n || next.alert !== this.props.alert || next.tick !== this.props.tick;
  }
  override render() {
    const { n, alert } = this.props;
    return html`<tr data-node=${n.id}>
      <td><a href=${`#/node/${n.id}`}>${n.id}</a>${alert ? html`<span class="mark" title="open alert" aria-label="open alert"> ⚠</span>` : ''}</td>
      <td>${n.hostname ?? '–'}</td>
      <td>${n.host_ip}</td>
      <td><${StateBadge} state=${n.state} conflict=${n.conflict !== null} /></td>
      <td class="num">${fmt(n.cpu_percent, '', 1)}</td>
      <td class="num">${fmt(n.memory_percent, '', 1)}</td>
      <td class="num">${fmt(n.temperature, '', 1)}</td>
      <td class="num">${n.gpu_count}</td>
      <td class="num">${n.component_count}</td>
      <td title=${n.last_seen ?? ''}>${ago(n.last_seen)}</td>
    </tr>`;
  }
}

/** The nodes page. */
export function Nodes() {
  const v = useLive();
  const [sort, setSort] = useState<{ key: Key; desc: boolean }>({ key: 'id', desc: false });
  const [filter, setFilter] = useState('');
  const rows = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const list = [...live.nodes.values()].filter(
      (n) =>
        f === '' ||
        n.id.includes(f) ||
        (n.hostname ?? '').toLowerCase().includes(f) ||
        n.host_ip.includes(f) ||
        n.state.includes(f) ||
        (f === 'conflict' && n.conflict !== null),
    );
    list.sort((a, b) => (sort.desc ? -1 : 1) * compare(a, b, sort.key) || compare(a, b, 'id'));
    return list;
  }, [v, sort, filter]);
  // "ago" moves with the clock: a tick every 5 s re-renders the rows' last-seen column.
  const tick = Math.floor(live.lastEventAt / 5000);
  return html`<section aria-labelledby="nodes-h">
    <h1 id="nodes-h">Nodes</h1>
    <div class="toolbar">
      <label>Filter <input type="search" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} placeholder="id, hostname, ip, state" /></label>
      <span aria-live="polite">${rows.length} of ${live.nodes.size} nodes</span>
    </div>
    <table class="grid" id="nodes-table">
      <thead><tr>${COLUMNS.map(
        (
          c,
        ) => html`<th key=${c.key} class=${c.num ? 'num' : ''} aria-sort=${sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
          <button type="button" onClick=${() => setSort({ key: c.key, desc: sort.key === c.key ? !sort.desc : false })}>${c.label}${sort.key === c.key ? (sort.desc ? ' ▼' : ' ▲') : ''}</button>
        </th>`,
      )}</tr></thead>
      <tbody>${rows.map((n) => html`<${Row} key=${n.id} n=${n} alert=${live.alerting.has(n.id)} tick=${tick} />`)}</tbody>
    </table>
  </section>`;
}
