/**
 * Files (docs/dashboard.md "Files", docs/files.md): push files to the boards of a target — each
 * file streamed from the browser to POST /api/v1/files/uploads with its progress, then POST
 * /api/v1/files/pushes to a directory with a mode, then every board's progress polled from GET
 * /api/v1/files/pushes/:id — delete paths on a target (POST /api/v1/files/remove), and browse a
 * board's directory (GET /api/v1/nodes/:id/files). Pushing and deleting are the operator's;
 * browsing is every user's.
 */
import { useEffect, useState } from 'preact/hooks';
import type {
  NodeListReply as DirListing,
  PushRecord,
  PushReply,
  RemoveReply,
  UploadReply,
} from '../../../common/api/files.js';
import { ApiFailure, api, get, qs } from '../api.js';
import { bytes } from '../format.js';
import { can } from '../session.js';
import { ErrorLine, html, Time, useLoad } from '../ui.js';
import { TargetPreview } from './exec.js';

/**
 * Sends `file` to POST /api/v1/files/uploads as it is read from disk (the browser streams the
 * body), calling `progress(sent, total)` as bytes go out.
 * @throws ApiFailure when the manager refuses it, TypeError when it cannot be reached
 */
function upload(file: File, progress: (sent: number, total: number) => void): Promise<UploadReply> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `api/v1/files/uploads${qs({ name: file.name })}`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => progress(e.loaded, e.total || file.size);
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 201) resolve(body as UploadReply);
      else reject(new ApiFailure(xhr.status, body as never));
    };
    xhr.onerror = () => reject(new TypeError('network'));
    xhr.send(file);
  });
}

const PUSH_BADGE: Record<string, string> = {
  done: 'st-online',
  failed: 'st-offline',
  queued: 'st-suspect',
  sending: 'st-suspect',
  retrying: 'st-suspect',
};

/** A push's boards and their progress, polled every second until it ends. */
function PushView({ id }: { id: string }) {
  const [push, setPush] = useState<PushRecord | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stop = false;
    let t = 0;
    const poll = async () => {
      try {
        const r = await get<PushReply>(`/files/pushes/${encodeURIComponent(id)}`);
        if (stop) return;
        setPush(r.push);
        setError(null);
        if (r.push.finished_at) return;
      } catch (e) {
        if (stop) return;
        setError(e);
      }
      t = window.setTimeout(poll, 1000);
    };
    void poll();
    return () => {
      stop = true;
      window.clearTimeout(t);
    };
  }, [id]);
  if (!push) return html`<${ErrorLine} error=${error} />`;
  return html`<section aria-labelledby="push-h" class="push" data-push=${id}>
    <h3 id="push-h">Push <code>${id.slice(0, 8)}</code> to <code>${push.to}</code></h3>
    <${ErrorLine} error=${error} />
    <p class="summary" role="status" aria-live="polite" id="push-summary">${push.finished_at ? 'ended' : 'under way'}: ${push.done} of ${push.nodes.length} boards done, ${push.failed} failed · ${push.files.map((f) => `${f.name} (${bytes(f.size)})`).join(', ')} · mode ${push.mode} · started <${Time} at=${push.at} /></p>
    <table class="grid" id="push-nodes"><thead><tr><th>Board</th><th>State</th><th>Progress</th><th class="num">Attempts</th><th>Now</th><th>Message</th></tr></thead>
    <tbody>${push.nodes.map(
      (
        n,
      ) => html`<tr key=${n.node} data-node=${n.node} data-state=${n.state}><td><a href=${`#/node/${n.node}`}>${n.node}</a></td><td><span class=${`badge ${PUSH_BADGE[n.state] ?? ''}`}>${n.state}</span></td>
        <td><progress max=${n.total || 1} value=${n.bytes} aria-label=${`${n.node}: ${bytes(n.bytes)} of ${bytes(n.total)}`}></progress> ${bytes(n.bytes)} of ${bytes(n.total)}</td>
        <td class="num">${n.attempts}</td><td>${n.file ?? ''}</td><td>${n.message ?? ''}${n.resumed_from.length ? ` (resumed from ${n.resumed_from.map(bytes).join(', ')})` : ''}</td></tr>`,
    )}</tbody></table>
  </section>`;
}

