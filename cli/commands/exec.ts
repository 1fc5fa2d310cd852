/**
 * `muster exec` (docs/exec.md "CLI"): one command on every node a target selects, with live output
 * and a summary table; exits 1 when any node did not succeed.
 *   muster exec --target 'board_type=GPU' [--batch 25%] [--batch-wait 5s] [--timeout 30s] [--fail-fast]
 *               [--type bash] [--env K=V]... [--json] -- nvidia-smi -L
 *   muster exec --command screenshot --target 1-1-0 [--kwarg K=V]... -- arg1
 * Without --command the words after `--` are the script (one word is taken as it is, several are
 * quoted for the shell); with it they are the entry's arguments.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { TaskBody } from '../../common/api/tasks.js';
import type { StepSpec } from '../../common/exec.js';
import { parseTarget, TargetError } from '../../common/target.js';
import { CliError, managerUrl } from '../client.js';
import { shellWord } from '../list.js';
import { runTask } from '../tasks.js';

/** `--target`: checked here with the manager's grammar (common/target.ts). */
export function targetOption(v: string): string {
  try {
    parseTarget(v);
  } catch (err) {
    if (err instanceof TargetError) throw new InvalidArgumentError(err.message);
    throw err;
  }
  return v;
}

/** `--batch`: a number of nodes or a share (`25%`). */
export function batchOption(v: string): number | string {
  if (/^[1-9]\d*$/.test(v)) return Number(v);
  if (/^\d+(?:\.\d+)?%$/.test(v)) return v;
  throw new InvalidArgumentError('expected a number of nodes (10) or a share of the target (25%)');
}

/** `--timeout`, `--batch-wait`: a duration text the manager reads (30s, 5m, 1h30m, 500ms, or seconds). */
export function durationOption(v: string): string {
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d)?)+$/.test(v)) {
    throw new InvalidArgumentError('expected a duration: 30 (seconds), 500ms, 30s, 5m, 1h30m');
  }
  return v;
}

/** Collects a repeated `K=V` option. */
export function kv(v: string, prev: string[] = []): string[] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(v)) throw new InvalidArgumentError('expected NAME=value');
  return [...prev, v];
}

interface ExecOptions {
  target: string;
  command?: string;
  type?: string;
  env?: string[];
  kwarg?: string[];
  batch?: number | string;
  batchWait?: string;
  timeout?: string;
  failFast?: boolean;
  json?: boolean;
}

/** The task body of a `muster exec` call. */
export function execBody(words: string[], o: ExecOptions): TaskBody {
  let step: StepSpec;
  if (o.command !== undefined) {
    step = {
      command: o.command,
      ...(words.length > 0 ? { args: words } : {}),
      ...(o.kwarg?.length
        ? { kwargs: Object.fromEntries(o.kwarg.map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)])) }
        : {}),
    };
  } else {
    if (words.length === 0) throw new CliError('give the command after --, e.g. muster exec --target all -- uptime');
    step = { command_content: words.length === 1 ? (words[0] as string) : words.map(shellWord).join(' ') };
    if (o.type) step.command_type = o.type;
  }
  if (o.env?.length) step.env_vars = o.env;
  return {
    target: o.target,
    steps: [step],
    ...(o.batch !== undefined ? { batch: o.batch } : {}),
    ...(o.batchWait !== undefined ? { batch_wait: o.batchWait } : {}),
    ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    ...(o.failFast ? { fail_fast: true } : {}),
  };
}

/** Registers `exec` on `p`. */
export function register(p: Command): void {
  p.command('exec')
    .description('run a command on every node a target selects, with live output, then a summary')
    .argument('[words...]', 'the command (after --), or the arguments of --command')
    .requiredOption(
      '--target <target>',
      "nodes: 1-3-0, '1-*-0', box=1, board_type=GPU, label.rack=A, all",
      targetOption,
    )
    .option('--command <name>', 'run this command-set entry (muster commands list) instead of a script')
    .option('--type <type>', 'interpreter of the script: sh (default), bash, python3')
    .option('--env <NAME=value>', 'an environment variable of the command (repeatable)', kv)
    .option('--kwarg <NAME=value>', 'a keyword argument of --command (repeatable)', kv)
    .option('--batch <n|pct>', 'nodes at a time: 10, or 25% of the target (a sliding window)', batchOption)
    .option('--batch-wait <duration>', 'pause after a node finishes before the next starts', durationOption)
    .option('--timeout <duration>', 'time limit of the whole task (default exec.task_timeout_ms)', durationOption)
    .option('--fail-fast', 'start no further node after the first failure')
    .option('--json', 'print the finished task with its results as JSON instead of lines and a table')
    .action(async (words: string[], o: ExecOptions) => {
      await runTask(managerUrl(p.opts().manager), execBody(words, o), o.json === true);
    });
}
