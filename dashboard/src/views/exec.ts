/**
 * The exec console (docs/dashboard.md "Exec"): a target (the grammar of docs/exec.md "Targets")
 * with a preview of the boards it selects (GET /api/v1/nodes?target=), a raw command or a
 * command-set entry (GET /api/v1/commands) with its arguments, the task options (batch, timeout,
 * fail_fast), then POST /api/v1/tasks and the live output of every board from the task's event
 * stream (GET /api/v1/tasks/:id/events): lines, each board's state and exit code when it ends, and
 * the summary. The recent tasks below (GET /api/v1/tasks) reopen any of them. The form is the
 * operator's; a viewer reads the tasks only.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { CommandListReply } from '../../../common/api/commands.js';
import type { NodeListReply } from '../../../common/api/nodes.js';
import type { NodeResult, TaskLine, TaskListReply, TaskRecord, TaskReply } from '../../../common/api/tasks.js';
import { api, get, qs } from '../api.js';
import { can } from '../session.js';
import { ErrorLine, errorText, html, Time, useLoad } from '../ui.js';

/** Most live lines kept on the page (older ones are dropped from view, not from the task). */
const MAX_LINES = 5000;

/** Shows what a target selects, asked of the manager half a second after the last keystroke. */
export function TargetPreview({ target }: { target: string }) {
  const [state, setState] = useState<{ ids: string[] | null; error: unknown }>({ ids: null, error: null });
  useEffect(() => {
    if (!target.trim()) {
      setState({ ids: null, error: null });
      return;
    }
    const t = window.setTimeout(() => {
      get<NodeListReply>(`/nodes${qs({ target })}`)
        .then((r) => setState({ ids: r.nodes.map((n) => n.id), error: null }))
        .catch((e) => setState({ ids: null, error: e }));
    }, 400);
    return () => window.clearTimeout(t);
  }, [target]);
  if (state.error) return html`<p class="error preview" role="status">${errorText(state.error)}</p>`;
  if (!state.ids) return null;
  const shown = state.ids.slice(0, 40);
  return html`<p class="note preview" role="status" id="target-preview">
    ${state.ids.length} board${state.ids.length === 1 ? '' : 's'}${shown.length ? ': ' : ''}${shown.map((id, i) => html`${i ? ', ' : ''}<a href=${`#/node/${id}`}>${id}</a>`)}${state.ids.length > shown.length ? ', …' : ''}
  </p>`;
}

/** A node's state in a task as a badge (words, not only colour). */
function RunBadge({ state }: { state: string }) {
  const cls = state === 'done' ? 'st-online' : state === 'running' || state === 'pending' ? 'st-suspect' : 'st-offline';
  return html`<span class=${`badge ${cls}`}>${state}</span>`;
}