/** The push form (operator). */
function PushForm() {
  const [files, setFiles] = useState<File[]>([]);
  const [f, setF] = useState({ target: '', to: '', mode: '0644' });
  const [sent, setSent] = useState<{ name: string; sent: number; total: number }[]>([]);
  const [push, setPush] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setPush(null);
    try {
      const uploads: string[] = [];
      const progress = files.map((x) => ({ name: x.name, sent: 0, total: x.size }));
      setSent(progress.slice());
      for (const [i, file] of files.entries()) {
        const r = await upload(file, (s, total) => {
          progress[i] = { name: file.name, sent: s, total };
          setSent(progress.slice());
        });
        uploads.push(r.upload.id);
      }
      const r = await api<PushReply>('POST', '/files/pushes', {
        target: f.target,
        files: uploads.map((u) => ({ upload: u })),
        to: f.to,
        ...(f.mode ? { mode: f.mode } : {}),
      });
      setPush(r.push.id);
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="exec-form" onSubmit=${submit} aria-labelledby="push-form-h">
    <h2 id="push-form-h">Push files</h2>
    <label>Files <input type="file" name="files" multiple required onChange=${(e: Event) => setFiles([...((e.target as HTMLInputElement).files ?? [])])} /></label>
    <label>Target <input name="target" required value=${f.target} onInput=${set('target')} placeholder="all, 1-*-0, box=2" /></label>
    <${TargetPreview} target=${f.target} />
    <label>Directory on the boards <input name="to" required pattern="/.*" value=${f.to} onInput=${set('to')} placeholder="/srv/files" aria-describedby="to-help" /></label>
    <small id="to-help">an absolute path inside the boards' files.roots</small>
    <label>Mode <input name="mode" size="5" pattern="0?[0-7]{3}" value=${f.mode} onInput=${set('mode')} /></label>
    <button type="submit" disabled=${busy || files.length === 0}>Push</button>
    ${sent.length ? html`<ul class="uploads" aria-label="uploads to the manager">${sent.map((s) => html`<li key=${s.name}>${s.name}: <progress max=${s.total || 1} value=${s.sent} aria-label=${`upload of ${s.name}`}></progress> ${bytes(s.sent)} of ${bytes(s.total)}</li>`)}</ul>` : ''}
    <${ErrorLine} error=${error} />
    ${push ? html`<${PushView} key=${push} id=${push} />` : ''}
  </form>`;
}

/** The delete form (operator). */
function RemoveForm() {
  const [f, setF] = useState({ target: '', paths: '', recursive: false });
  const [results, setResults] = useState<RemoveReply['results'] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const set = (k: keyof typeof f) => (e: Event) => {
    const t = e.target as HTMLInputElement;
    setF({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value });
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    const paths = f.paths
      .split('\n')
      .map((p) => p.trim())
      .filter(Boolean);
    if (!window.confirm(`Delete ${paths.length} path(s) on ${f.target}${f.recursive ? ', with what they hold' : ''}?`))
      return;
    try {
      setResults(
        (await api<RemoveReply>('POST', '/files/remove', { target: f.target, paths, recursive: f.recursive })).results,
      );
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="exec-form" onSubmit=${submit} aria-labelledby="rm-form-h">
    <h2 id="rm-form-h">Delete files</h2>
    <label>Target <input name="rm-target" required value=${f.target} onInput=${set('target')} placeholder="1-1-0" /></label>
    <${TargetPreview} target=${f.target} />
    <label>Paths (one a line) <textarea name="paths" required rows="3" value=${f.paths} onInput=${set('paths')} placeholder="/srv/files/old.tgz"></textarea></label>
    <label class="check"><input type="checkbox" checked=${f.recursive} onChange=${set('recursive')} /> directories with what they hold</label>
    <button type="submit">Delete</button>
    <${ErrorLine} error=${error} />
    ${
      results
        ? html`<table class="grid" id="rm-results"><thead><tr><th>Board</th><th>Path</th><th>Result</th><th>Message</th></tr></thead>
      <tbody>${results.map((r) => html`<tr key=${`${r.node}${r.path}`}><td>${r.node}</td><td><code>${r.path}</code></td><td>${r.ok ? (r.removed ?? 'ok') : `failed (${r.error})`}</td><td>${r.message}</td></tr>`)}</tbody></table>`
        : ''
    }
  </form>`;
}

/** A board's directory. */
function Browse() {
  const [node, setNode] = useState('');
  const [path, setPath] = useState('/');
  const [shown, setShown] = useState<{ node: string; path: string } | null>(null);
  const list = useLoad(
    () =>
      shown
        ? get<DirListing>(`/nodes/${encodeURIComponent(shown.node)}/files${qs({ path: shown.path })}`)
        : Promise.resolve(null),
    [shown?.node, shown?.path],
  );
  const open = (p: string) => {
    setPath(p);
    if (shown) setShown({ node: shown.node, path: p });
  };
  const join = (dir: string, name: string) => `${dir.replace(/\/+$/, '')}/${name}`;
  const up = (p: string) => p.replace(/\/[^/]*\/?$/, '') || '/';
  return html`<section aria-labelledby="browse-h">
    <h2 id="browse-h">Browse a board</h2>
    <form class="toolbar" onSubmit=${(e: Event) => {
      e.preventDefault();
      setShown({ node, path });
    }}>
      <label>Board <input name="browse-node" required value=${node} onInput=${(e: Event) => setNode((e.target as HTMLInputElement).value)} placeholder="1-1-0" size="10" /></label>
      <label>Directory <input name="browse-path" required pattern="/.*" value=${path} onInput=${(e: Event) => setPath((e.target as HTMLInputElement).value)} size="30" /></label>
      <button type="submit">List</button>
    </form>
    <${ErrorLine} error=${list.error} />
    ${
      list.data && shown
        ? html`<p><code>${shown.node}:${list.data.path}</code>${list.data.truncated ? ' (first entries only)' : ''} ${shown.path !== '/' ? html`<button type="button" onClick=${() => open(up(shown.path))}>Up</button>` : ''}</p>
      <table class="grid" id="listing"><thead><tr><th>Name</th><th>Type</th><th class="num">Size</th><th>Mode</th><th>Modified</th></tr></thead>
      <tbody>${list.data.entries.map(
        (x) =>
          html`<tr key=${x.name} data-name=${x.name}><td>${x.type === 'dir' ? html`<button type="button" class="link" onClick=${() => open(join(shown.path, x.name))}>${x.name}/</button>` : x.name}</td><td>${x.type}</td><td class="num">${bytes(x.size)}</td><td><code>${x.mode}</code></td><td><${Time} at=${x.mtime} /></td></tr>`,
      )}</tbody></table>`
        : ''
    }
  </section>`;
}

/** The files page (`#/files`). */
export function Files() {
  return html`<section aria-labelledby="files-h">
    <h1 id="files-h">Files</h1>
    ${can('operator') ? html`<${PushForm} /><${RemoveForm} />` : html`<p class="note">Pushing and deleting files needs the operator role.</p>`}
    <${Browse} />
  </section>`;
}
