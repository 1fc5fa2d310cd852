/**
 * Deploy with placement and business instances (docs/dashboard.md "Deploy" and "Instances",
 * docs/scheduling.md).
 *
 * `#/deploy`: a start sent with or without a board (POST /api/v1/deployments). Without one the
 * scheduler places it, honouring the constraints (one a line) and the scoring; the answer names
 * the board with the placement's score and how many boards were feasible, and a 409
 * `placement_failed` shows the scheduler's explanation of why none fits.
 *
 * `#/instances`: every instance (GET /api/v1/instances) with its desired state and the status of
 * each group; one instance's components and history (GET /api/v1/instances/:id/history); apply a
 * spec written as JSON (POST .../plan shows what it would do, PUT applies), stop, remove — the
 * changes are the operator's.
 */
import { useState } from 'preact/hooks';
import type { DeploymentReply } from '../../../common/api/deploy.js';
import type { InstanceHistoryReply, InstanceView, Plan } from '../../../common/api/instances.js';
import { ApiFailure, api, get, qs } from '../api.js';
import { can } from '../session.js';
import { ErrorLine, html, Time, useLoad } from '../ui.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The deploy page (`#/deploy`). */
export function Deploy() {
  const [f, setF] = useState({
    node: '',
    constraints: '',
    scoring: '',
    type: 'bar',
    url: '',
    file: '',
    cpu: '1',
    memory: '64',
    gpu: '0',
  });
  const [done, setDone] = useState<DeploymentReply['deployment'] | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setDone(null);
    setRefusal(null);
    setError(null);
    try {
      const constraints = f.constraints
        .split('\n')
        .map((c) => c.trim())
        .filter(Boolean);
      const r = await api<DeploymentReply>('POST', '/deployments', {
        mode: 'start',
        type: f.type,
        url: f.url,
        file: f.file,
        require: { cpu: Number(f.cpu), memory: Math.round(Number(f.memory) * 1048576), gpu: Number(f.gpu) },
        ...(f.node.trim() ? { node: f.node.trim() } : {}),
        ...(!f.node.trim() && constraints.length ? { constraints } : {}),
        ...(!f.node.trim() && f.scoring ? { scoring: f.scoring } : {}),
      });
      setDone(r.deployment);
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 409 && err.body?.error === 'placement_failed')
        setRefusal(err.body.message);
      else setError(err);
    } finally {
      setBusy(false);
    }
  };
  if (!can('operator'))
    return html`<section><h1>Deploy</h1><p class="note">Starting components needs the operator role.</p></section>`;
  const placed = !f.node.trim();
  return html`<section aria-labelledby="deploy-h">
    <h1 id="deploy-h">Deploy</h1>
    <form class="start-form" onSubmit=${submit} aria-labelledby="deploy-h">
      <label>Board <input name="node" value=${f.node} onInput=${set('node')} placeholder="empty: placed by the scheduler" aria-describedby="node-help" /></label>
      <small id="node-help">leave empty to let the scheduler choose a board that fits</small>
      <label>Constraints (one a line) <textarea name="constraints" rows="3" disabled=${!placed} value=${f.constraints} onInput=${set('constraints')} placeholder=${'box=1\nlabel.role=edge\ngpu_type!=none'}></textarea></label>
      <label>Scoring <select name="scoring" disabled=${!placed} value=${f.scoring} onChange=${set('scoring')}><option value="">default</option><option value="binpack">binpack (fill boards)</option><option value="spread">spread (balance)</option></select></label>
      <label>Type <select name="type" value=${f.type} onChange=${set('type')}><option value="bar">bar</option><option value="docker">docker</option></select></label>
      <label>URL <input name="url" required value=${f.url} onInput=${set('url')} placeholder="http://files/bundles or host:5000" /></label>
      <label>File <input name="file" required value=${f.file} onInput=${set('file')} placeholder="app-1.0.tgz or image:tag" /></label>
      <label>Cores <input name="cpu" type="number" min="0" value=${f.cpu} onInput=${set('cpu')} /></label>
      <label>Memory (MiB) <input name="memory" type="number" min="1" value=${f.memory} onInput=${set('memory')} /></label>
      <label>GPUs <input name="gpu" type="number" min="0" value=${f.gpu} onInput=${set('gpu')} /></label>
      <button type="submit" disabled=${busy}>Start</button>
    </form>
    <${ErrorLine} error=${error} />
    ${refusal ? html`<div class="error" role="alert" id="placement-refusal"><p>No board fits:</p><pre>${refusal}</pre></div>` : ''}
    ${
      done
        ? html`<p class="note" role="status" id="deploy-result">start of <code>${done.uuid}</code> sent to <a href=${`#/node/${done.node}`}>${done.node}</a>${
            done.placement
              ? ` — placed: score ${done.placement.score.toFixed(2)}, ${done.placement.feasible} of ${done.placement.total} boards feasible, attempt ${done.placement.attempt}`
              : ''
          }</p>`
        : ''
    }
  </section>`;
}

