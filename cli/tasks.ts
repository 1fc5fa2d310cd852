/**
 * What `muster exec` and `muster task` share (docs/exec.md "CLI"): submitting a task, following
 * its event stream (GET /api/v1/tasks/:id/events) with one `node | line` per output line, the
 * summary table, and Ctrl-C as a kill of the task.
 */
import type { NodeResult, TaskBody, TaskLine, TaskRecord } from '../common/api/tasks.js';
import { checkSteps } from '../common/exec-dag.js';
import { loadUndici } from '../common/undici.js';
import { api, CliError, cliToken } from './client.js';
import { oneLine, table } from './format.js';

/** Exit code of a task that ended with a node not done (failed, killed, timed out, skipped). */
export const EXIT_TASK_FAILED = 1;

/** Most reconnections of one follow when the stream breaks before the summary. */
const MAX_RECONNECTS = 5;

/** A duration in ms as `1.2s`, `350ms`, `2m03s`. */
export function shortDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}

/** The summary table: NODE, STATE, EXIT, DURATION, MESSAGE, then the counts. */
export function renderSummary(t: TaskRecord): string {
  const rows = (t.results ?? []).map((r: NodeResult) => [
    r.node,
    r.state,
    r.exit_code ?? '-',
    shortDuration(r.duration_ms),
    oneLine(r.message).slice(0, 120),
  ]);
  const s = t.summary;
  return `${table(['NODE', 'STATE', 'EXIT', 'DURATION', 'MESSAGE'], rows)}\n\ntask ${t.id} ${t.state}: ${s.nodes} node${s.nodes === 1 ? '' : 's'}, ${s.done} done, ${s.failed} failed, ${s.skipped} skipped`;
}

/** One live line as printed: `1-3-0 | text` (stderr lines go to stderr). */
export function formatLine(l: Pick<TaskLine, 'node' | 'line'>, width = 0): string {
  return `${l.node.padEnd(width)} | ${l.line}`;
}

/**
 * Checks the steps as the manager will (common/exec-dag.ts) so a bad file fails before it is sent.
 * @throws CliError naming the step
 */
export function checkBody(body: TaskBody): void {
  const bad = checkSteps(body.steps);
  if (bad) throw new CliError(`${bad.field}: ${bad.message}`);
}

/** POSTs a task; returns its record. */
export async function submitTask(base: string, body: TaskBody): Promise<TaskRecord> {
  checkBody(body);
  return (await api<{ task: TaskRecord }>(base, 'POST', '/api/v1/tasks', body)).task;
}

/** Parses server-sent events from chunks; calls `on(event, data)` per complete event. */
export class SseParser {
  private buf = '';
  constructor(private readonly on: (event: string, data: string) => void) {}

  push(chunk: string): void {
    this.buf += chunk;
    for (let i = this.buf.indexOf('\n\n'); i >= 0; i = this.buf.indexOf('\n\n')) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) this.on(event, data.join('\n'));
    }
  }
}

/** What following a task prints. */
export interface FollowOptions {
  /** Called per live line (default: printed as `node | line`). */
  onLine?: (l: TaskLine) => void;
  /** Lines after this seq (default 0: all the manager still holds). */
  since?: number;
  /** Width the node column is padded to. */
  nodeWidth?: number;
}

/**
 * Follows a task's event stream until its summary; reconnects from the last line seen when the
 * stream breaks (at most 5 times), then reads the record.
 * @returns the task with its results
 * @throws CliError when the manager cannot be reached or refuses (401/403/404)
 */
