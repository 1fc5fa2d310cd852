/**
 * The agent's task runner (docs/exec.md "The task runner"): tasks of steps run in sequence, all at
 * once, or as a DAG; each step an interpreter on a temp script file (or a command-set entry) in
 * its own process group, with its own timeout, killable; output bounded per step plus a per-task
 * ring of numbered lines for live reading; a pool bounding the steps running at once with a FIFO
 * queue beyond it; `exec.max_requests` bounding the tasks queued or running. Records are kept in
 * the data dir for `exec.keep` (agent/exec/store.ts); a task that was running when the agent
 * stopped or died is marked `interrupted` at the next start and every process it left is killed.
 *
 * Node built-ins only (and prom-client, already loaded by the agent): the agent's RSS budget.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type {
  ExecFileReplyData,
  ExecStatusReplyData,
  StepSpec,
  StepState,
  StepStatus,
  TaskState,
} from '../../common/exec.js';
import type { Logger } from '../../common/log.js';
import { nodeCrypto } from '../../common/node-crypto.js';
import { redactEnvVar } from '../../common/redact.js';
import { RESULT, type ResultCode } from '../deploy/results.js';
import { Counter, Gauge, type Registry } from '../prom.js';
import type { CommandSet } from './commands.js';
import { formatGoDuration, isoLocal } from './duration.js';
import { ExecLog } from './execlog.js';
import { LineRing, LineSplitter, TailBuffer } from './output.js';
import { type Plan, PlanError, type PlannedStep, planTask } from './plan.js';
import { type StepRecord, type TaskRecord, TaskStore } from './store.js';

/** The environment variable every step (and what it starts) carries: its task id. */
export const TASK_MARKER = 'MUSTER_EXEC_TASK';
/** Longest a setTimeout may wait, ms (2^31 - 1). */
const MAX_TIMER_MS = 2_147_483_647;
/** How long an ended task's record and live lines stay in memory before only its file holds them. */
const DEFAULT_LINGER_MS = 60_000;
/** Longest exec_status long poll, ms (common/exec.ts). */
export const MAX_WAIT_MS = 25_000;

/** The runner's bounds and places (the exec.* config keys, docs/configuration.md "exec"). */
export interface RunnerOptions {
  dataDir: string;
  stepTimeoutMs: number;
  keepMs: number;
  killGraceMs: number;
  poolSize: number;
  maxRequests: number;
  maxTasks: number;
  maxOutputBytes: number;
  outputLines: number;
  logMaxBytes: number;
  allowRaw: boolean;
  maxGenerateFileBytes: number;
  commands: CommandSet;
  /** ms an ended task stays in memory (tests shorten it); default 60 s. */
  lingerMs?: number;
  /** The current boot id; default /proc/sys/kernel/random/boot_id. */
  bootId?: string;
}

/** A task submission (the `exec` command's data, or the seed API's POST). */
export interface Submission {
  /** Given by the manager; made (a UUID) when absent. */
  task_id?: string;
  steps: StepSpec[];
  async?: boolean;
  timeout_s?: number;
  /** Who submits it: `manager` or `osreapi`. */
  source: string;
}

/** The answer to a submission. */
export type SubmitResult =
  | { ok: true; id: string; count: number; existed: boolean }
  | { ok: false; result: ResultCode; message: string; reason: string };

/** A failed step as the seed API lists it. */
export interface FailedStep {
  step: number;
  code: number;
  message: string;
}

/** What is kept in memory of every task, ended or not. */
export interface TaskSummary {
  id: string;
  source: string;
  state: TaskState;
  count: number;
  created: number;
  begin: number | null;
  end: number | null;
  /** The steps that did not succeed, in step order (empty when all did). */
  failed: FailedStep[];
}

interface Proc {
  child: ChildProcess;
  pgid: number;
  stdout: TailBuffer;
  stderr: TailBuffer;
  both: TailBuffer;
  reason: 'killed' | 'timeout' | 'interrupted' | null;
  exitCode: number | null;
  signal: string | null;
  timers: NodeJS.Timeout[];
  script: string | null;
  spawnError: string | null;
}

interface Run {
  plan: Plan;
  procs: Map<number, Proc>;
  queued: Set<number>;
  killed: boolean;
  timedOut: boolean;
  timer: NodeJS.Timeout | null;
}

interface Entry {
  summary: TaskSummary;
  /** The full record while in memory; null once only the file holds it. */
  rec: TaskRecord | null;
  ring: LineRing | null;
  waiters: Set<() => void>;
  run: Run | null;
  evict: NodeJS.Timeout | null;
}

const ENDED_STEP: ReadonlySet<StepState> = new Set(['done', 'failed', 'skipped', 'killed', 'interrupted', 'timeout']);

