/**
 * A task's steps checked and turned into a plan before anything runs (docs/exec.md "Task format",
 * "Run modes"): names given to unnamed steps (`<task id>-<n>`), duplicate names, unknown
 * dependencies and cycles refused naming them, the command type or command-set entry resolved,
 * env_vars checked, timeouts parsed. Cycles are found by common/exec-dag.ts, as the manager finds
 * them before sending. Pure but for the interpreter lookup (cached) and the
 * command-set entry reads.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { CommandEntry } from '../../common/exec.js';
import { LINUX_COMMAND_TYPES, type StepSpec } from '../../common/exec.js';
import { findCycle } from '../../common/exec-dag.js';
import { parseStepTimeout } from './duration.js';

/** How a task's steps are ordered. */
export type RunMode = 'sequence' | 'async' | 'dag';

/** One step as it will run. */
export interface PlannedStep {
  step: number;
  name: string;
  /** `sh`, `bash`, `python3`, or `command` for a command-set entry. */
  command_type: string;
  /** The interpreter's absolute path (script steps) or the entry's file (command steps). */
  program: string;
  /** The script text (script steps); null for a command-set entry. */
  content: string | null;
  /** The command-set entry (command steps). */
  entry: (CommandEntry & { file: string }) | null;
  /** argv after the program (script file or entry args and `--key=value` kwargs). */
  args: string[];
  /** `NAME=value` assignments added to the environment. */
  env: string[];
  /** Indexes of the steps this one waits for. */
  deps: number[];
  timeoutMs: number;
}

/** A checked task. */
export interface Plan {
  mode: RunMode;
  steps: PlannedStep[];
}

/** A task refused before it ran; `message` names what is wrong (the 400 of the seed API). */
export class PlanError extends Error {
  constructor(
    message: string,
    /** `raw_refused` when exec.allow_raw is false, else `bad_request`. */
    readonly reason: 'bad_request' | 'raw_refused' | 'unknown_command' = 'bad_request',
  ) {
    super(message);
    this.name = 'PlanError';
  }
}

/** What planning needs from the board. */
export interface PlanContext {
  /** Default step timeout, ms (exec.step_timeout). */
  stepTimeoutMs: number;
  /** exec.allow_raw. */
  allowRaw: boolean;
  /** The command-set entry `name` with its file, or null when there is none. */
  command(name: string): (CommandEntry & { file: string }) | null;
  /** The absolute path of interpreter `name`, or null when it is not installed. */
  interpreter?(name: string): string | null;
}