export async function followTask(base: string, id: string, o: FollowOptions = {}): Promise<TaskRecord> {
  let since = o.since ?? 0;
  const width = o.nodeWidth ?? 0;
  const print =
    o.onLine ?? ((l: TaskLine) => (l.stream === 'stderr' ? console.error : console.log)(formatLine(l, width)));
  for (let attempt = 0; attempt <= MAX_RECONNECTS; attempt++) {
    let summary: TaskRecord | null = null;
    const parser = new SseParser((event, data) => {
      if (event === 'line') {
        const l = JSON.parse(data) as TaskLine;
        since = Math.max(since, l.seq);
        print(l);
      } else if (event === 'dropped') {
        const d = JSON.parse(data) as { lines: number };
        console.error(`muster: ${d.lines} earlier output lines are no longer held by the manager`);
      } else if (event === 'summary') summary = JSON.parse(data) as TaskRecord;
    });
    const token = cliToken();
    try {
      const { request } = await loadUndici();
      const res = await request(`${base}/api/v1/tasks/${encodeURIComponent(id)}/events?since=${since}`, {
        method: 'GET',
        headers: { accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        headersTimeout: 10_000,
        bodyTimeout: 60_000,
      });
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        let msg = `HTTP ${res.statusCode}`;
        try {
          msg = (JSON.parse(text) as { message?: string }).message ?? msg;
        } catch {
          // not JSON
        }
        if (res.statusCode === 503 && attempt < MAX_RECONNECTS) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        throw new CliError(msg, res.statusCode === 404 ? 4 : res.statusCode === 401 || res.statusCode === 403 ? 5 : 1);
      }
      res.body.setEncoding('utf8');
      for await (const chunk of res.body) parser.push(chunk as string);
    } catch (err) {
      if (err instanceof CliError) throw err;
      if (attempt === MAX_RECONNECTS) {
        const e = err as Error & { code?: string };
        throw new CliError(`lost the task's event stream from ${base} (${e.code ?? e.name}: ${e.message})`, 3);
      }
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (summary) return summary;
  }
  return (await api<{ task: TaskRecord }>(base, 'GET', `/api/v1/tasks/${encodeURIComponent(id)}`)).task;
}

/**
 * Ctrl-C while a task runs: the first kills the task (POST /kill) and keeps following to its
 * summary; a second leaves at once (exit 130). Returns the function that removes the handler.
 */
export function killOnInterrupt(base: string, id: string): () => void {
  let asked = false;
  const onInt = () => {
    if (asked) process.exit(130);
    asked = true;
    process.stderr.write(`\nmuster: killing task ${id} (Ctrl-C again to leave it running)\n`);
    api(base, 'POST', `/api/v1/tasks/${encodeURIComponent(id)}/kill`, {}).catch((err: Error) =>
      process.stderr.write(`muster: kill failed: ${err.message}\n`),
    );
  };
  process.on('SIGINT', onInt);
  return () => process.off('SIGINT', onInt);
}

/**
 * Runs a task as `muster exec` and `muster task run` do: submit, follow (lines unless `json`),
 * print the summary (or the record as JSON).
 * @throws CliError with EXIT_TASK_FAILED when the task did not end `done`
 */
export async function runTask(base: string, body: TaskBody, json: boolean): Promise<void> {
  const task = await submitTask(base, body);
  if (!json) {
    console.error(
      `task ${task.id}: ${task.nodes.length} node${task.nodes.length === 1 ? '' : 's'} (${task.nodes.slice(0, 8).join(', ')}${task.nodes.length > 8 ? ', …' : ''}), ${task.batch_size} at a time`,
    );
  }
  const stop = killOnInterrupt(base, task.id);
  let end: TaskRecord;
  try {
    const width = Math.max(...task.nodes.map((n) => n.length));
    end = await followTask(base, task.id, json ? { onLine: () => {} } : { nodeWidth: width });
  } finally {
    stop();
  }
  if (json) console.log(JSON.stringify(end, null, 2));
  else console.log(`\n${renderSummary(end)}`);
  if (end.state !== 'done') {
    const s = end.summary;
    throw new CliError(
      `task ${end.id} ${end.state}: ${s.nodes - s.done} of ${s.nodes} node${s.nodes === 1 ? '' : 's'} did not succeed`,
      EXIT_TASK_FAILED,
    );
  }
}
