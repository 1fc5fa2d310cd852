/**
 * The checks of a task's steps that both sides make before anything runs (docs/exec.md "Task
 * format"): the manager refuses a bad task before its fan-out, the agent before it starts a
 * process, the CLI before it sends one. Pure: no I/O, no clock.
 *
 * - every step has exactly one of `command_content` (a script) and `command` (a command-set entry);
 * - names are unique (a step without a name is `<task id>-<n>`, n from 0, as the seed executor
 *   names them);
 * - every `depends_on` names another step of the task;
 * - the dependencies have no cycle (the cycle found is named, e.g. `a → b → a`).
 */
import type { StepSpec } from './exec.js';

/** Why a task's steps were refused: the field (JSON pointer into the steps) and a message naming the culprits. */
export interface StepsError {
  field: string;
  message: string;
}

/** How the steps of a task run (docs/exec.md "Run modes"). */
export type RunMode = 'sequence' | 'parallel' | 'dag';

/** The name of step `n` of task `taskId`: its own, else `<task id>-<n>`. */
export function stepName(step: Pick<StepSpec, 'name'>, n: number, taskId: string): string {
  return step.name ?? `${taskId}-${n}`;
}

/**
 * How `steps` run: a DAG when any names `depends_on`, else all at once when `async`, else in order.
 */
export function runMode(steps: readonly Pick<StepSpec, 'depends_on'>[], async = false): RunMode {
  if (steps.some((s) => (s.depends_on?.length ?? 0) > 0)) return 'dag';
  return async ? 'parallel' : 'sequence';
}

/**
 * Checks `steps` (see the module header); returns null when they are fine.
 * @param taskId the id unnamed steps are named after (any placeholder when it is not known yet:
 *   then only explicit names can collide with each other)
 */
export function checkSteps(steps: readonly StepSpec[], taskId = 'task'): StepsError | null {
  const names = steps.map((s, n) => stepName(s, n, taskId));
  const index = new Map<string, number>();
  for (const [n, s] of steps.entries()) {
    const hasScript = s.command_content !== undefined;
    const hasCommand = s.command !== undefined;
    if (hasScript === hasCommand) {
      return {
        field: `/steps/${n}`,
        message: `step ${JSON.stringify(names[n])}: give exactly one of command_content (a script) and command (a command-set entry)`,
      };
    }
    const name = names[n] as string;
    const seen = index.get(name);
    if (seen !== undefined) {
      return {
        field: `/steps/${n}/name`,
        message: `duplicate step name ${JSON.stringify(name)} (steps ${seen} and ${n})`,
      };
    }
    index.set(name, n);
  }
  for (const [n, s] of steps.entries()) {
    for (const [k, dep] of (s.depends_on ?? []).entries()) {
      if (!index.has(dep)) {
        return {
          field: `/steps/${n}/depends_on/${k}`,
          message: `step ${JSON.stringify(names[n])} depends on unknown step ${JSON.stringify(dep)}`,
        };
      }
      if (dep === names[n]) {
        return { field: `/steps/${n}/depends_on/${k}`, message: `dependency cycle: ${dep} → ${dep}` };
      }
    }
  }
  const cycle = findCycle(steps.map((s) => (s.depends_on ?? []).map((d) => index.get(d) as number)));
  if (cycle) {
    const first = cycle[0] as number;
    return {
      field: `/steps/${first}/depends_on`,
      message: `dependency cycle: ${[...cycle, first].map((i) => names[i]).join(' → ')}`,
    };
  }
  return null;
}

/**
 * A cycle of the graph `deps` (deps[i] = the nodes i depends on) as the list of its nodes in
 * dependency order, or null. Iterative DFS: a 256-step chain cannot overflow the stack.
 */
export function findCycle(deps: readonly (readonly number[])[]): number[] | null {
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const color = new Array<number>(deps.length).fill(WHITE);
  const parent = new Array<number>(deps.length).fill(-1);
  for (let root = 0; root < deps.length; root++) {
    if (color[root] !== WHITE) continue;
    const stack: [number, number][] = [[root, 0]];
    color[root] = GREY;
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [number, number];
      const [v, k] = top;
      const next = deps[v]?.[k];
      if (next === undefined) {
        color[v] = BLACK;
        stack.pop();
        continue;
      }
      top[1] = k + 1;
      if (color[next] === GREY) {
        // next … v is the cycle: walk the parents back from v to next.
        const cycle = [v];
        for (let u = v; u !== next; ) {
          u = parent[u] as number;
          cycle.push(u);
        }
        return cycle.reverse();
      }
      if (color[next] === WHITE) {
        color[next] = GREY;
        parent[next] = v;
        stack.push([next, 0]);
      }
    }
  }
  return null;
}
