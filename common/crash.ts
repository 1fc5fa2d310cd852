/**
 * What a daemon does with an error nobody caught (docs/operations.md "systemd units": the units
 * restart a daemon that exits non-zero).
 *
 * The rule:
 * - An **unhandled promise rejection** is a bug in one piece of asynchronous work (a report, a
 *   deploy step, a collector run) whose failure was not awaited. Node has already unwound that
 *   work; the process state is otherwise intact. It is logged at `error` with its message and
 *   stack, counted in `muster_<daemon>_uncaught_total{kind="unhandled_rejection"}`, and the
 *   daemon **keeps serving**: one lost report must not take down a board's workloads supervision.
 * - An **uncaught exception** was thrown out of an event handler or a timer: the code that threw
 *   it stopped half-way, and what it was changing (a socket, a record, a lock) may be left
 *   inconsistent. It is logged at `fatal` with its message and stack, counted with
 *   `kind="uncaught_exception"`, and the daemon **exits with status 70** (EX_SOFTWARE); systemd
 *   restarts it. The agent's workloads survive that restart and are re-adopted
 *   (docs/operations.md "Agent restarts never stop workloads").
 *
 * Only the error's name, message, code and stack are logged: never the error's other properties
 * (an undici or dockerode error may carry request headers, hence a bearer token).
 */
import type { Logger } from './log.js';

/** Exit status after an uncaught exception (sysexits.h EX_SOFTWARE: internal software error). */
export const CRASH_EXIT_CODE = 70;

/** The two kinds counted in `muster_<daemon>_uncaught_total{kind}`. */
export type CrashKind = 'uncaught_exception' | 'unhandled_rejection';

/** A counter with one `kind` label (a prom-client Counter fits). */
export interface CrashCounter {
  inc(labels: { kind: CrashKind }): void;
}

/** Options of {@link installCrashHandlers}. */
export interface CrashOptions {
  /** Counts each event; typically `muster_<daemon>_uncaught_total` of the daemon's registry. */
  counter?: CrashCounter;
  /** Ends the process; default `process.exit`. Tests replace it. */
  exit?: (code: number) => void;
  /** Where the handlers are installed; default `process`. Tests pass an EventEmitter. */
  target?: NodeJS.EventEmitter;
}

/** Longest stack logged, characters (a deep async stack is still useful in its first lines). */
const MAX_STACK = 8000;

/**
 * The loggable part of a thrown value: name, message, code and stack of an Error (stack bounded),
 * or the value's string form. Never the error's own enumerable properties.
 */
export function describeThrown(err: unknown): { name: string; message: string; code?: string; stack?: string } {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      name: err.name,
      message: err.message,
      ...(typeof code === 'string' ? { code } : {}),
      ...(err.stack ? { stack: err.stack.slice(0, MAX_STACK) } : {}),
    };
  }
  let text: string;
  try {
    text = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    text = String(err);
  }
  return { name: typeof err, message: text.slice(0, 1000) };
}

/**
 * Installs the daemon's handlers for `uncaughtException` and `unhandledRejection` (see the module
 * comment for the rule: log and keep serving on a rejection, log and exit 70 on an exception).
 * Installing twice for the same target is a no-op.
 * @param log the daemon's logger
 * @param name the daemon's name (`agent`, `manager`), logged as `daemon`
 * @returns a function that removes the handlers again
 */
export function installCrashHandlers(log: Logger, name: string, opts: CrashOptions = {}): () => void {
  const target = opts.target ?? process;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const installed = installedOn.get(target);
  if (installed) return installed;
  const onException = (err: unknown, origin?: string): void => {
    opts.counter?.inc({ kind: 'uncaught_exception' });
    log.fatal(
      { daemon: name, kind: 'uncaught_exception', origin, err: describeThrown(err) },
      `uncaught exception in the ${name}: a bug; exiting with ${CRASH_EXIT_CODE} (systemd restarts it)`,
    );
    exit(CRASH_EXIT_CODE);
  };
  const onRejection = (reason: unknown): void => {
    opts.counter?.inc({ kind: 'unhandled_rejection' });
    log.error(
      { daemon: name, kind: 'unhandled_rejection', err: describeThrown(reason) },
      `unhandled promise rejection in the ${name}: a bug; the ${name} keeps serving`,
    );
  };
  target.on('uncaughtException', onException);
  target.on('unhandledRejection', onRejection);
  const remove = (): void => {
    target.off('uncaughtException', onException);
    target.off('unhandledRejection', onRejection);
    installedOn.delete(target);
  };
  installedOn.set(target, remove);
  return remove;
}

const installedOn = new WeakMap<object, () => void>();
