/**
 * `muster task` (docs/exec.md "CLI"): multi-step tasks from a YAML file, and the tasks the manager
 * keeps.
 *   muster task run steps.yaml --target T [--parallel] [--batch N|P%] [--batch-wait D] [--timeout D] [--fail-fast] [--json]
 *   muster task list [--limit N] [--before ID] [--json]
 *   muster task show ID [--json]          per node: state, exit code, duration, and each step
 *   muster task logs ID [-f]              the output tails kept per node and step; -f follows live
 *   muster task kill ID [--node N]        the whole task, or one node's part
 *   muster task file ID --node N --step K [-o FILE]   a generate_file fetched back
 *
 * The YAML file is a list of steps (run in order, or as a DAG when steps name `depends_on`), or a
 * mapping `{ steps: [...], parallel: true }` (all at once). Step keys: name, command_content (or
 * `run`), command_type (or `type`), command, args, kwargs, env_vars (or `env` as a mapping),
 * depends_on, timeout.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import YAML from 'yaml';
import type { TaskBody, TaskFileReply, TaskListReply, TaskRecord } from '../../common/api/tasks.js';
import type { StepSpec } from '../../common/exec.js';
import { api, CliError, managerUrl } from '../client.js';
import { ago, table } from '../format.js';
import { id as idOption, limit, moreHint } from '../list.js';
import { followTask, formatLine, renderSummary, runTask } from '../tasks.js';
import { batchOption, durationOption, targetOption } from './exec.js';

const STEP_KEYS = new Set([
  'name',
  'command_content',
  'run',
  'command_type',
  'type',
  'command',
  'args',
  'kwargs',
  'env_vars',
  'env',
  'depends_on',
  'timeout',
]);

/**
 * The steps (and `parallel`) of a task file's text.
 * @throws CliError naming the step and key that is wrong
 */
export function parseTaskFile(text: string, file = 'task file'): { steps: StepSpec[]; parallel: boolean } {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new CliError(`${file} is not valid YAML: ${(err as Error).message}`);
  }
  let parallel = false;
  let list: unknown = doc;
  if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
    const o = doc as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k !== 'steps' && k !== 'parallel') throw new CliError(`${file}: unknown key ${k} (steps, parallel)`);
    }
    parallel = o.parallel === true;
    list = o.steps;
  }
  if (!Array.isArray(list) || list.length === 0) {
    throw new CliError(`${file}: expected a list of steps, or { steps: [...], parallel: true }`);
  }
  const steps = list.map((raw, n): StepSpec => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      throw new CliError(`${file}: step ${n} is not a mapping`);
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (!STEP_KEYS.has(k)) throw new CliError(`${file}: step ${n}: unknown key ${k}`);
    }
    const str = (k: string, v: unknown): string => {
      if (typeof v !== 'string' && typeof v !== 'number') throw new CliError(`${file}: step ${n}: ${k} must be text`);
      return String(v);
    };
    const strs = (k: string, v: unknown): string[] => {
      if (!Array.isArray(v)) throw new CliError(`${file}: step ${n}: ${k} must be a list`);
      return v.map((x) => str(k, x));
    };
    const s: StepSpec = {};
    if (r.name !== undefined) s.name = str('name', r.name);
    const content = r.command_content ?? r.run;
    if (content !== undefined) s.command_content = str('command_content', content);
    const type = r.command_type ?? r.type;
    if (type !== undefined) s.command_type = str('command_type', type);
    if (r.command !== undefined) s.command = str('command', r.command);
    if (r.args !== undefined) s.args = strs('args', r.args);
    if (r.kwargs !== undefined) {
      if (!r.kwargs || typeof r.kwargs !== 'object') throw new CliError(`${file}: step ${n}: kwargs must be a mapping`);
      s.kwargs = Object.fromEntries(Object.entries(r.kwargs).map(([k, v]) => [k, str(`kwargs.${k}`, v)]));
    }
    const env = [
      ...(r.env_vars !== undefined ? strs('env_vars', r.env_vars) : []),
      ...(r.env && typeof r.env === 'object' && !Array.isArray(r.env)
        ? Object.entries(r.env).map(([k, v]) => `${k}=${str(`env.${k}`, v)}`)
        : []),
    ];
    if (env.length > 0) s.env_vars = env;
    if (r.depends_on !== undefined) {
      s.depends_on = typeof r.depends_on === 'string' ? [r.depends_on] : strs('depends_on', r.depends_on);
    }
    if (r.timeout !== undefined) s.timeout = typeof r.timeout === 'number' ? r.timeout : str('timeout', r.timeout);
    return s;
  });
  return { steps, parallel };
}