/** The boot id of this kernel boot, or '' when unknown. */
export function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Pids of this boot's processes whose environment carries `MUSTER_EXEC_TASK=<id>` for one of
 * `ids` (read from /proc/<pid>/environ), by task id.
 */
export function markedProcesses(ids: ReadonlySet<string>, procRoot = '/proc'): Map<string, number[]> {
  const out = new Map<string, number[]>();
  if (ids.size === 0) return out;
  let pids: string[];
  try {
    pids = readdirSync(procRoot).filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  const prefix = `${TASK_MARKER}=`;
  for (const p of pids) {
    if (Number(p) === process.pid) continue;
    let env: string;
    try {
      env = readFileSync(path.join(procRoot, p, 'environ'), 'latin1');
    } catch {
      continue;
    }
    for (const kv of env.split('\0')) {
      if (!kv.startsWith(prefix)) continue;
      const id = kv.slice(prefix.length);
      if (ids.has(id)) {
        const list = out.get(id) ?? [];
        list.push(Number(p));
        out.set(id, list);
      }
    }
  }
  return out;
}

/** Sends `sig` to `pid` (a negative pid: its group); never to 0, -1 (our own group, everything). */
function killQuietly(pid: number, sig: NodeJS.Signals): boolean {
  if (!Number.isInteger(pid) || Math.abs(pid) <= 1) return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** The agent's environment without muster's own variables (which may hold the agent token). */
function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('MUSTER_')) continue;
    out[k] = v;
  }
  if (!out.PATH) out.PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return out;
}

const SCRIPT_EXT: Record<string, string> = { sh: '.sh', bash: '.sh', python3: '.py' };

/** Runs tasks; see the module comment. */
export class ExecRunner {
  private readonly tasks = new Map<string, Entry>();
  private readonly queue: { entry: Entry; step: number }[] = [];
  private running = 0;
  private readonly store: TaskStore;
  readonly execLog: ExecLog;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly bootId: string;
  private readonly runDir: string;
  private stopping = false;
  private readonly m: {
    tasks: Counter<'state'>;
    steps: Counter<'state'>;
    refused: Counter<'reason'>;
    cut: Counter<'stream'>;
    running: Gauge;
    queued: Gauge;
    active: Gauge;
    logErrors: Counter;
    leftovers: Counter;
  };

  constructor(
    readonly opts: RunnerOptions,
    private readonly log: Logger,
    metrics: Registry,
  ) {
    this.store = new TaskStore(opts.dataDir);
    this.runDir = path.join(opts.dataDir, 'exec', 'run');
    this.bootId = opts.bootId ?? currentBootId();
    const registers = [metrics];
    this.m = {
      tasks: new Counter({
        name: 'muster_agent_exec_tasks_total',
        help: 'Tasks ended, by final state',
        labelNames: ['state'],
        registers,
      }),
      steps: new Counter({
        name: 'muster_agent_exec_steps_total',
        help: 'Steps ended, by final state',
        labelNames: ['state'],
        registers,
      }),
      refused: new Counter({
        name: 'muster_agent_exec_refused_total',
        help: 'Task submissions refused, by reason (bad_request, raw_refused, unknown_command, max_requests)',
        labelNames: ['reason'],
        registers,
      }),
      cut: new Counter({
        name: 'muster_agent_exec_output_cut_bytes_total',
        help: 'Bytes of step output dropped by exec.max_output_bytes, by stream',
        labelNames: ['stream'],
        registers,
      }),
      running: new Gauge({ name: 'muster_agent_exec_steps_running', help: 'Steps running now', registers }),
      queued: new Gauge({
        name: 'muster_agent_exec_steps_queued',
        help: 'Steps ready but waiting for a pool slot (exec.pool_size)',
        registers,
      }),
      active: new Gauge({
        name: 'muster_agent_exec_tasks_active',
        help: 'Tasks queued or running (bounded by exec.max_requests)',
        registers,
      }),
      logErrors: new Counter({
        name: 'muster_agent_exec_log_errors_total',
        help: 'Exec log lines that could not be written',
        registers,
      }),
      leftovers: new Counter({
        name: 'muster_agent_exec_leftovers_killed_total',
        help: 'Processes of interrupted tasks killed at agent start',
        registers,
      }),
    };
    for (const r of ['bad_request', 'raw_refused', 'unknown_command', 'max_requests'])
      this.m.refused.inc({ reason: r }, 0);
    this.execLog = new ExecLog(opts.dataDir, opts.logMaxBytes, (err) => {
      this.m.logErrors.inc();
      this.log.warn({ err: err.message }, 'exec log write failed');
    });
  }

