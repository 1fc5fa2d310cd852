/**
 * Alerts (docs/dashboard.md "Alerts"): open ones live (from the event stream), all of them (open
 * and resolved) from GET /api/v1/alerts with filters and paging, and the threshold rules; an admin
 * adds, changes, disables and deletes rules (PUT/DELETE /api/v1/alert-rules/:name).
 */
import { useState } from 'preact/hooks';
import type { AlertListReply, AlertView, CatalogMetric, RuleView } from '../../../common/api/alerts.js';
import { api, get, qs } from '../api.js';
import { live, useLive } from '../live.js';
import { can } from '../session.js';
import { ErrorLine, html, Time, useLoad } from '../ui.js';

function AlertTable({ alerts }: { alerts: AlertView[] }) {
  return html`<table class="grid alerts-table"><thead><tr><th>Id</th><th>Severity</th><th>Node</th><th>Kind / rule</th><th>Message</th><th>Raised</th><th>Last seen</th><th>Resolved</th></tr></thead>
  <tbody>${alerts.map(
    (
      a,
    ) => html`<tr key=${a.id} data-rule=${a.rule}><td>${a.id}</td><td><span class=${`sev sev-${a.severity}`}>${a.severity}</span></td>
      <td>${a.node ? html`<a href=${`#/node/${a.node}`}>${a.node}</a>` : '–'}</td><td>${a.kind}${a.kind === 'threshold' || a.kind === 'agent' ? ` / ${a.rule}` : ''}</td>
      <td>${a.message}</td><td><${Time} at=${a.first_seen} /></td><td><${Time} at=${a.last_seen} /></td><td>${a.resolved_at ? html`<${Time} at=${a.resolved_at} />` : 'open'}</td></tr>`,
  )}</tbody></table>`;
}

function AllAlerts() {
  const [filter, setFilter] = useState({ open: '', node: '', kind: '', severity: '', since: '' });
  const [before, setBefore] = useState<number[]>([]);
  const cursor = before.at(-1);
  const { data, error } = useLoad(
    () => get<AlertListReply>(`/alerts${qs({ ...filter, before: cursor, limit: 50 })}`),
    [JSON.stringify(filter), cursor],
    10_000,
  );
  const set = (k: keyof typeof filter) => (e: Event) => {
    setBefore([]);
    setFilter({ ...filter, [k]: (e.target as HTMLInputElement).value });
  };
  return html`<section aria-labelledby="all-alerts-h">
    <h2 id="all-alerts-h">All alerts</h2>
    <form class="toolbar" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>State <select value=${filter.open} onChange=${set('open')}><option value="">any</option><option value="true">open</option><option value="false">resolved</option></select></label>
      <label>Node <input value=${filter.node} onChange=${set('node')} placeholder="1-1-0" size="8" /></label>
      <label>Kind <select value=${filter.kind} onChange=${set('kind')}><option value="">any</option>${['node_offline', 'identity_conflict', 'component_failed', 'threshold', 'agent'].map((k) => html`<option value=${k}>${k}</option>`)}</select></label>
      <label>Severity <select value=${filter.severity} onChange=${set('severity')}><option value="">any</option>${['info', 'warning', 'critical'].map((k) => html`<option value=${k}>${k}</option>`)}</select></label>
      <label>Since <input value=${filter.since} onChange=${set('since')} placeholder="24h" size="6" /></label>
    </form>
    <${ErrorLine} error=${error} />
    ${data ? html`<${AlertTable} alerts=${data.alerts} />` : ''}
    <nav class="pager" aria-label="alert pages">
      <button type="button" disabled=${before.length === 0} onClick=${() => setBefore(before.slice(0, -1))}>Newer</button>
      <button type="button" disabled=${!data?.next} onClick=${() => data?.next && setBefore([...before, data.next])}>Older</button>
    </nav>
  </section>`;
}

const EMPTY_RULE = { name: '', metric: '', op: '>=', threshold: '', for_ms: '0', severity: 'warning', enabled: true };

function Rules() {
  const { data, error, reload } = useLoad(() => get<{ rules: RuleView[] }>('/alert-rules'), [], 15_000);
  const catalog = useLoad(() => get<{ metrics: CatalogMetric[] }>('/metrics-catalog'), []);
  const admin = can('admin');
  const [form, setForm] = useState(EMPTY_RULE);
  const [actionError, setActionError] = useState<unknown>(null);
  const set = (k: keyof typeof form) => (e: Event) => {
    const t = e.target as HTMLInputElement;
    setForm({ ...form, [k]: t.type === 'checkbox' ? t.checked : t.value });
  };
  const edit = (r: RuleView) =>
    setForm({
      name: r.name,
      metric: r.metric,
      op: r.op,
      threshold: String(r.threshold),
      for_ms: String(r.for_ms),
      severity: r.severity,
      enabled: r.enabled,
    });
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await api('PUT', `/alert-rules/${encodeURIComponent(form.name)}`, {
        metric: form.metric,
        op: form.op,
        threshold: Number(form.threshold),
        for_ms: Number(form.for_ms),
        severity: form.severity,
        enabled: form.enabled,
      });
      setActionError(null);
      setForm(EMPTY_RULE);
      void reload();
    } catch (err) {
      setActionError(err);
    }
  };
  const remove = async (name: string) => {
    if (!window.confirm(`Delete rule ${name}?`)) return;
    try {
      await api('DELETE', `/alert-rules/${encodeURIComponent(name)}`);
      void reload();
    } catch (err) {
      setActionError(err);
    }
  };
  return html`<section aria-labelledby="rules-h">
    <h2 id="rules-h">Rules</h2>
    <${ErrorLine} error=${error || actionError} />
    <table class="grid" id="rules"><thead><tr><th>Name</th><th>Metric</th><th>Condition</th><th>Hold</th><th>Severity</th><th>Enabled</th><th>From</th>${admin ? html`<th>Action</th>` : ''}</tr></thead>
    <tbody>${(data?.rules ?? []).map(
      (
        r,
      ) => html`<tr key=${r.name}><td>${r.name}</td><td>${r.metric}</td><td>${r.op} ${r.threshold}</td><td>${r.for_ms / 1000} s</td><td>${r.severity}</td><td>${r.enabled ? 'yes' : 'no'}</td><td>${r.source}</td>
      ${admin ? html`<td><button type="button" onClick=${() => edit(r)}>Edit</button> <button type="button" onClick=${() => remove(r.name)}>Delete</button></td>` : ''}</tr>`,
    )}</tbody></table>
    ${
      admin
        ? html`<form class="rule-form" onSubmit=${save} aria-label="add or change a rule">
      <label>Name <input required pattern="[a-z][a-z0-9_]{0,63}" value=${form.name} onInput=${set('name')} /></label>
      <label>Metric <input required list="metric-list" value=${form.metric} onInput=${set('metric')} /></label>
      <datalist id="metric-list">${(catalog.data?.metrics ?? []).map((m) => html`<option value=${m.name}>${m.description}</option>`)}</datalist>
      <label>Op <select value=${form.op} onChange=${set('op')}>${['>', '>=', '<', '<='].map((o) => html`<option value=${o}>${o}</option>`)}</select></label>
      <label>Threshold <input required type="number" step="any" value=${form.threshold} onInput=${set('threshold')} /></label>
      <label>Hold (ms) <input type="number" min="0" value=${form.for_ms} onInput=${set('for_ms')} /></label>
      <label>Severity <select value=${form.severity} onChange=${set('severity')}>${['info', 'warning', 'critical'].map((o) => html`<option value=${o}>${o}</option>`)}</select></label>
      <label><input type="checkbox" checked=${form.enabled} onChange=${set('enabled')} /> enabled</label>
      <button type="submit">Save rule</button>
    </form>`
        : ''
    }
  </section>`;
}

/** The alerts page. */
export function Alerts() {
  useLive();
  return html`<section aria-labelledby="alerts-h">
    <h1 id="alerts-h">Alerts</h1>
    <section aria-labelledby="open-h"><h2 id="open-h">Open now (live)</h2>
      ${live.open.length ? html`<${AlertTable} alerts=${live.open.slice().reverse()} />` : html`<p>No open alert.</p>`}
    </section>
    <${AllAlerts} />
    <${Rules} />
  </section>`;
}