/** The `muster task list` table. */
export function renderTasks(ts: TaskRecord[], now = Date.now()): string {
  if (ts.length === 0) return 'no tasks yet';
  return table(
    ['ID', 'WHEN', 'WHO', 'TARGET', 'NODES', 'STATE', 'DONE', 'FAILED', 'SKIPPED'],
    ts.map((t) => [
      t.id.slice(0, 8),
      ago(t.at, now),
      t.who,
      t.target,
      t.nodes.length,
      t.state,
      t.summary.done,
      t.summary.failed,
      t.summary.skipped,
    ]),
  );
}

/** `muster task show`: the summary table, then each node's steps. */
export function renderTask(t: TaskRecord): string {
  const out = [
    `task ${t.id} by ${t.who} at ${t.at}: target ${t.target}, ${t.steps.length} step${t.steps.length === 1 ? '' : 's'}, batch ${t.batch_size}${t.fail_fast ? ', fail_fast' : ''}`,
    '',
    renderSummary(t),
  ];
  for (const r of t.results ?? []) {
    if (r.steps.length === 0) continue;
    out.push('', `${r.node}:`);
    out.push(
      table(
        ['STEP', 'NAME', 'STATE', 'EXIT', 'BEGIN', 'END', 'MESSAGE'],
        r.steps.map((s) => [s.step, s.name, s.state, s.exit_code ?? s.signal ?? '-', s.begin, s.end, s.message]),
      ),
    );
    for (const f of r.files) {
      out.push(
        `  file ${f.path} (step ${f.step}): ${f.kept ? `${f.size} bytes, muster task file ${t.id} --node ${r.node} --step ${f.step}` : f.message}`,
      );
    }
  }
  return out.join('\n');
}

/** Full task id from a unique prefix of the newest tasks (as `task list` shows 8 characters). */
async function fullId(base: string, id: string): Promise<string> {
  if (id.length >= 32) return id;
  const r = await api<TaskListReply>(base, 'GET', '/api/v1/tasks?limit=1000');
  const hits = r.tasks.filter((t) => t.id.startsWith(id));
  if (hits.length === 1) return (hits[0] as TaskRecord).id;
  throw new CliError(hits.length === 0 ? `no task ${id}` : `${id} is the start of ${hits.length} task ids`, 4);
}

