/**
 * What follows from the task runner's events (docs/exec.md "History and retention"): the task's
 * row written when it is accepted and when it ends, each node's result when its part ends, the
 * generate_files fetched back; and the history — one `exec` entry per task (node null: who ran it,
 * the target, the command; result = nodes that did not succeed) and one per node (seed 000 查看节点
 * 运行记录: node, date, time, operation, arguments, result = the exit code).
 */
import type { NodeResult, TaskRecord } from '../../common/api/tasks.js';
import type { StepSpec } from '../../common/exec.js';
import type { Store } from '../store/store.js';
import type { FetchedFile, TaskRunner } from './runner.js';

/** Longest command text kept in a history entry, characters. */
const MAX_COMMAND_TEXT = 200;

/** One line saying what a task runs: the script or command of a single step, else the step names. */
export function describeSteps(steps: readonly StepSpec[]): string {
  const one = (s: StepSpec) =>
    s.command !== undefined ? [s.command, ...(s.args ?? [])].join(' ') : (s.command_content ?? '').trim();
  const text = steps.length === 1 ? one(steps[0] as StepSpec) : steps.map((s, n) => s.name ?? `step ${n}`).join(', ');
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > MAX_COMMAND_TEXT ? `${flat.slice(0, MAX_COMMAND_TEXT - 1)}…` : flat;
}

/** The history arguments of a task. */
function argsOf(t: TaskRecord): Record<string, unknown> {
  return {
    task: t.id,
    target: t.target,
    command: describeSteps(t.steps),
    steps: t.steps.length,
    nodes: t.nodes.length,
    ...(t.batch !== null ? { batch: t.batch } : {}),
    ...(t.fail_fast ? { fail_fast: true } : {}),
  };
}

/** Subscribes the store and the history to `runner`'s events. */
export function wireTasks(
  runner: Pick<TaskRunner, 'on'>,
  store: Pick<Store, 'tasks' | 'addHistory' | 'finishHistory'>,
): void {
  runner.on('task', (t: TaskRecord) => {
    store.tasks.save(t);
    store.addHistory({
      at: Date.parse(t.at),
      node: null,
      kind: 'operation',
      operation: 'exec',
      args: argsOf(t),
      who: t.who,
      ref: t.id,
    });
  });
  runner.on('node', (t: TaskRecord, r: NodeResult) => {
    store.tasks.saveNode(t, r);
    store.addHistory({
      at: Date.parse(r.end ?? t.at),
      node: r.node,
      kind: 'operation',
      operation: 'exec',
      args: { task: t.id, target: t.target, command: describeSteps(t.steps) },
      result: r.exit_code,
      message: r.message ? `${r.state}: ${r.message}` : r.state,
      who: t.who,
      ref: `${t.id}/${r.node}`,
    });
  });
  runner.on('file', (t: TaskRecord, f: FetchedFile) => store.tasks.saveFile(t, f));
  runner.on('finished', (t: TaskRecord) => {
    store.tasks.save(t);
    store.finishHistory(t.id, t.summary.nodes - t.summary.done, `${t.state}: ${t.message}`);
  });
}
