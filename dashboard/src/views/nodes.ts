/**
 * The nodes table (docs/dashboard.md "Nodes"): every column `muster nodes` shows, live, sortable by
 * any column (click or Enter on its header; aria-sort says the order) and filtered by a text that
 * matches the id, hostname, address or state.
 *
 * Rendering cost (docs/dashboard.md "Performance"): over VIRTUAL_OVER (100) rows the table renders only
 * the rows in view (plus a margin) inside its scrolling box, with spacer rows for the others
 * (`aria-rowcount` and `aria-rowindex` keep the whole table's size for screen readers); a row
 * renders again only when its node, alert mark or the clock of "ago" changed.
 */
import { Component } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
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

/** Tables longer than this render only the rows in view. */
export const VIRTUAL_OVER = 100;
/** Rows rendered above and below the ones in view. */
const OVERSCAN = 6;
/** Height of a row, px, until one is measured. */
const ROW_PX = 27;

interface RowProps {
  n: NodeSummary;
  alert: boolean;
  tick: number;
  index: number;
}

/** One row; re-renders only when its node, alert mark or the clock (for "ago") changed. */
class Row extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    return (
      next.n !== this.props.n ||
      next.alert !== this.props.alert ||
      next.tick !== this.props.tick ||
      next.index !== this.props.index
    );
  }
  override render() {
    const { n, alert, index } = this.props;
    return html`<tr data-node=${n.id} aria-rowindex=${index + 2}>
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
  // The rows in view of the scrolling box (all of them for a short table).
  const wrap = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 900, rowPx: ROW_PX });
  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    let frame = 0;
    const measure = () => {
      frame = 0;
      const tr = el.querySelector('tbody tr[data-node]') as HTMLElement | null;
      setView({ top: el.scrollTop, height: el.clientHeight || 900, rowPx: tr?.offsetHeight || ROW_PX });
    };
    const onScroll = () => {
      if (!frame) frame = requestAnimationFrame(measure);
    };
    measure();
    el.addEventListener('scroll', onScroll, { passive: true });
    window.addEventListener('resize', onScroll);
    return () => {
      cancelAnimationFrame(frame);
      el.removeEventListener('scroll', onScroll);
      window.removeEventListener('resize', onScroll);
    };
  }, []);
  // The real row height, once rows are drawn (a badge may make rows taller than ROW_PX).
  useEffect(() => {
    const tr = wrap.current?.querySelector('tbody tr[data-node]') as HTMLElement | null;
    const px = tr?.offsetHeight;
    if (px && px !== view.rowPx) setView((v) => ({ ...v, rowPx: px }));
    // Once rows exist (a layout read in every update would cost a forced layout per event).
  }, [rows.length > 0, sort.key]);
  const virtual = rows.length > VIRTUAL_OVER;
  const first = virtual ? Math.max(0, Math.floor(view.top / view.rowPx) - OVERSCAN) : 0;
  const last = virtual
    ? Math.min(rows.length, Math.ceil((view.top + view.height) / view.rowPx) + OVERSCAN)
    : rows.length;
  return html`<section aria-labelledby="nodes-h">
    <h1 id="nodes-h">Nodes</h1>
    <div class="toolbar">
      <label>Filter <input type="search" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} placeholder="id, hostname, ip, state" /></label>
      <span aria-live="polite">${rows.length} of ${live.nodes.size} nodes</span>
    </div>
    <div class=${virtual ? 'table-scroll' : ''} ref=${wrap}>
    <table class="grid" id="nodes-table" aria-rowcount=${rows.length + 1} data-rows=${rows.length}>
      <thead><tr>${COLUMNS.map(
        (
          c,
        ) => html`<th key=${c.key} class=${c.num ? 'num' : ''} aria-sort=${sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
          <button type="button" onClick=${() => setSort({ key: c.key, desc: sort.key === c.key ? !sort.desc : false })}>${c.label}${sort.key === c.key ? (sort.desc ? ' ▼' : ' ▲') : ''}</button>
        </th>`,
      )}</tr></thead>
      <tbody>
        ${first > 0 ? html`<tr class="spacer" aria-hidden="true"><td colspan=${COLUMNS.length} style=${`height:${first * view.rowPx}px`}></td></tr>` : ''}
        ${rows.slice(first, last).map((n, k) => html`<${Row} key=${n.id} n=${n} alert=${live.alerting.has(n.id)} tick=${tick} index=${first + k} />`)}
        ${last < rows.length ? html`<tr class="spacer" aria-hidden="true"><td colspan=${COLUMNS.length} style=${`height:${(rows.length - last) * view.rowPx}px`}></td></tr>` : ''}
      </tbody>
    </table>
    </div>
  </section>`;
}