/** Registers `task run|list|show|logs|kill|file` on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);
  const t = p.command('task').description('multi-step tasks (a YAML list of steps) and the tasks the manager keeps');

  t.command('run')
    .description('run the steps of a YAML file on every node a target selects, with live output')
    .argument('<file>', 'YAML: a list of steps, or { steps: [...], parallel: true }')
    .requiredOption('--target <target>', "nodes: 1-3-0, '1-*-0', box=1, board_type=GPU, all", targetOption)
    .option('--parallel', 'run all steps at once (the seed executor ansync=true)')
    .option('--batch <n|pct>', 'nodes at a time: 10, or 25% of the target', batchOption)
    .option('--batch-wait <duration>', 'pause after a node finishes before the next starts', durationOption)
    .option('--timeout <duration>', 'time limit of the whole task', durationOption)
    .option('--fail-fast', 'start no further node after the first failure')
    .option('--json', 'print the finished task as JSON')
    .action(
      async (
        file: string,
        o: {
          target: string;
          parallel?: boolean;
          batch?: number | string;
          batchWait?: string;
          timeout?: string;
          failFast?: boolean;
          json?: boolean;
        },
      ) => {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (err) {
          throw new CliError(`${file}: ${(err as Error).message}`);
        }
        const { steps, parallel } = parseTaskFile(text, file);
        const body: TaskBody = {
          target: o.target,
          steps,
          ...(parallel || o.parallel ? { async: true } : {}),
          ...(o.batch !== undefined ? { batch: o.batch } : {}),
          ...(o.batchWait !== undefined ? { batch_wait: o.batchWait } : {}),
          ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
          ...(o.failFast ? { fail_fast: true } : {}),
        };
        await runTask(base(), body, o.json === true);
      },
    );

  t.command('list')
    .description('the tasks, newest first')
    .option('--limit <n>', 'tasks per page (default 50)', limit)
    .option('--before <id>', 'the page after the `more:` line', idOption)
    .option('--json', 'print { tasks, next } as JSON')
    .action(async (o: { limit?: number; before?: number; json?: boolean }) => {
      const q = new URLSearchParams();
      if (o.limit !== undefined) q.set('limit', String(o.limit));
      if (o.before !== undefined) q.set('before', String(o.before));
      const r = await api<TaskListReply>(base(), 'GET', `/api/v1/tasks${q.size ? `?${q}` : ''}`);
      if (o.json) {
        console.log(JSON.stringify(r, null, 2));
        return;
      }
      console.log(renderTasks(r.tasks));
      if (r.next !== null) console.log(`\n${moreHint(['task', 'list'], o.limit ? ['--limit', o.limit] : [], r.next)}`);
    });

  t.command('show')
    .description('one task: per node state, exit code, duration, and each step')
    .argument('<id>', 'task id (or its first characters)')
    .option('--json', 'print the task as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const full = await fullId(base(), id);
      const r = await api<{ task: TaskRecord }>(base(), 'GET', `/api/v1/tasks/${full}`);
      console.log(o.json ? JSON.stringify(r.task, null, 2) : renderTask(r.task));
    });

  t.command('logs')
    .description("a task's output: the tails kept per node and step; -f follows a running task live")
    .argument('<id>', 'task id (or its first characters)')
    .option('-f, --follow', 'stream the live lines until the task ends')
    .action(async (id: string, o: { follow?: boolean }) => {
      const full = await fullId(base(), id);
      if (o.follow) {
        const end = await followTask(base(), full);
        console.log(`\n${renderSummary(end)}`);
        return;
      }
      const r = await api<{ task: TaskRecord }>(base(), 'GET', `/api/v1/tasks/${full}`);
      const width = Math.max(0, ...r.task.nodes.map((n) => n.length));
      for (const res of r.task.results ?? []) {
        for (const s of res.steps) {
          const cut = s.stdout_cut_bytes + s.stderr_cut_bytes;
          if (cut > 0)
            console.log(formatLine({ node: res.node, line: `[${s.name}: first ${cut} bytes not kept]` }, width));
          for (const [stream, text] of [
            ['stdout', s.stdout_tail],
            ['stderr', s.stderr_tail],
          ] as const) {
            for (const line of text.split('\n').filter((l, i, a) => l !== '' || i < a.length - 1)) {
              (stream === 'stderr' ? console.error : console.log)(formatLine({ node: res.node, line }, width));
            }
          }
        }
      }
    });

  t.command('kill')
    .description('kill a running task (operator), or one node’s part of it')
    .argument('<id>', 'task id (or its first characters)')
    .option('--node <id>', "only this node's part")
    .action(async (id: string, o: { node?: string }) => {
      const full = await fullId(base(), id);
      const r = await api<{ task: TaskRecord }>(
        base(),
        'POST',
        `/api/v1/tasks/${full}/kill`,
        o.node ? { node: o.node } : {},
      );
      console.log(`task ${r.task.id}: kill sent${o.node ? ` to ${o.node}` : ''}`);
    });

  t.command('file')
    .description('a generate_file a command-set step produced, fetched back by the manager')
    .argument('<id>', 'task id (or its first characters)')
    .requiredOption('--node <id>', 'the node')
    .requiredOption('--step <n>', 'the step index')
    .option('-o, --output <file>', 'write it here (default: stdout)')
    .action(async (id: string, o: { node: string; step: string; output?: string }) => {
      const full = await fullId(base(), id);
      const q = new URLSearchParams({ node: o.node, step: o.step });
      const r = await api<TaskFileReply>(base(), 'GET', `/api/v1/tasks/${full}/file?${q}`);
      const content = Buffer.from(r.file.content_b64, 'base64');
      if (o.output) {
        writeFileSync(o.output, content);
        console.log(`${r.file.path} from ${r.file.node}: ${content.length} bytes → ${o.output}`);
      } else process.stdout.write(content);
    });
}
