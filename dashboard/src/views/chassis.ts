/**
 * The chassis view (docs/dashboard.md "Chassis"): one row per box, one cell per board (slot.cpu),
 * coloured by liveness state, with CPU %, temperature and GPU count; a conflict and an open alert
 * marked with a symbol and words (not only colour); a cell is a link to the board page. Boards
 * without a box/slot position (linked nodes whose id is not box-slot-cpu) are listed beside.
 *
 * Rendering cost (docs/dashboard.md "Performance"): the grid of cells is laid out again only when
 * the set of nodes changes (`live.layout`); each cell watches its own node (`live.watch`) and
 * renders again only when what it shows changed, so a live update of 1,000 boards is slices of
 * cell renders in short tasks, and 10 changed boards cost 10 cell renders.
 */
import { Component } from 'preact';
import { useMemo } from 'preact/hooks';
import type { NodeSummary } from '../../../common/api/nodes.js';
import { fmt } from '../format.js';
import { live, useLive } from '../live.js';
import { html, StateBadge } from '../ui.js';

const POSITIONED = /^\d+-\d+-\d+$/;

/** What a cell shows, as one string: a new report that changes none of it costs no render. */
const shown = (n: NodeSummary | undefined, alert: boolean) =>
  n
    ? `${n.state}|${n.conflict !== null}|${alert}|${n.cpu_percent?.toFixed(0)}|${n.temperature?.toFixed(0)}|${n.gpu_count}`
    : '';

/** One board, watching its own node; re-renders only when what it shows changed. */
class Cell extends Component<{ id: string }> {
  private off: (() => void) | null = null;
  private last = '';
  override componentDidMount(): void {
    this.off = live.watch(this.props.id, () => {
      if (shown(live.nodes.get(this.props.id), live.alerting.has(this.props.id)) !== this.last) this.forceUpdate();
    });
  }
  override componentWillUnmount(): void {
    this.off?.();
  }
  override shouldComponentUpdate(next: { id: string }): boolean {
    return next.id !== this.props.id;
  }
  override render() {
    const n = live.nodes.get(this.props.id);
    const alert = live.alerting.has(this.props.id);
    this.last = shown(n, alert);
    if (!n) return null;
    const conflict = n.conflict !== null;
    const label = `board ${n.id}, ${conflict ? 'identity conflict, ' : ''}${n.state}, cpu ${fmt(n.cpu_percent, '%')}, ${fmt(n.temperature, '°C')}, ${n.gpu_count} GPUs${alert ? ', open alert' : ''}`;
    // One element and its text (a line per figure, CSS white-space: pre-line): 1,000 of them lay
    // out fast. The marks are spans, for their titles.
    const figs = `\n${fmt(n.cpu_percent, '%', 0)}\n${fmt(n.temperature, '°C', 0)}\n${n.gpu_count > 0 ? `${n.gpu_count} GPU` : ''}`;
    return html`<a class=${`cell st-${n.state}${conflict ? ' st-conflict' : ''}`} href=${`#/node/${n.id}`} aria-label=${label} data-node=${n.id}>${`${n.slot_id}.${n.cpu_id}`}${alert ? html`<span class="mark" title="open alert"> ⚠</span>` : ''}${conflict ? html`<span class="mark" title="identity conflict"> ⇄</span>` : ''}${figs}</a>`;
  }
}

interface Layout {
  boxes: [number, string[]][];
  linked: string[];
}

/** The boxes and their cells; rendered again only when the set of nodes changes. */
class Grid extends Component<{ layout: Layout }> {
  override shouldComponentUpdate(next: { layout: Layout }): boolean {
    return next.layout !== this.props.layout;
  }
  override render() {
    const { boxes } = this.props.layout;
    return html`<div class="chassis" role="list" aria-label="boxes">
      ${boxes.length === 0 ? html`<p>No board has reported yet.</p>` : ''}
      ${boxes.map(
        ([box, ids]) => html`<div class="box-row" role="listitem" key=${box}>
          <div class="box-label">box ${box}</div>
          <div class="slots">${ids.map((id) => html`<${Cell} key=${id} id=${id} />`)}</div>
        </div>`,
      )}
    </div>`;
  }
}

/** The chassis page. */
export function Chassis() {
  const v = useLive();
  const layout = useMemo((): Layout => {
    const boxes = new Map<number, string[]>();
    const linked: string[] = [];
    for (const n of live.sorted()) {
      if (!POSITIONED.test(n.id)) {
        linked.push(n.id);
        continue;
      }
      const row = boxes.get(n.box_id) ?? [];
      row.push(n.id);
      boxes.set(n.box_id, row);
    }
    return { boxes: [...boxes.entries()], linked };
  }, [live.layout]);
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
      <${Grid} layout=${layout} />
      ${
        layout.linked.length > 0
          ? html`<aside class="linked" aria-labelledby="linked-h">
        <h2 id="linked-h">Without a position</h2>
        <ul>${layout.linked.map((id) => {
          const n = live.nodes.get(id);
          return n
            ? html`<li key=${id}><a href=${`#/node/${id}`}>${id}</a> <${StateBadge} state=${n.state} /></li>`
            : '';
        })}</ul>
      </aside>`
          : ''
      }
    </div>
  </section>`;
}