const PHASE_BADGE: Record<string, string> = {
  running: 'st-online',
  starting: 'st-suspect',
  stopping: 'st-suspect',
  failed: 'st-offline',
  lost: 'st-offline',
};

function InstanceDetail({ inst, onChange }: { inst: InstanceView; onChange: () => void }) {
  const [before, setBefore] = useState<number[]>([]);
  const cursor = before.at(-1);
  const hist = useLoad(
    () =>
      get<InstanceHistoryReply>(
        `/instances/${encodeURIComponent(inst.instance_id)}/history${qs({ before: cursor, limit: 20 })}`,
      ),
    [inst.instance_id, cursor],
    cursor === undefined ? 5000 : undefined,
  );
  const [error, setError] = useState<unknown>(null);
  const act = async (what: 'stop' | 'remove') => {
    if (!window.confirm(`${what === 'stop' ? 'Stop' : 'Remove'} instance ${inst.instance_id}?`)) return;
    try {
      const id = encodeURIComponent(inst.instance_id);
      await (what === 'stop' ? api('POST', `/instances/${id}/stop`) : api('DELETE', `/instances/${id}`));
      setError(null);
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  return html`<section aria-labelledby="inst-h" class="instance">
    <h2 id="inst-h">Instance ${inst.instance_id} <span class="badge">${inst.status}</span></h2>
    <p>version ${inst.version}, applied by ${inst.who} <${Time} at=${iso(inst.updated_at)} /></p>
    ${
      can('operator')
        ? html`<p class="toolbar">${inst.status === 'running' ? html`<button type="button" onClick=${() => act('stop')}>Stop</button>` : ''}
      ${inst.status !== 'removing' ? html`<button type="button" onClick=${() => act('remove')}>Remove</button>` : ''}</p>`
        : ''
    }
    <${ErrorLine} error=${error} />
    <h3>Components</h3>
    <table class="grid" id="inst-components"><thead><tr><th>Group</th><th class="num">Index</th><th>Board</th><th>Phase</th><th>Reported</th><th class="num">Version</th><th>Running since</th><th>Why</th></tr></thead>
    <tbody>${inst.components.map(
      (c) =>
        html`<tr key=${c.uuid}><td>${c.group}</td><td class="num">${c.index}</td><td><a href=${`#/node/${c.node}`}>${c.node}</a></td><td><span class=${`badge ${PHASE_BADGE[c.phase] ?? ''}`}>${c.phase}</span></td><td>${c.reported ?? '–'}</td><td class="num">${c.version}</td><td><${Time} at=${iso(c.running_since)} /></td><td>${c.reason ?? ''}</td></tr>`,
    )}</tbody></table>
    <h3>History</h3>
    <${ErrorLine} error=${hist.error} />
    <table class="grid" id="inst-history"><thead><tr><th>When</th><th>Action</th><th>Group</th><th>Board</th><th>Who</th><th>Message</th></tr></thead>
    <tbody>${(hist.data?.events ?? []).map(
      (h) =>
        html`<tr key=${h.id}><td><${Time} at=${h.at} /></td><td>${h.action}</td><td>${h.group ?? ''}${h.index !== null ? `[${h.index}]` : ''}</td><td>${h.node ?? ''}</td><td>${h.who}</td><td>${h.message}</td></tr>`,
    )}</tbody></table>
    <nav class="pager" aria-label="instance history pages">
      <button type="button" disabled=${before.length === 0} onClick=${() => setBefore(before.slice(0, -1))}>Newer</button>
      <button type="button" disabled=${!hist.data?.next} onClick=${() => hist.data?.next && setBefore([...before, hist.data.next])}>Older</button>
    </nav>
  </section>`;
}

const SAMPLE_SPEC = `{
  "instance_id": "web",
  "groups": {
    "front": { "count": 2, "type": "bar", "url": "http://files/bundles", "file": "web-1.0.tgz",
               "require": { "cpu": 1, "memory": 67108864, "gpu": 0 }, "distinct": "node" }
  }
}`;

function ApplyForm({ onApplied }: { onApplied: (id: string) => void }) {
  const [text, setText] = useState(SAMPLE_SPEC);
  const [plan, setPlan] = useState<Plan | null>(null);
  const [error, setError] = useState<unknown>(null);
  const send = async (apply: boolean) => {
    try {
      const spec = JSON.parse(text) as { instance_id?: string };
      const id = encodeURIComponent(String(spec.instance_id ?? ''));
      const r = apply
        ? await api<{ plan: Plan }>('PUT', `/instances/${id}`, spec)
        : await api<{ plan: Plan }>('POST', `/instances/${id}/plan`, spec);
      setPlan(r.plan);
      setError(null);
      if (apply) onApplied(String(spec.instance_id));
    } catch (e) {
      setError(e instanceof SyntaxError ? new Error(`the spec is not JSON: ${e.message}`) : e);
    }
  };
  return html`<form class="exec-form" onSubmit=${(e: Event) => e.preventDefault()} aria-labelledby="apply-h">
    <h2 id="apply-h">Apply a spec</h2>
    <label>Spec (JSON; memory in bytes, times in ms — docs/scheduling.md) <textarea name="spec" rows="8" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea></label>
    <p class="toolbar"><button type="button" onClick=${() => send(false)}>Plan</button> <button type="button" onClick=${() => send(true)}>Apply</button></p>
    <${ErrorLine} error=${error} />
    ${
      plan
        ? html`<table class="grid" id="plan"><caption>Plan for ${plan.instance_id} v${plan.version}${plan.changed ? '' : ' (unchanged)'}</caption><thead><tr><th>Action</th><th>Group</th><th class="num">Index</th><th>Board</th><th>Message</th></tr></thead>
      <tbody>${plan.steps.map((s, i) => html`<tr key=${i}><td>${s.action}</td><td>${s.group}</td><td class="num">${s.index ?? ''}</td><td>${s.node ?? 'none fits'}</td><td>${s.message}</td></tr>`)}</tbody></table>`
        : ''
    }
  </form>`;
}

/** The instances page (`#/instances`, `#/instances/<id>`). */
export function Instances({ selected }: { selected?: string | undefined }) {
  const list = useLoad(() => get<{ instances: InstanceView[] }>('/instances'), [], 3000);
  const inst = list.data?.instances.find((i) => i.instance_id === selected);
  return html`<section aria-labelledby="insts-h">
    <h1 id="insts-h">Instances</h1>
    <${ErrorLine} error=${list.error} />
    <table class="grid" id="instances"><thead><tr><th>Instance</th><th>State</th><th class="num">Version</th><th>Groups (running / wanted)</th><th>Updated</th><th>Who</th></tr></thead>
    <tbody>${(list.data?.instances ?? []).map(
      (
        i,
      ) => html`<tr key=${i.instance_id} aria-current=${i.instance_id === selected ? 'true' : undefined}><td><a href=${`#/instances/${encodeURIComponent(i.instance_id)}`}>${i.instance_id}</a></td><td>${i.status}</td><td class="num">${i.version}</td>
        <td>${Object.entries(i.groups).map(([g, s]) => html`<span class="group" title=${`starting ${s.starting}, failed ${s.failed}, lost ${s.lost}, stopping ${s.stopping}, outdated ${s.outdated}`}>${g}: ${s.running} / ${s.count}${s.failed + s.lost ? ` (${s.failed + s.lost} failed or lost)` : ''} </span>`)}</td>
        <td><${Time} at=${iso(i.updated_at)} /></td><td>${i.who}</td></tr>`,
    )}</tbody></table>
    ${list.data && list.data.instances.length === 0 ? html`<p>No instance yet (<code>muster instance apply app.yaml</code> or the form below).</p>` : ''}
    ${inst ? html`<${InstanceDetail} key=${inst.instance_id} inst=${inst} onChange=${list.reload} />` : ''}
    ${
      can('operator')
        ? html`<${ApplyForm} onApplied=${(id: string) => {
            location.hash = `#/instances/${encodeURIComponent(id)}`;
            void list.reload();
          }} />`
        : ''
    }
  </section>`;
}