  /**
   * Loads the kept records: expired ones are removed; tasks that were queued or running are
   * marked interrupted and every process they left on this boot is killed (SIGKILL).
   */
  async init(): Promise<void> {
    await mkdir(this.runDir, { recursive: true, mode: 0o700 });
    const { records, bad } = await this.store.loadAll();
    if (bad.length > 0) this.log.warn({ files: bad }, 'unreadable exec task records left alone');
    const now = Date.now();
    const interrupted: TaskRecord[] = [];
    for (const rec of records) {
      if (rec.end !== null && rec.end + this.opts.keepMs <= now) {
        await this.store.remove(rec.id);
        continue;
      }
      if (rec.end === null) {
        for (const s of rec.steps) {
          if (s.state === 'running') {
            s.state = 'interrupted';
            s.end = now;
            s.message = 'the agent restarted while it ran; its processes were killed';
          } else if (s.state === 'pending') {
            s.state = 'skipped';
            s.message = 'the agent restarted before it ran';
          }
        }
        rec.state = 'interrupted';
        rec.end = now;
        rec.message = 'interrupted: the agent restarted';
        interrupted.push(rec);
        await this.store.save(rec);
      }
      this.tasks.set(rec.id, {
        summary: summarize(rec),
        rec: null,
        ring: null,
        waiters: new Set(),
        run: null,
        evict: null,
      });
    }
    this.killLeftovers(interrupted);
    // Scripts of steps that never ended.
    await rm(this.runDir, { recursive: true, force: true });
    await mkdir(this.runDir, { recursive: true, mode: 0o700 });
    this.sweeper = setInterval(() => void this.sweep(), Math.min(this.opts.keepMs, 60_000));
    this.sweeper.unref();
  }

  /** Kills every process left by `recs` on this boot: each marked pid, and each recorded group that holds one. */
  private killLeftovers(recs: TaskRecord[]): void {
    const here = recs.filter((r) => r.boot_id === this.bootId || r.boot_id === '');
    if (here.length === 0) return;
    const marked = markedProcesses(new Set(here.map((r) => r.id)));
    for (const rec of here) {
      const pids = marked.get(rec.id) ?? [];
      const groups = new Set(rec.steps.map((s) => s.pgid).filter((g): g is number => g !== null));
      let n = 0;
      for (const pid of pids) {
        const pgrp = pgrpOf(pid);
        if (pgrp !== null && groups.has(pgrp)) killQuietly(-pgrp, 'SIGKILL');
        if (killQuietly(pid, 'SIGKILL')) n++;
      }
      if (n > 0) {
        this.m.leftovers.inc(n);
        this.log.warn({ task: rec.id, killed: n }, 'killed processes left by an interrupted task');
      }
    }
  }

  /** Tasks queued or running. */
  activeCount(): number {
    let n = 0;
    for (const e of this.tasks.values()) if (e.run) n++;
    return n;
  }

  /** Steps running now. */
  runningSteps(): number {
    return this.running;
  }

  /** Every kept task's summary. */
  summaries(): TaskSummary[] {
    return [...this.tasks.values()].map((e) => e.summary);
  }

  /** When `s` expires (ended + exec.keep), ms since the epoch; null while it runs. */
  expiresAt(s: TaskSummary): number | null {
    return s.end === null ? null : s.end + this.opts.keepMs;
  }

  /**
   * Checks and starts a task. Never throws.
   * @returns accepted (a resubmission of a kept id is accepted again without running twice), or
   *   refused with result 1 (a bad task: the message names the step and the problem) or 7 (BUSY:
   *   exec.max_requests tasks are queued or running)
   */
  submit(sub: Submission): SubmitResult {
    if (this.stopping) return { ok: false, result: RESULT.BUSY, message: 'the agent is stopping', reason: 'stopping' };
    const id = sub.task_id ?? nodeCrypto().randomUUID();
    const have = this.tasks.get(id);
    if (have) return { ok: true, id, count: have.summary.count, existed: true };
    let plan: Plan;
    try {
      plan = planTask(id, sub.steps, sub.async === true, {
        stepTimeoutMs: this.opts.stepTimeoutMs,
        allowRaw: this.opts.allowRaw,
        command: (name) => this.opts.commands.get(name),
      });
    } catch (err) {
      if (!(err instanceof PlanError)) throw err;
      this.m.refused.inc({ reason: err.reason });
      return { ok: false, result: RESULT.BAD_REQUEST, message: err.message, reason: err.reason };
    }
    if (this.activeCount() >= this.opts.maxRequests) {
      this.m.refused.inc({ reason: 'max_requests' });
      return {
        ok: false,
        result: RESULT.BUSY,
        message: `${this.opts.maxRequests} tasks are queued or running on this board (exec.max_requests); try later`,
        reason: 'max_requests',
      };
    }
    this.makeRoom();
    const now = Date.now();
    const rec: TaskRecord = {
      version: 1,
      id,
      source: sub.source,
      mode: plan.mode,
      state: 'queued',
      message: '',
      created: now,
      begin: null,
      end: null,
      timeout_ms: sub.timeout_s ? sub.timeout_s * 1000 : null,
      boot_id: this.bootId,
      steps: plan.steps.map((p, i) => stepRecord(p, sub.steps[i] as StepSpec)),
    };
    const entry: Entry = {
      summary: summarize(rec),
      rec,
      ring: new LineRing(this.opts.outputLines),
      waiters: new Set(),
      run: { plan, procs: new Map(), queued: new Set(), killed: false, timedOut: false, timer: null },
      evict: null,
    };
    this.tasks.set(id, entry);
    this.m.active.set(this.activeCount());
    void this.store
      .save(rec)
      .catch((err) => this.log.warn({ task: id, err: (err as Error).message }, 'exec save failed'));
    if (rec.timeout_ms !== null) {
      const run = entry.run as Run;
      run.timer = setTimeout(() => this.timeoutTask(entry), Math.min(rec.timeout_ms, MAX_TIMER_MS));
    }
    this.log.info({ task: id, source: sub.source, mode: plan.mode, steps: plan.steps.length }, 'exec task accepted');
    this.advance(entry);
    return { ok: true, id, count: plan.steps.length, existed: false };
  }

