/**
 * The history (docs/dashboard.md "History"): state transitions, operations with who ran them,
 * component changes, manager starts and stops; filters by node, kind and age; pages of 50 going
 * back with "Older" (GET /api/v1/history's `next`).
 */
import { useState } from 'preact/hooks';
import type { HistoryReply } from '../../../common/api/history.js';
import { get, qs } from '../api.js';
import { ErrorLine, html, Time, useLoad } from '../ui.js';

/** The history page. */
export function History() {
  const [filter, setFilter] = useState({ node: '', kind: '', since: '' });
  const [before, setBefore] = useState<number[]>([]);
  const cursor = before.at(-1);
  const { data, error } = useLoad(
    () => get<HistoryReply>(`/history${qs({ ...filter, before: cursor, limit: 50 })}`),
    [JSON.stringify(filter), cursor],
    cursor === undefined ? 5000 : undefined,
  );
  const set = (k: keyof typeof filter) => (e: Event) => {
    setBefore([]);
    setFilter({ ...filter, [k]: (e.target as HTMLInputElement).value });
  };
  return html`<section aria-labelledby="history-h">
    <h1 id="history-h">History</h1>
    <form class="toolbar" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Node <input value=${filter.node} onChange=${set('node')} placeholder="1-1-0" size="8" /></label>
      <label>Kind <select value=${filter.kind} onChange=${set('kind')}><option value="">any</option>${['state', 'operation', 'component', 'manager'].map((k) => html`<option value=${k}>${k}</option>`)}</select></label>
      <label>Since <input value=${filter.since} onChange=${set('since')} placeholder="2h" size="6" /></label>
    </form>
    <${ErrorLine} error=${error} />
    <table class="grid" id="history"><thead><tr><th>When</th><th>Node</th><th>Kind</th><th>Operation</th><th>Result</th><th>Who</th><th>Message</th></tr></thead>
    <tbody>${(data?.history ?? []).map(
      (h) =>
        html`<tr key=${h.id}><td><${Time} at=${h.at} /></td><td>${h.node ? html`<a href=${`#/node/${h.node}`}>${h.node}</a>` : '–'}</td><td>${h.kind}</td><td>${h.operation}</td><td>${h.result ?? ''}</td><td>${h.who}</td><td>${h.message ?? ''}</td></tr>`,
    )}</tbody></table>
    <nav class="pager" aria-label="history pages">
      <button type="button" disabled=${before.length === 0} onClick=${() => setBefore(before.slice(0, -1))}>Newer</button>
      <button type="button" disabled=${!data?.next} onClick=${() => data?.next && setBefore([...before, data.next])}>Older</button>
    </nav>
  </section>`;
}