/** One task followed live: its event stream while it runs, its record when it ended. */
function TaskView({ id, onEnded }: { id: string; onEnded?: () => void }) {
  const [task, setTask] = useState<TaskRecord | null>(null);
  const [results, setResults] = useState<Record<string, NodeResult>>({});
  const [lines, setLines] = useState<TaskLine[]>([]);
  const [dropped, setDropped] = useState(0);
  const [streamState, setStreamState] = useState<'open' | 'ended' | 'lost'>('open');
  const [error, setError] = useState<unknown>(null);
  const pending = useRef<TaskLine[]>([]);
  useEffect(() => {
    setTask(null);
    setResults({});
    setLines([]);
    setDropped(0);
    setStreamState('open');
    void get<TaskReply>(`/tasks/${id}`)
      .then((r) => setTask(r.task))
      .catch(setError);
    const es = new EventSource(`api/v1/tasks/${encodeURIComponent(id)}/events`);
    // Lines are shown in batches, at most every 200 ms, so a chatty task does not re-render per line.
    const flush = window.setInterval(() => {
      if (!pending.current.length) return;
      const add = pending.current;
      pending.current = [];
      setLines((old) => {
        const all = old.concat(add);
        return all.length > MAX_LINES ? all.slice(all.length - MAX_LINES) : all;
      });
    }, 200);
    es.addEventListener('line', (e) => pending.current.push(JSON.parse((e as MessageEvent).data) as TaskLine));
    es.addEventListener('node', (e) => {
      const r = JSON.parse((e as MessageEvent).data) as NodeResult;
      setResults((old) => ({ ...old, [r.node]: r }));
    });
    es.addEventListener('dropped', (e) =>
      setDropped((d) => d + (JSON.parse((e as MessageEvent).data) as { lines: number }).lines),
    );
    es.addEventListener('summary', (e) => {
      const t = JSON.parse((e as MessageEvent).data) as TaskRecord;
      setTask(t);
      setResults(Object.fromEntries((t.results ?? []).map((r) => [r.node, r])));
      setStreamState('ended');
      es.close();
      onEnded?.();
    });
    es.onerror = () => {
      // The stream ends after the summary; an error before it means the connection was lost: stop
      // (a reconnect would replay every line) and show the task's record instead.
      es.close();
      setStreamState((s) => (s === 'ended' ? s : 'lost'));
      void get<TaskReply>(`/tasks/${id}`)
        .then((r) => {
          setTask(r.task);
          if (r.task.results) setResults(Object.fromEntries(r.task.results.map((x) => [x.node, x])));
        })
        .catch(setError);
    };
    return () => {
      es.close();
      window.clearInterval(flush);
    };
  }, [id]);
  const kill = async (node?: string) => {
    try {
      setTask((await api<TaskReply>('POST', `/tasks/${id}/kill`, node ? { node } : {})).task);
    } catch (e) {
      setError(e);
    }
  };
  const nodes = task?.nodes ?? [];
  const s = task?.summary;
  return html`<section aria-labelledby="task-h" class="task" data-task=${id}>
    <h2 id="task-h">Task <code>${id.slice(0, 8)}</code> ${task ? html`<${RunBadge} state=${task.state} />` : ''}</h2>
    <${ErrorLine} error=${error} />
    ${
      task
        ? html`<p class="summary" role="status" id="task-summary" aria-live="polite">
        ${streamState === 'open' ? 'running: ' : streamState === 'lost' ? 'live output stopped (open the task again to follow it): ' : 'ended: '}
        ${s?.nodes} board${s?.nodes === 1 ? '' : 's'}, ${s?.done} done, ${s?.failed} failed, ${s?.skipped} skipped, ${s?.running} running, ${s?.pending} pending
        · started <${Time} at=${task.at} />${task.finished_at ? html` · ended <${Time} at=${task.finished_at} />` : ''} · by ${task.who}
        ${task.message ? html` · ${task.message}` : ''}</p>`
        : html`<p>Loading…</p>`
    }
    ${can('operator') && task && !task.finished_at ? html`<button type="button" onClick=${() => kill()}>Kill the task</button>` : ''}
    <table class="grid" id="task-nodes"><thead><tr><th>Board</th><th>State</th><th class="num">Exit code</th><th class="num">Duration</th><th>Message</th>${can('operator') ? html`<th>Action</th>` : ''}</tr></thead>
    <tbody>${nodes.map((n) => {
      const r = results[n];
      const st = r?.state ?? (task?.finished_at ? 'skipped' : 'running');
      return html`<tr key=${n} data-node=${n} data-state=${st}><td><a href=${`#/node/${n}`}>${n}</a></td><td><${RunBadge} state=${st} /></td>
        <td class="num exit">${r?.exit_code ?? '–'}</td><td class="num">${r?.duration_ms != null ? `${(r.duration_ms / 1000).toFixed(1)} s` : '–'}</td><td>${r?.message ?? ''}</td>
        ${can('operator') ? html`<td>${!r && !task?.finished_at ? html`<button type="button" onClick=${() => kill(n)} aria-label=${`kill on ${n}`}>Kill</button>` : ''}</td>` : ''}</tr>`;
    })}</tbody></table>
    ${dropped ? html`<p class="note">${dropped} lines were no longer held by the manager (exec.max_buffered_lines).</p>` : ''}
    <h3>Output</h3>
    <pre class="output" id="task-output" tabindex="0" aria-label="task output, one line per board line" aria-live="off">${
      lines.length
        ? lines.map(
            (l) =>
              html`<span key=${l.seq} class=${l.stream === 'stderr' ? 'stderr' : ''}>${`[${l.node}] ${l.line}\n`}</span>`,
          )
        : streamState !== 'open'
          ? Object.values(results)
              .flatMap((r) => r.steps.map((st) => `[${r.node}] ${st.stdout_tail}${st.stderr_tail}`))
              .join('\n')
          : ''
    }</pre>
  </section>`;
}