  /** Drops the oldest ended tasks while exec.max_tasks are kept. */
  private makeRoom(): void {
    if (this.tasks.size < this.opts.maxTasks) return;
    const ended = [...this.tasks.values()]
      .filter((e) => e.run === null)
      .sort((a, b) => (a.summary.end ?? 0) - (b.summary.end ?? 0));
    for (const e of ended) {
      if (this.tasks.size < this.opts.maxTasks) break;
      this.drop(e);
    }
  }

  private drop(e: Entry): void {
    if (e.evict) clearTimeout(e.evict);
    this.tasks.delete(e.summary.id);
    void this.store.remove(e.summary.id).catch(() => undefined);
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const e of [...this.tasks.values()]) {
      if (e.run === null && e.summary.end !== null && e.summary.end + this.opts.keepMs <= now) this.drop(e);
    }
  }

  /** Moves what can move: skips what cannot run, queues what is ready, ends the task when all ended. */
  private advance(entry: Entry): void {
    const run = entry.run;
    const rec = entry.rec;
    if (!run || !rec) return;
    let changed = true;
    while (changed) {
      changed = false;
      for (const s of rec.steps) {
        if (s.state !== 'pending' || run.queued.has(s.step)) continue;
        const why = this.blocked(run, rec, s);
        if (why === 'wait') continue;
        if (why !== null) {
          s.state = 'skipped';
          s.message = why;
          this.m.steps.inc({ state: 'skipped' });
          changed = true;
          continue;
        }
        run.queued.add(s.step);
        this.queue.push({ entry, step: s.step });
      }
    }
    this.m.queued.set(this.queue.length);
    if (rec.steps.every((s) => ENDED_STEP.has(s.state))) this.finish(entry);
    else this.pump();
  }

  /** null = ready; 'wait' = not yet; else why it is skipped. */
  private blocked(run: Run, rec: TaskRecord, s: StepRecord): string | null {
    if (this.stopping) return 'skipped: the agent stopped before it ran';
    if (run.killed) return 'skipped: the task was killed';
    if (run.timedOut) return 'skipped: the task timed out';
    const deps =
      run.plan.mode === 'dag'
        ? (run.plan.steps[s.step] as PlannedStep).deps
        : run.plan.mode === 'sequence' && s.step > 0
          ? [s.step - 1]
          : [];
    for (const d of deps) {
      const dep = rec.steps[d] as StepRecord;
      if (dep.state === 'done') continue;
      if (ENDED_STEP.has(dep.state))
        return run.plan.mode === 'dag'
          ? `skipped: dependency ${dep.name} ${dep.state}`
          : `skipped: step ${dep.step} (${dep.name}) ${dep.state}`;
      return 'wait';
    }
    return null;
  }

  /** Starts queued steps while the pool has room. */
  private pump(): void {
    while (this.running < this.opts.poolSize && this.queue.length > 0) {
      const { entry, step } = this.queue.shift() as { entry: Entry; step: number };
      const s = entry.rec?.steps[step];
      if (!entry.run || !s || s.state !== 'pending') continue;
      if (entry.run.killed || entry.run.timedOut) {
        entry.run.queued.delete(step);
        continue;
      }
      this.running++;
      void this.startStep(entry, step);
    }
    this.m.queued.set(this.queue.length);
    this.m.running.set(this.running);
  }

  private async startStep(entry: Entry, i: number): Promise<void> {
    const run = entry.run as Run;
    const rec = entry.rec as TaskRecord;
    const s = rec.steps[i] as StepRecord;
    const p = run.plan.steps[i] as PlannedStep;
    const now = Date.now();
    if (rec.begin === null) {
      rec.begin = now;
      rec.state = 'running';
      entry.summary.begin = now;
      entry.summary.state = 'running';
    }
    s.state = 'running';
    s.begin = now;
    const max = this.opts.maxOutputBytes;
    const proc: Proc = {
      child: null as unknown as ChildProcess,
      pgid: 0,
      stdout: new TailBuffer(max),
      stderr: new TailBuffer(max),
      both: new TailBuffer(max),
      reason: null,
      exitCode: null,
      signal: null,
      timers: [],
      script: null,
      spawnError: null,
    };
    run.procs.set(i, proc);
    let argv: string[];
    try {
      if (p.content !== null) {
        proc.script = path.join(this.runDir, `${rec.id}-${i}${SCRIPT_EXT[p.command_type] ?? ''}`);
        const fh = await open(proc.script, 'w', 0o700);
        try {
          await fh.writeFile(p.content);
        } finally {
          await fh.close();
        }
        argv = [proc.script, ...p.args];
      } else argv = p.args;
    } catch (err) {
      proc.spawnError = `cannot write the script: ${(err as Error).message}`;
      this.stepEnded(entry, i);
      return;
    }
    // Killed (the task, or this step by name) while its script was being written: never start it.
    if (proc.reason !== null || run.killed || run.timedOut || this.stopping) {
      proc.reason ??= this.stopping ? 'interrupted' : run.killed ? 'killed' : 'timeout';
      this.stepEnded(entry, i);
      return;
    }
    const env = { ...baseEnv(), ...envOf(p.env), [TASK_MARKER]: rec.id, MUSTER_EXEC_STEP: p.name };
    const child = spawn(p.program, argv, {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
      cwd: process.env.HOME && path.isAbsolute(process.env.HOME) ? process.env.HOME : '/',
    });
    proc.child = child;
    proc.pgid = child.pid ?? 0;
    s.pgid = child.pid ?? null;
    void this.store.save(rec, false).catch(() => undefined);
    void this.execLog.write({
      event: 'start',
      task: rec.id,
      step: i,
      name: p.name,
      command_type: p.command_type,
      command: p.entry ? [p.entry.name, ...p.args].join(' ') : (p.content ?? ''),
      env: p.env,
      source: rec.source,
    });
    this.log.info(
      {
        task: rec.id,
        step: i,
        name: p.name,
        command_type: p.command_type,
        pgid: proc.pgid,
        env: p.env.map(redactEnvVar),
      },
      'exec step start',
    );
    const ring = entry.ring as LineRing;
    const notify = () => this.wake(entry);
    const splitters = {
      stdout: new LineSplitter((l) => ring.add(i, 'stdout', l)),
      stderr: new LineSplitter((l) => ring.add(i, 'stderr', l)),
    };
    const onData = (stream: 'stdout' | 'stderr') => (b: Buffer) => {
      proc[stream].push(b);
      proc.both.push(b);
      splitters[stream].push(b);
      notify();
    };
    child.stdout?.on('data', onData('stdout'));
    child.stderr?.on('data', onData('stderr'));
    child.on('error', (err) => {
      proc.spawnError = err.message;
    });
    child.on('exit', (code, signal) => {
      proc.exitCode = code;
      proc.signal = signal;
      // What the step left in its group goes with it: SIGTERM now, SIGKILL after the grace.
      if (proc.pgid > 0 && killQuietly(-proc.pgid, 'SIGTERM')) {
        proc.timers.push(
          setTimeout(() => killQuietly(-proc.pgid, 'SIGKILL'), this.opts.killGraceMs),
          // A process that left the group but kept the pipes open must not hold the step.
          setTimeout(() => {
            child.stdout?.destroy();
            child.stderr?.destroy();
          }, this.opts.killGraceMs + 2000),
        );
      }
    });
    child.on('close', () => {
      splitters.stdout.end();
      splitters.stderr.end();
      this.stepEnded(entry, i);
    });
    proc.timers.push(setTimeout(() => this.killProc(proc, 'timeout'), Math.min(p.timeoutMs, MAX_TIMER_MS)));
  }

  /** SIGTERM to the step's group, SIGKILL after exec.kill_grace. */
  private killProc(proc: Proc, reason: 'killed' | 'timeout' | 'interrupted', sig: NodeJS.Signals = 'SIGTERM'): void {
    proc.reason ??= reason;
    if (proc.pgid <= 0) return;
    killQuietly(-proc.pgid, sig);
    if (sig !== 'SIGKILL')
      proc.timers.push(setTimeout(() => killQuietly(-proc.pgid, 'SIGKILL'), this.opts.killGraceMs));
  }

  private stepEnded(entry: Entry, i: number): void {
    const run = entry.run as Run;
    const rec = entry.rec as TaskRecord;
    const s = rec.steps[i] as StepRecord;
    const proc = run.procs.get(i) as Proc;
    run.procs.delete(i);
    run.queued.delete(i);
    for (const t of proc.timers) clearTimeout(t);
    if (proc.script) void rm(proc.script, { force: true });
    this.running--;
    s.end = Date.now();
    s.pgid = null;
    s.exit_code = proc.exitCode;
    s.signal = proc.signal;
    s.stdout_tail = proc.stdout.text();
    s.stderr_tail = proc.stderr.text();
    s.stdout_cut_bytes = proc.stdout.cut;
    s.stderr_cut_bytes = proc.stderr.cut;
    s.output = proc.both.text();
    s.output_cut_bytes = proc.both.cut;
    if (proc.stdout.cut > 0) this.m.cut.inc({ stream: 'stdout' }, proc.stdout.cut);
    if (proc.stderr.cut > 0) this.m.cut.inc({ stream: 'stderr' }, proc.stderr.cut);
    const dur = formatGoDuration(s.end - (s.begin ?? s.end));
    if (proc.reason === 'killed') {
      s.state = 'killed';
      s.message = 'killed';
    } else if (proc.reason === 'timeout') {
      s.state = 'timeout';
      s.message = run.timedOut
        ? `the task timed out after ${formatGoDuration(rec.timeout_ms ?? 0)}`
        : `timed out after ${formatGoDuration(s.timeout_ms)}`;
    } else if (proc.reason === 'interrupted') {
      s.state = 'interrupted';
      s.message = 'the agent stopped while it ran; its processes were killed';
    } else if (proc.spawnError !== null) {
      s.state = 'failed';
      s.message = `cannot start: ${proc.spawnError}`;
    } else if (proc.exitCode === 0) {
      s.state = 'done';
      s.message = '';
    } else {
      s.state = 'failed';
      s.message = proc.exitCode !== null ? `exit status ${proc.exitCode}` : `signal: ${proc.signal}`;
    }
    this.m.steps.inc({ state: s.state });
    void this.execLog.write({
      event: 'end',
      task: rec.id,
      step: i,
      name: s.name,
      command_type: s.command_type,
      command: s.command ?? '',
      state: s.state,
      exit_code: s.exit_code,
      signal: s.signal,
      duration_ms: s.end - (s.begin ?? s.end),
      source: rec.source,
    });
    this.log.info(
      { task: rec.id, step: i, name: s.name, state: s.state, exit_code: s.exit_code, signal: s.signal, duration: dur },
      'exec step end',
    );
    this.wake(entry);
    this.advance(entry);
    this.pump();
  }

  private finish(entry: Entry): void {
    const run = entry.run as Run;
    const rec = entry.rec as TaskRecord;
    if (run.timer) clearTimeout(run.timer);
    const states = rec.steps.map((s) => s.state);
    rec.state = run.timedOut
      ? 'timeout'
      : this.stopping || states.includes('interrupted')
        ? 'interrupted'
        : run.killed || states.includes('killed')
          ? 'killed'
          : states.every((x) => x === 'done')
            ? 'done'
            : 'failed';
    const now = Date.now();
    rec.begin ??= now;
    rec.end = now;
    const failed = rec.steps.filter((s) => s.state !== 'done');
    rec.message =
      rec.state === 'done'
        ? ''
        : `${rec.state}: ${failed.map((s) => `${s.name} ${s.state}`).join(', ')}`.slice(0, 1024);
    entry.run = null;
    entry.summary = summarize(rec);
    this.m.tasks.inc({ state: rec.state });
    this.m.active.set(this.activeCount());
    this.log.info({ task: rec.id, state: rec.state, duration_ms: rec.end - rec.begin }, 'exec task end');
    void this.store
      .save(rec)
      .catch((err) => this.log.warn({ task: rec.id, err: (err as Error).message }, 'exec save failed'));
    this.wake(entry);
    entry.evict = setTimeout(() => {
      entry.rec = null;
      entry.ring = null;
      entry.evict = null;
    }, this.opts.lingerMs ?? DEFAULT_LINGER_MS);
    entry.evict.unref();
  }

  private wake(entry: Entry): void {
    const ws = [...entry.waiters];
    entry.waiters.clear();
    for (const w of ws) w();
  }

  private timeoutTask(entry: Entry): void {
    const run = entry.run;
    if (!run) return;
    run.timedOut = true;
    for (const proc of run.procs.values()) this.killProc(proc, 'timeout');
    this.advance(entry);
  }

  /**
   * Kills task `id` (every running step's process group: SIGTERM, SIGKILL after exec.kill_grace;
   * steps not started are skipped), or only its step named `step` (its dependants are then skipped).
   * @returns result 0 (killing, or already ended), 5 (no such task or step)
   */
  kill(id: string, step?: string): { result: ResultCode; message: string } {
    const entry = this.tasks.get(id);
    if (!entry) return { result: RESULT.NOT_FOUND, message: `no task ${id} on this board` };
    const run = entry.run;
    if (!run || !entry.rec) return { result: RESULT.OK, message: `task ${id} already ended (${entry.summary.state})` };
    if (step !== undefined) {
      const s = entry.rec.steps.find((x) => x.name === step);
      if (!s) return { result: RESULT.NOT_FOUND, message: `task ${id} has no step ${step}` };
      const proc = run.procs.get(s.step);
      if (proc) this.killProc(proc, 'killed');
      else if (s.state === 'pending') {
        s.state = 'killed';
        s.message = 'killed before it started';
        this.m.steps.inc({ state: 'killed' });
        this.advance(entry);
      } else return { result: RESULT.OK, message: `step ${step} already ended (${s.state})` };
      this.log.info({ task: id, step }, 'exec step kill');
      return { result: RESULT.OK, message: `killing step ${step} of task ${id}` };
    }
    run.killed = true;
    for (const proc of run.procs.values()) this.killProc(proc, 'killed');
    this.log.info({ task: id }, 'exec task kill');
    this.advance(entry);
    return { result: RESULT.OK, message: `killing task ${id}` };
  }

  /** The full record of `id` (from memory or its file), or null when unknown or expired. */
  async record(id: string): Promise<TaskRecord | null> {
    const entry = this.tasks.get(id);
    if (!entry) return null;
    if (entry.rec) return entry.rec;
    return this.store.load(id);
  }

  /** The live output of a running step: its tails now (null when it is not running). */
  private liveTails(entry: Entry, step: number): Proc | null {
    return entry.run?.procs.get(step) ?? null;
  }

  /** Step `step` of task `id` with the live output of a running step (for the seed API's `message`). */
  stepOutput(id: string, step: number): string | null {
    const entry = this.tasks.get(id);
    const p = entry ? this.liveTails(entry, step) : null;
    return p ? p.both.text() : null;
  }

  /**
   * The `exec_status` answer: the task's state and steps, and the output lines after `since`. With
   * `waitMs` (≤ 25 s) and nothing new after `since`, waits for a line or the task's end first.
   * Result 5 (state null) for an unknown or expired task.
   */
  async status(id: string, since = 0, waitMs = 0): Promise<ExecStatusReplyData> {
    const notFound = (): ExecStatusReplyData => ({
      task_id: id,
      result: RESULT.NOT_FOUND,
      message: `no task ${id} on this board (unknown or expired)`,
      state: null,
      begin: null,
      end: null,
      steps: [],
      output: [],
      next: since,
      lines_dropped: 0,
    });
    const entry = this.tasks.get(id);
    if (!entry) return notFound();
    if (waitMs > 0 && entry.run && entry.ring && entry.ring.last <= since) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(waitMs, MAX_WAIT_MS));
        function done() {
          clearTimeout(t);
          entry?.waiters.delete(done);
          resolve();
        }
        entry.waiters.add(done);
      });
    }
    const rec = await this.record(id);
    if (!rec) return notFound();
    const ring = entry.ring;
    const { lines, dropped } = ring ? ring.after(since) : { lines: [], dropped: 0 };
    const next = lines.length > 0 ? (lines[lines.length - 1]?.seq ?? since) : Math.max(since, 0);
    return {
      task_id: id,
      result: RESULT.OK,
      message: rec.message,
      state: rec.state,
      begin: rec.begin === null ? null : isoLocal(rec.begin),
      end: rec.end === null ? null : isoLocal(rec.end),
      steps: rec.steps.map((s) => this.stepStatus(entry, s)),
      output: lines,
      next,
      lines_dropped: dropped,
    };
  }

  private stepStatus(entry: Entry, s: StepRecord): StepStatus {
    const live = this.liveTails(entry, s.step);
    return {
      step: s.step,
      name: s.name,
      state: s.state,
      exit_code: s.exit_code,
      signal: s.signal,
      begin: s.begin === null ? null : isoLocal(s.begin),
      end: s.end === null ? null : isoLocal(s.end),
      stdout_tail: live ? live.stdout.text() : s.stdout_tail,
      stderr_tail: live ? live.stderr.text() : s.stderr_tail,
      stdout_cut_bytes: live ? live.stdout.cut : s.stdout_cut_bytes,
      stderr_cut_bytes: live ? live.stderr.cut : s.stderr_cut_bytes,
      message: s.message,
    };
  }

  /**
   * The `exec_file` answer: the generate_file of step `step` (a command-set entry's), read when the
   * step has ended, bounded by exec.max_generate_file_bytes.
   */
  async file(id: string, step: number): Promise<ExecFileReplyData> {
    const base = { task_id: id, step };
    const rec = await this.record(id);
    const s = rec?.steps[step];
    if (!rec || !s)
      return { ...base, result: RESULT.NOT_FOUND, message: `no step ${step} of task ${id} on this board` };
    if (!s.generate_file)
      return { ...base, result: RESULT.NOT_FOUND, message: `step ${step} names no command with a generate_file` };
    if (!ENDED_STEP.has(s.state)) return { ...base, result: RESULT.BUSY, message: `step ${step} is still ${s.state}` };
    const max = this.opts.maxGenerateFileBytes;
    try {
      const st = await stat(s.generate_file);
      if (!st.isFile()) return { ...base, result: RESULT.NOT_FOUND, message: `${s.generate_file} is not a file` };
      if (st.size > max)
        return {
          ...base,
          result: RESULT.BAD_REQUEST,
          message: `${s.generate_file} is ${st.size} bytes, more than exec.max_generate_file_bytes (${max})`,
        };
      const buf = await readFile(s.generate_file);
      if (buf.length > max)
        return { ...base, result: RESULT.BAD_REQUEST, message: `${s.generate_file} grew past ${max} bytes` };
      return {
        ...base,
        result: RESULT.OK,
        message: '',
        path: s.generate_file,
        size: buf.length,
        sha256: nodeCrypto().createHash('sha256').update(buf).digest('hex'),
        content_b64: buf.toString('base64'),
      };
    } catch (err) {
      return {
        ...base,
        result: RESULT.NOT_FOUND,
        message: `${s.generate_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      };
    }
  }

  /**
   * Stops: running steps are killed with their groups (SIGKILL) and their tasks recorded as
   * interrupted; waits up to 3 s for them. Nothing new is accepted.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sweeper) clearInterval(this.sweeper);
    const pending: Promise<void>[] = [];
    for (const entry of this.tasks.values()) {
      if (entry.evict) clearTimeout(entry.evict);
      const run = entry.run;
      if (!run) continue;
      run.killed = true;
      for (const proc of run.procs.values()) {
        proc.reason = 'interrupted';
        killQuietly(-proc.pgid, 'SIGKILL');
        if (proc.child)
          pending.push(
            new Promise<void>((r) => (proc.child.exitCode !== null ? r() : proc.child.once('close', () => r()))),
          );
      }
    }
    this.queue.length = 0;
    await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 3000).unref())]);
    for (const entry of this.tasks.values()) {
      if (entry.run) this.advance(entry);
    }
    await Promise.all([...this.tasks.values()].filter((e) => e.rec).map((e) => this.store.save(e.rec as TaskRecord)));
  }
}

/** The process group of `pid` (field 5 of /proc/<pid>/stat), or null. */
function pgrpOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[2]);
  } catch {
    return null;
  }
}

function envOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function stepRecord(p: PlannedStep, spec: StepSpec): StepRecord {
  return {
    step: p.step,
    name: p.name,
    command_type: p.command_type,
    command: p.entry ? p.entry.name : null,
    depends_on: spec.depends_on ?? [],
    env_names: p.env.map((kv) => kv.slice(0, kv.indexOf('='))),
    timeout_ms: p.timeoutMs,
    state: 'pending',
    exit_code: null,
    signal: null,
    begin: null,
    end: null,
    pgid: null,
    stdout_tail: '',
    stderr_tail: '',
    stdout_cut_bytes: 0,
    stderr_cut_bytes: 0,
    output: '',
    output_cut_bytes: 0,
    message: '',
    generate_file: p.entry?.generate_file ?? null,
  };
}

/** The seed API's code of a step: its exit code, else -1 (skipped, killed, timed out, interrupted). */
export function stepCode(s: StepRecord): number {
  return s.exit_code ?? (s.state === 'done' ? 0 : -1);
}

function summarize(rec: TaskRecord): TaskSummary {
  return {
    id: rec.id,
    source: rec.source,
    state: rec.state,
    count: rec.steps.length,
    created: rec.created,
    begin: rec.begin,
    end: rec.end,
    failed: rec.steps
      .filter((s) => ENDED_STEP.has(s.state) && s.state !== 'done')
      .map((s) => ({ step: s.step, code: stepCode(s), message: failMessage(s) })),
  };
}

/** A failed step's seed `message`: its output's last 512 characters then why (`exit status 100`). */
export function failMessage(s: StepRecord): string {
  const out = s.output.trim().slice(-512);
  return out ? `${out} ${s.message}` : s.message;
}