const WINDOWS_TYPES = new Set(['cmd', 'powershell', 'pwsh', 'ps1', 'bat']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const found = new Map<string, string | null>();

/** The first executable `name` in $PATH (or the usual system directories), cached. */
export function findInterpreter(name: string): string | null {
  const hit = found.get(name);
  if (hit !== undefined) return hit;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/bin', '/usr/bin', '/bin'];
  let out: string | null = null;
  for (const d of dirs) {
    if (!d || !path.isAbsolute(d)) continue;
    try {
      accessSync(path.join(d, name), constants.X_OK);
      out = path.join(d, name);
      break;
    } catch {
      // not here
    }
  }
  found.set(name, out);
  return out;
}

/**
 * Checks `steps` of task `taskId` and plans them.
 * @param async the seed's `ansync=true`: all steps at once (ignored when any step names depends_on)
 * @throws PlanError naming the step and the problem: duplicate names, unknown dependencies, a
 *   cycle (its steps named), a Windows or unknown command_type, an absent interpreter, neither or
 *   both of command_content / command, an unknown command-set entry or wrong argument count, a raw
 *   command when exec.allow_raw is false, a malformed env var or timeout
 */
export function planTask(taskId: string, steps: readonly StepSpec[], async: boolean, ctx: PlanContext): Plan {
  if (steps.length === 0) throw new PlanError('a task needs at least one step');
  const names = steps.map((s, i) => s.name ?? `${taskId}-${i}`);
  const seen = new Map<string, number>();
  const dups = new Set<string>();
  names.forEach((n, i) => {
    if (seen.has(n)) dups.add(n);
    else seen.set(n, i);
  });
  if (dups.size > 0) throw new PlanError(`duplicate step names: ${[...dups].join(', ')}`);

  const unknown: string[] = [];
  const deps = steps.map((s, i) =>
    (s.depends_on ?? []).map((d) => {
      const j = seen.get(d);
      if (j === undefined) unknown.push(`${names[i]} → ${d}`);
      return j ?? -1;
    }),
  );
  if (unknown.length > 0) throw new PlanError(`unknown dependencies: ${unknown.join(', ')}`);
  const dag = steps.some((s) => (s.depends_on ?? []).length > 0);
  if (dag) {
    const cyc = findCycle(deps);
    if (cyc) throw new PlanError(`dependency cycle: ${[...cyc, cyc[0] as number].map((i) => names[i]).join(' → ')}`);
  }

  const planned = steps.map((s, i) => planStep(s, i, names[i] as string, deps[i] as number[], ctx));
  return { mode: dag ? 'dag' : async ? 'async' : 'sequence', steps: planned };
}

function planStep(s: StepSpec, i: number, name: string, deps: number[], ctx: PlanContext): PlannedStep {
  const where = `step ${i} (${name})`;
  const env = s.env_vars ?? [];
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq <= 0 || !ENV_NAME.test(kv.slice(0, eq)))
      throw new PlanError(`${where}: env_vars entries must be NAME=value, got ${JSON.stringify(kv.slice(0, 64))}`);
  }
  let timeoutMs = ctx.stepTimeoutMs;
  if (s.timeout !== undefined) {
    try {
      timeoutMs = parseStepTimeout(s.timeout);
    } catch (err) {
      throw new PlanError(`${where}: ${(err as Error).message}`);
    }
  }
  const hasContent = s.command_content !== undefined && s.command_content !== '';
  if (s.command !== undefined) {
    if (hasContent) throw new PlanError(`${where}: give command_content or command, not both`);
    const entry = ctx.command(s.command);
    if (!entry)
      throw new PlanError(
        `${where}: no command ${JSON.stringify(s.command)} in this board's command set`,
        'unknown_command',
      );
    const args = s.args ?? [];
    if (entry.argument_count >= 0 && args.length !== entry.argument_count)
      throw new PlanError(
        `${where}: command ${entry.name} takes ${entry.argument_count} arguments, got ${args.length}`,
      );
    const kw = Object.entries(s.kwargs ?? {}).map(([k, v]) => `--${k}=${v}`);
    return {
      step: i,
      name,
      command_type: 'command',
      program: entry.file,
      content: null,
      entry,
      args: [...args, ...kw],
      env,
      deps,
      timeoutMs,
    };
  }
  if (!hasContent) throw new PlanError(`${where}: command_content (or a command-set command) is required`);
  if (!ctx.allowRaw)
    throw new PlanError(
      `${where}: raw commands are refused on this board (exec.allow_raw is false); name a command-set entry with "command"`,
      'raw_refused',
    );
  if (s.kwargs !== undefined) throw new PlanError(`${where}: kwargs apply to command-set entries only`);
  const type = (s.command_type ?? 'sh').toLowerCase();
  if (WINDOWS_TYPES.has(type))
    throw new PlanError(
      `${where}: command_type ${type} is a Windows type; this Linux board runs ${LINUX_COMMAND_TYPES.join(', ')}`,
    );
  if (!(LINUX_COMMAND_TYPES as readonly string[]).includes(type))
    throw new PlanError(
      `${where}: unknown command_type ${JSON.stringify(type)}; this board runs ${LINUX_COMMAND_TYPES.join(', ')}`,
    );
  const program = (ctx.interpreter ?? findInterpreter)(type);
  if (!program) throw new PlanError(`${where}: command_type ${type}: ${type} is not installed on this board`);
  return {
    step: i,
    name,
    command_type: type,
    program,
    content: s.command_content as string,
    entry: null,
    args: s.args ?? [],
    env,
    deps,
    timeoutMs,
  };
}