/** The exec form (operator). */
function ExecForm({ onStarted }: { onStarted: (id: string) => void }) {
  const commands = useLoad(() => get<CommandListReply>('/commands'), []);
  const [f, setF] = useState({
    target: 'all',
    mode: 'raw',
    type: 'sh',
    content: '',
    command: '',
    args: '',
    kwargs: '',
    batch: '',
    timeout: '',
    fail_fast: false,
  });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: Event) => {
    const t = e.target as HTMLInputElement;
    setF({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value });
  };
  const entry = commands.data?.commands.find((c) => c.name === f.command);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const args = f.args.trim() ? f.args.split('\n').filter((a) => a !== '') : [];
      const kwargs = Object.fromEntries(
        f.kwargs
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1)]),
      );
      const step =
        f.mode === 'raw'
          ? { command_type: f.type, command_content: f.content }
          : { command: f.command, args, ...(Object.keys(kwargs).length ? { kwargs } : {}) };
      const batch = f.batch.trim();
      const r = await api<TaskReply>('POST', '/tasks', {
        target: f.target,
        steps: [step],
        ...(batch ? { batch: /^\d+$/.test(batch) ? Number(batch) : batch } : {}),
        ...(f.timeout.trim() ? { timeout: /^\d+$/.test(f.timeout.trim()) ? Number(f.timeout) : f.timeout.trim() } : {}),
        fail_fast: f.fail_fast,
      });
      setError(null);
      onStarted(r.task.id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="exec-form" onSubmit=${submit} aria-labelledby="exec-form-h">
    <h2 id="exec-form-h">Run</h2>
    <label>Target <input name="target" required maxlength="4096" value=${f.target} onInput=${set('target')} aria-describedby="target-help" placeholder="all, 1-*-0, box=2 state=online, label.role=edge" /></label>
    <small id="target-help">ids and globs (1-*-0, 1-1-0,1-2-0), key=value or key!=value (box, slot, state, board_type, hostname, label.name…), all</small>
    <${TargetPreview} target=${f.target} />
    <fieldset><legend>What</legend>
      <label><input type="radio" name="mode" value="raw" checked=${f.mode === 'raw'} onChange=${set('mode')} /> a command</label>
      <label><input type="radio" name="mode" value="set" checked=${f.mode === 'set'} onChange=${set('mode')} /> a command-set entry</label>
    </fieldset>
    ${
      f.mode === 'raw'
        ? html`<label>Interpreter <select name="type" value=${f.type} onChange=${set('type')}><option value="sh">sh</option><option value="bash">bash</option><option value="python3">python3</option></select></label>
      <label>Command <textarea name="content" required rows="4" value=${f.content} onInput=${set('content')} placeholder="uname -a"></textarea></label>`
        : html`<label>Entry <select name="command" required value=${f.command} onChange=${set('command')}><option value="">choose…</option>${(commands.data?.commands ?? []).map((c) => html`<option value=${c.name}>${c.name}</option>`)}</select></label>
      ${entry ? html`<p class="note">${entry.argument_count < 0 ? 'any number of arguments' : `${entry.argument_count} argument${entry.argument_count === 1 ? '' : 's'}`}${entry.generate_file ? `, writes ${entry.generate_file}` : ''}</p>` : ''}
      <label>Arguments (one a line) <textarea name="args" rows="3" value=${f.args} onInput=${set('args')}></textarea></label>
      <label>Named arguments (NAME=value, one a line) <textarea name="kwargs" rows="2" value=${f.kwargs} onInput=${set('kwargs')}></textarea></label>
      <${ErrorLine} error=${commands.error} />`
    }
    <fieldset><legend>Options</legend>
      <label>Batch <input name="batch" size="6" value=${f.batch} onInput=${set('batch')} placeholder="all" aria-describedby="batch-help" /></label>
      <small id="batch-help">boards at a time (10) or a share (25%)</small>
      <label>Timeout <input name="timeout" size="6" value=${f.timeout} onInput=${set('timeout')} placeholder="none" aria-describedby="timeout-help" /></label>
      <small id="timeout-help">seconds, or 30s, 5m, 1h</small>
      <label><input type="checkbox" name="fail_fast" checked=${f.fail_fast} onChange=${set('fail_fast')} /> stop starting boards after the first failure</label>
    </fieldset>
    <button type="submit" disabled=${busy}>Run</button>
    <${ErrorLine} error=${error} />
  </form>`;
}

/** The exec page (`#/exec`, `#/exec/<task id>`). */
export function Exec({ task }: { task?: string | undefined }) {
  const [before, setBefore] = useState<number[]>([]);
  const cursor = before.at(-1);
  const list = useLoad(() => get<TaskListReply>(`/tasks${qs({ before: cursor, limit: 20 })}`), [cursor], 5000);
  const open = (id: string) => {
    location.hash = `#/exec/${id}`;
  };
  return html`<section aria-labelledby="exec-h">
    <h1 id="exec-h">Exec</h1>
    ${
      can('operator')
        ? html`<${ExecForm} onStarted=${(id: string) => {
            open(id);
            void list.reload();
          }} />`
        : html`<p class="note">Running commands needs the operator role; here are the tasks run so far.</p>`
    }
    ${task ? html`<${TaskView} key=${task} id=${task} onEnded=${list.reload} />` : ''}
    <section aria-labelledby="tasks-h">
      <h2 id="tasks-h">Recent tasks</h2>
      <${ErrorLine} error=${list.error} />
      <table class="grid" id="tasks"><thead><tr><th>Task</th><th>When</th><th>Who</th><th>Target</th><th>What</th><th>State</th><th class="num">Boards</th><th class="num">Failed</th></tr></thead>
      <tbody>${(list.data?.tasks ?? []).map(
        (
          t,
        ) => html`<tr key=${t.id} aria-current=${t.id === task ? 'true' : undefined}><td><a href=${`#/exec/${t.id}`}><code>${t.id.slice(0, 8)}</code></a></td><td><${Time} at=${t.at} /></td><td>${t.who}</td><td><code>${t.target}</code></td>
          <td>${t.steps.map((s) => s.command ?? (s.command_content ?? '').split('\n')[0]?.slice(0, 60)).join('; ')}</td><td><${RunBadge} state=${t.state} /></td><td class="num">${t.summary.nodes}</td><td class="num">${t.summary.failed}</td></tr>`,
      )}</tbody></table>
      <nav class="pager" aria-label="task pages">
        <button type="button" disabled=${before.length === 0} onClick=${() => setBefore(before.slice(0, -1))}>Newer</button>
        <button type="button" disabled=${!list.data?.next} onClick=${() => list.data?.next && setBefore([...before, list.data.next])}>Older</button>
      </nav>
    </section>
  </section>`;
}
