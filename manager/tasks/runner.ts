/**
 * The manager's side of remote execution (docs/exec.md "Manager: targets, batches, tasks"): a task
 * of steps is checked, its target resolved against the registry at submit time (the node list is
 * kept with the task), then sent to each node's agent (`exec`) in batches — a sliding window of
 * `batch` nodes, the next starting when one finishes, after `batch_wait` — and followed with
 * `exec_status` long polls that feed the live output. `fail_fast` starts no further node after the
 * first failure; a task-level timeout kills what runs and skips what has not started; a whole task
 * or one node's part can be killed (`exec_kill`). When a node's part ends, its result (state, exit
 * code, output tails, times) is kept, and the generate_files of its command-set steps are fetched
 * back (`exec_file`).
 *
 * Events: `task` (a task was accepted), `node` (task, result: a node's part ended), `file` (task,
 * node, file row: a generate_file fetched back), `finished` (a task ended). Live readers
 * subscribe per task ({@link TaskRunner.subscribe}). Persistence and history are the wiring's
 * (manager/tasks/persist.ts).
 *
 * Every bound is a key of the `exec` config section (docs/configuration.md "exec") with a metric
 * when it bites: max_nodes_per_task and max_concurrent_tasks (`muster_manager_tasks_refused_total`),
 * max_buffered_lines (`muster_manager_task_lines_dropped_total{where="manager"}`), the agent's own
 * ring (`{where="agent"}`).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MANAGER_RESULT } from '../../common/api/deploy.js';
import type {
  GeneratedFile,
  NodeResult,
  NodeRunState,
  StepResult,
  TaskBody,
  TaskLine,
  TaskRecord,
  TaskSummary,
} from '../../common/api/tasks.js';
import type { ExecStatusReplyData, StepSpec, StepStatus, TaskState } from '../../common/exec.js';
import { checkSteps } from '../../common/exec-dag.js';
import type { Logger } from '../../common/log.js';
import { TargetError } from '../../common/target.js';
import type { AgentClient, AgentTarget } from '../agents/client.js';
import type { ManagerConfig } from '../config.js';
import { Refused } from '../refused.js';
import type { NodeRegistry } from '../registry.js';
import { resolveTarget } from '../targets.js';
import { batchSize, durationMs, SpecError } from './batch.js';
import type { CommandCatalog } from './catalog.js';

/** The `exec` config section. */
export type ExecConfig = ManagerConfig['exec'];

/** The agent calls a task makes. */
export type ExecAgent = Pick<AgentClient, 'exec' | 'execStatus' | 'execKill' | 'execFile'>;

/** A refused submit or kill: HTTP status, error code, field and message for the REST API. */
export class TaskRefused extends Refused {}

/** What a live reader of a task gets. */
export type TaskEvent =
  | { type: 'line'; line: TaskLine }
  | { type: 'node'; result: NodeResult }
  | { type: 'dropped'; lines: number }
  | { type: 'summary'; task: TaskRecord };

/** A generate_file fetched back, for the store. */
export interface FetchedFile {
  node: string;
  step: number;
  path: string;
  size: number;
  sha256: string;
  content: Uint8Array;
}

/** Node states that count as a failure of the node's part. */
const FAILED: ReadonlySet<NodeRunState> = new Set(['failed', 'killed', 'interrupted', 'timeout', 'error']);
/** Task states the agent reports once a task has ended. */
const ENDED: ReadonlySet<TaskState> = new Set(['done', 'failed', 'killed', 'interrupted', 'timeout']);
/** env_vars names whose values are kept out of the record, the API and the log. */
const SECRET_NAME = /token|key|pass|secret|sig|auth|credential|session/i;

/** `K=V` entries with the value of a secret-looking name replaced by `***`. */
export function redactEnv(env: readonly string[]): string[] {
  return env.map((kv) => {
    const eq = kv.indexOf('=');
    return eq > 0 && SECRET_NAME.test(kv.slice(0, eq)) ? `${kv.slice(0, eq)}=***` : kv;
  });
}

/** The last `max` bytes of `s` (UTF-8), and how many were cut. */
function tail(s: string, max: number): { text: string; cut: number } {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return { text: s, cut: 0 };
  return { text: b.subarray(b.length - max).toString('utf8'), cut: b.length - max };
}

/** Per-node control of a running task. */
interface NodeCtl {
  target: AgentTarget | null;
  result: NodeResult;
  /** Why the node's part is being stopped: a kill or the task's timeout. */
  stop: 'killed' | 'timeout' | null;
  stopAt: number;
  started: boolean;
}

/** A task in memory: its record, live output, readers and per-node control. */
interface LiveTask {
  rec: TaskRecord & { results: NodeResult[] };
  /** The steps as sent to the agents (env_vars unredacted). */
  sent: StepSpec[];
  /** Per step index: the catalog's generate_file of its command, or null. */
  generates: (string | null)[];
  ctl: Map<string, NodeCtl>;
  lines: TaskLine[];
  seq: number;
  readers: Set<(e: TaskEvent) => void>;
  stop: 'killed' | 'timeout' | 'fail_fast' | null;
  timer: NodeJS.Timeout | undefined;
  done: Promise<TaskRecord>;
}

/** What a subscription gives: the held lines after `since`, how many were dropped before them, and the end. */
export interface Subscription {
  replay: TaskLine[];
  dropped: number;
  /** The task's record when it has already ended (the reader gets no further events). */
  ended: TaskRecord | null;
  unsubscribe(): void;
}

function summaryOf(results: readonly NodeResult[]): TaskSummary {
  const s: TaskSummary = { nodes: results.length, done: 0, failed: 0, skipped: 0, running: 0, pending: 0 };
  for (const r of results) {
    if (r.state === 'done') s.done++;
    else if (r.state === 'skipped') s.skipped++;
    else if (r.state === 'running') s.running++;
    else if (r.state === 'pending') s.pending++;
    else s.failed++;
  }
  return s;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Sends tasks to agents and follows them. */
export class TaskRunner extends EventEmitter {
  private readonly live = new Map<string, LiveTask>();
  private readonly metrics: {
    tasks: Counter<'state'>;
    nodes: Counter<'state'>;
    refused: Counter<'reason'>;
    dropped: Counter<'where'>;
    running: Gauge;
  };

  /**
   * @param cfg the exec config now (read at each use, so a test may change it)
   * @param catalog the command-set catalog (entries named by steps; pushed before a run)
   */
  constructor(
    private readonly cfg: () => ExecConfig,
    private readonly registry: NodeRegistry,
    private readonly agents: ExecAgent,
    private readonly catalog: Pick<CommandCatalog, 'get' | 'ensure'>,
    private readonly log: Logger,
    metrics: Registry,
  ) {
    super();
    const r = [metrics];
    this.metrics = {
      tasks: new Counter({
        name: 'muster_manager_tasks_total',
        help: 'Tasks ended, by state: done, failed, killed, timeout, interrupted',
        labelNames: ['state'],
        registers: r,
      }),
      nodes: new Counter({
        name: 'muster_manager_task_nodes_total',
        help: "Nodes' parts of tasks ended, by state",
        labelNames: ['state'],
        registers: r,
      }),
      refused: new Counter({
        name: 'muster_manager_tasks_refused_total',
        help: 'Tasks refused at submit, by reason: bad_request, no_nodes, too_many_nodes (exec.max_nodes_per_task), too_many_tasks (exec.max_concurrent_tasks)',
        labelNames: ['reason'],
        registers: r,
      }),
      dropped: new Counter({
        name: 'muster_manager_task_lines_dropped_total',
        help: 'Live output lines lost: where=agent (its ring overflowed between two polls), where=manager (exec.max_buffered_lines)',
        labelNames: ['where'],
        registers: r,
      }),
      running: new Gauge({ name: 'muster_manager_tasks_running', help: 'Tasks running now', registers: r }),
    };
  }

  /** Tasks under way now. */
  get runningCount(): number {
    let n = 0;
    for (const t of this.live.values()) if (t.rec.finished_at === null) n++;
    return n;
  }

  /**
   * Accepts a task and starts it in the background; returns its record (updated in place) at once.
   * @throws TaskRefused 400 (bad steps, target, batch or duration; an unknown command; wrong args
   *   count; a target matching no node or more than exec.max_nodes_per_task), 429 (more than
   *   exec.max_concurrent_tasks running)
   */
  submit(body: TaskBody, who: string): TaskRecord {
    const cfg = this.cfg();
    const refuse = (reason: string, status: number, field: string | undefined, message: string): never => {
      this.metrics.refused.inc({ reason });
      throw new TaskRefused(status, status === 429 ? 'too_many_tasks' : 'bad_request', message, field);
    };
    const id = randomUUID();
    const bad = checkSteps(body.steps, id);
    if (bad) refuse('bad_request', 400, bad.field, bad.message);
    const generates: (string | null)[] = [];
    for (const [n, s] of body.steps.entries()) {
      if (s.command === undefined) {
        generates.push(null);
        continue;
      }
      const entry = this.catalog.get(s.command);
      if (!entry)
        refuse(
          'bad_request',
          400,
          `/steps/${n}/command`,
          `no command ${s.command} in the catalog (muster commands list)`,
        );
      const e = entry as NonNullable<typeof entry>;
      const given = s.args?.length ?? 0;
      if (e.argument_count >= 0 && given !== e.argument_count) {
        refuse(
          'bad_request',
          400,
          `/steps/${n}/args`,
          `command ${s.command} takes ${e.argument_count} argument${e.argument_count === 1 ? '' : 's'}, ${given} given`,
        );
      }
      generates.push(e.generate_file);
    }
    let size = 1;
    let batchWait = 0;
    let timeout = cfg.task_timeout_ms;
    let nodes: ReturnType<typeof resolveTarget> = [];
    try {
      nodes = resolveTarget(this.registry, body.target);
    } catch (err) {
      if (err instanceof TargetError) refuse('bad_request', 400, '/target', `target: ${err.message}`);
      throw err;
    }
    if (nodes.length === 0) refuse('no_nodes', 400, '/target', `target ${JSON.stringify(body.target)} matches no node`);
    if (nodes.length > cfg.max_nodes_per_task) {
      refuse(
        'too_many_nodes',
        400,
        '/target',
        `target ${JSON.stringify(body.target)} matches ${nodes.length} nodes, more than exec.max_nodes_per_task (${cfg.max_nodes_per_task}); narrow it or split the task`,
      );
    }
    try {
      size = batchSize(body.batch, nodes.length);
      if (body.batch_wait !== undefined) batchWait = durationMs(body.batch_wait, 'batch_wait');
      if (body.timeout !== undefined) timeout = durationMs(body.timeout, 'timeout');
    } catch (err) {
      if (err instanceof SpecError) {
        const field = err.message.startsWith('batch_wait')
          ? '/batch_wait'
          : err.message.startsWith('timeout')
            ? '/timeout'
            : '/batch';
        refuse('bad_request', 400, field, err.message);
      }
      throw err;
    }
    if (this.runningCount >= cfg.max_concurrent_tasks) {
      refuse(
        'too_many_tasks',
        429,
        undefined,
        `${this.runningCount} tasks are running, the most exec.max_concurrent_tasks allows; try again when one ends`,
      );
    }

    const at = new Date().toISOString();
    const results: NodeResult[] = [];
    const ctl = new Map<string, NodeCtl>();
    for (const n of nodes) {
      const hb = this.registry.boardOf(n.record)?.heartbeat;
      // A node on the WebSocket link without a heartbeat body is reached by its id (docs/links.md).
      const target = hb
        ? { node: n.id, host_ip: hb.host_ip, port: hb.service_port }
        : n.record.link
          ? { node: n.id, host_ip: n.host_ip, port: 0 }
          : null;
      const result: NodeResult = {
        node: n.id,
        host_ip: n.host_ip,
        state: 'pending',
        exit_code: null,
        begin: null,
        end: null,
        duration_ms: null,
        message: '',
        steps: [],
        files: [],
        lines_dropped: 0,
      };
      results.push(result);
      ctl.set(n.id, { target, result, stop: null, stopAt: 0, started: false });
    }
    const rec: LiveTask['rec'] = {
      id,
      who,
      at,
      finished_at: null,
      state: 'running',
      message: `${nodes.length} node${nodes.length === 1 ? '' : 's'}, ${size} at a time`,
      target: body.target,
      nodes: nodes.map((n) => n.id),
      steps: body.steps.map((s) => (s.env_vars ? { ...s, env_vars: redactEnv(s.env_vars) } : s)),
      async: body.async === true,
      batch: body.batch ?? null,
      batch_size: size,
      batch_wait_ms: batchWait,
      timeout_ms: timeout,
      fail_fast: body.fail_fast === true,
      summary: summaryOf(results),
      results,
    };
    const task: LiveTask = {
      rec,
      sent: body.steps,
      generates,
      ctl,
      lines: [],
      seq: 0,
      readers: new Set(),
      stop: null,
      timer: undefined,
      done: Promise.resolve(rec),
    };
    this.live.set(id, task);
    this.metrics.running.set(this.runningCount);
    this.emit('task', rec);
    this.log.info(
      { task: id, who, target: body.target, nodes: nodes.length, batch: size, steps: body.steps.length },
      'task submitted',
    );
    if (timeout > 0) {
      task.timer = setTimeout(() => this.stopTask(task, 'timeout'), timeout);
      task.timer.unref();
    }
    task.done = this.run(task).catch((err: Error) => {
      this.log.error({ task: id, err: err.message }, 'task runner failed');
      this.finish(task);
      return rec;
    });
    return rec;
  }

  /** A task in memory (running, or among the last exec.keep_tasks finished), with its results. */
  get(id: string): TaskRecord | undefined {
    const t = this.live.get(id);
    if (!t) return undefined;
    t.rec.summary = summaryOf(t.rec.results);
    return t.rec;
  }

  /** The task's end (for tests and the bench): resolves with the finished record. */
  async wait(id: string): Promise<TaskRecord | undefined> {
    return this.live.get(id)?.done;
  }

  /**
   * Kills a whole task or one node's part: running parts get `exec_kill`, parts not yet started
   * are skipped. Returns the record.
   * @throws TaskRefused 404 (no such task in memory, or no such node in it), 409 (already ended)
   */
  kill(id: string, node?: string): TaskRecord {
    const t = this.live.get(id);
    if (!t) throw new TaskRefused(404, 'not_found', `no running task ${id}`);
    if (t.rec.finished_at !== null) throw new TaskRefused(409, 'conflict', `task ${id} already ended (${t.rec.state})`);
    if (node === undefined) {
      this.stopTask(t, 'killed');
      return t.rec;
    }
    const c = t.ctl.get(node);
    if (!c) throw new TaskRefused(404, 'not_found', `task ${id} does not run on node ${node}`, '/node');
    if (c.result.end !== null)
      throw new TaskRefused(409, 'conflict', `node ${node}'s part of task ${id} already ended (${c.result.state})`);
    this.stopNode(t, c, 'killed');
    return t.rec;
  }

  /**
   * Subscribes to a task's live events: lines after `since` still held are returned to replay,
   * then `listener` gets the new ones, node results and the summary. Null when the task is not in
   * memory.
   */
  subscribe(id: string, since: number, listener: (e: TaskEvent) => void): Subscription | null {
    const t = this.live.get(id);
    if (!t) return null;
    const first = t.lines[0]?.seq ?? t.seq + 1;
    const replay = t.lines.filter((l) => l.seq > since);
    const dropped = Math.max(0, Math.min(first - 1, t.seq) - since);
    if (t.rec.finished_at !== null) return { replay, dropped, ended: this.get(id) ?? t.rec, unsubscribe: () => {} };
    t.readers.add(listener);
    return { replay, dropped, ended: null, unsubscribe: () => t.readers.delete(listener) };
  }

  /**
   * Puts back tasks the previous run left under way: the manager can no longer follow them, so
   * they end as `interrupted` (emitting `finished`, so that the store and history record it).
   * Their processes on the boards end with the agents' own time limit (timeout_s was sent).
   */
  restore(unfinished: readonly TaskRecord[]): void {
    for (const rec of unfinished) {
      rec.state = 'interrupted';
      rec.finished_at = new Date().toISOString();
      rec.message = 'the manager restarted while the task ran; its results on the boards were not collected';
      this.emit('finished', rec);
    }
  }

  private publish(t: LiveTask, e: TaskEvent): void {
    for (const r of t.readers) {
      try {
        r(e);
      } catch (err) {
        this.log.warn({ task: t.rec.id, err: (err as Error).message }, 'task reader failed');
        t.readers.delete(r);
      }
    }
  }

  /** Stops the whole task: no further node starts; running parts are killed for a kill or a timeout. */
  private stopTask(t: LiveTask, why: 'killed' | 'timeout' | 'fail_fast'): void {
    if (t.stop !== null || t.rec.finished_at !== null) return;
    t.stop = why;
    this.log.info({ task: t.rec.id, why }, 'task stopping');
    for (const c of t.ctl.values()) {
      if (c.result.end !== null) continue;
      if (!c.started) {
        this.endNode(
          t,
          c,
          'skipped',
          why === 'fail_fast'
            ? 'not started: an earlier node failed (fail_fast)'
            : why === 'timeout'
              ? `not started: the task's time limit (${t.rec.timeout_ms} ms) passed`
              : 'not started: the task was killed',
        );
      } else if (why !== 'fail_fast') this.stopNode(t, c, why);
    }
  }

  /** Kills one running node's part (or skips it when it has not started). */
  private stopNode(t: LiveTask, c: NodeCtl, why: 'killed' | 'timeout'): void {
    if (!c.started) {
      this.endNode(t, c, 'skipped', why === 'killed' ? 'not started: killed' : 'not started: timeout');
      return;
    }
    if (c.stop !== null) return;
    c.stop = why;
    c.stopAt = Date.now();
    if (c.target) {
      void this.agents.execKill(c.target, { task_id: t.rec.id }).then((out) => {
        if (!out.ok || out.reply.result !== 0) {
          this.log.warn(
            { task: t.rec.id, node: c.result.node, message: out.ok ? out.reply.message : out.message },
            'exec_kill not confirmed (the follow loop gives up after exec.call_timeout_ms if the agent is gone)',
          );
        }
      });
    }
  }

  /** Runs the task's nodes in a sliding window of batch_size. */
  private async run(t: LiveTask): Promise<TaskRecord> {
    const queue = [...t.ctl.values()];
    const size = t.rec.batch_size;
    await new Promise<void>((resolve) => {
      let running = 0;
      const next = () => {
        while (running < size && t.stop === null) {
          const c = queue.shift();
          if (!c) break;
          if (c.result.end !== null) continue; // killed before it started
          running++;
          void this.runNode(t, c).then(async () => {
            if (t.rec.fail_fast && FAILED.has(c.result.state)) this.stopTask(t, 'fail_fast');
            if (t.rec.batch_wait_ms > 0 && queue.length > 0 && t.stop === null) await sleep(t.rec.batch_wait_ms);
            running--;
            next();
          });
        }
        if (running === 0) resolve();
      };
      next();
    });
    this.finish(t);
    return t.rec;
  }

  /** One node's part: exec, follow, result, files. Never throws. */
  private async runNode(t: LiveTask, c: NodeCtl): Promise<void> {
    const cfg = this.cfg();
    const r = c.result;
    c.started = true;
    r.state = 'running';
    r.begin = new Date().toISOString();
    if (!c.target)
      return this.endNode(t, c, 'error', `node ${r.node} has sent no heartbeat: its agent's port is unknown`);
    if (this.registry.nodes.get(r.node)?.state === 'offline') {
      return this.endNode(t, c, 'error', `node ${r.node} is offline`);
    }
    const target = c.target;
    try {
      const commands = [...new Set(t.sent.flatMap((s) => (s.command ? [s.command] : [])))];
      const why = await this.catalog.ensure(target, commands);
      if (why) return this.endNode(t, c, 'error', why);
      if (c.stop) return this.endNode(t, c, c.stop, `${c.stop} before it started on the board`);
      const left =
        t.rec.timeout_ms > 0
          ? Math.max(1, Math.ceil((Date.parse(t.rec.at) + t.rec.timeout_ms - Date.now()) / 1000))
          : undefined;
      const sent = await this.agents.exec(target, {
        task_id: t.rec.id,
        steps: t.sent,
        ...(t.rec.async ? { async: true } : {}),
        ...(left !== undefined ? { timeout_s: left } : {}),
      });
      if (!sent.ok) return this.endNode(t, c, 'error', sent.message);
      if (sent.reply.result !== 0) {
        return this.endNode(
          t,
          c,
          'failed',
          `the agent refused the task (result ${sent.reply.result}): ${sent.reply.message}`,
        );
      }
      // If a kill came while exec was in flight, the agent has not been told yet.
      if (c.stop) void this.agents.execKill(target, { task_id: t.rec.id });
      let since = 0;
      let lostSince = 0;
      let last: ExecStatusReplyData | null = null;
      for (;;) {
        const st = await this.agents.execStatus(target, {
          task_id: t.rec.id,
          since,
          wait_ms: cfg.status_wait_ms,
        });
        if (!st.ok) {
          const now = Date.now();
          if (st.result !== MANAGER_RESULT.UNREACHABLE && st.result !== MANAGER_RESULT.TIMEOUT) {
            return this.endNode(t, c, 'error', st.message);
          }
          lostSince ||= now;
          if (now - lostSince > cfg.lost_after_ms) {
            return this.endNode(
              t,
              c,
              'error',
              `lost the agent for over ${cfg.lost_after_ms} ms (exec.lost_after_ms): ${st.message}`,
            );
          }
          if (c.stop && now - c.stopAt > cfg.call_timeout_ms) {
            return this.endNode(t, c, c.stop, `${c.stop}; the agent could not confirm it: ${st.message}`);
          }
          await sleep(Math.min(1000, 100 + (now - lostSince) / 10));
          continue;
        }
        const wasLost = lostSince !== 0;
        lostSince = 0;
        const s = st.reply;
        if (s.result !== 0 || s.state === null) {
          // Back after being unreachable (a restart) without the task: it died with the agent.
          return this.endNode(
            t,
            c,
            wasLost ? 'interrupted' : 'error',
            `the agent no longer knows the task${wasLost ? ' after it was unreachable (restarted?)' : ''} (result ${s.result}): ${s.message}`,
          );
        }
        last = s;
        if (s.lines_dropped > 0) {
          r.lines_dropped += s.lines_dropped;
          this.metrics.dropped.inc({ where: 'agent' }, s.lines_dropped);
        }
        for (const l of s.output) this.addLine(t, r.node, l.step, l.stream, l.at, l.line);
        since = Math.max(since, s.next);
        if (ENDED.has(s.state)) break;
      }
      const end = last as ExecStatusReplyData;
      this.takeSteps(r, end.steps, cfg.max_tail_bytes);
      const state: NodeRunState = c.stop === 'timeout' ? 'timeout' : (end.state as NodeRunState);
      const message =
        state === 'done'
          ? ''
          : (end.steps.find((x) => x.state !== 'done' && x.message)?.message ??
            (c.stop === 'timeout'
              ? `the task's time limit (${t.rec.timeout_ms} ms) passed`
              : `the task ${end.state} on the board`));
      await this.fetchFiles(t, c, target);
      return this.endNode(t, c, state, message);
    } catch (err) {
      return this.endNode(t, c, 'error', `internal error: ${(err as Error).message}`);
    }
  }

  /** Keeps the agent's step records with tails bounded by exec.max_tail_bytes; sets the exit code. */
  private takeSteps(r: NodeResult, steps: readonly StepStatus[], max: number): void {
    r.steps = steps.map((s): StepResult => {
      const out = tail(s.stdout_tail, max);
      const err = tail(s.stderr_tail, max);
      return {
        ...s,
        stdout_tail: out.text,
        stderr_tail: err.text,
        stdout_cut_bytes: s.stdout_cut_bytes + out.cut,
        stderr_cut_bytes: s.stderr_cut_bytes + err.cut,
      };
    });
    const codes = r.steps.map((s) => s.exit_code).filter((x): x is number => x !== null);
    r.exit_code = codes.find((x) => x !== 0) ?? (codes.length > 0 ? 0 : null);
  }

  /** Fetches the generate_files of the node's command-set steps that ran. */
  private async fetchFiles(t: LiveTask, c: NodeCtl, target: AgentTarget): Promise<void> {
    const max = this.cfg().max_file_bytes;
    for (const [i, path] of t.generates.entries()) {
      if (path === null) continue;
      const step = c.result.steps.find((s) => s.step === i);
      if (!step || step.begin === null) continue;
      const got = await this.agents.execFile(target, { task_id: t.rec.id, step: i });
      const file: GeneratedFile = { step: i, path, size: 0, sha256: '', kept: false, message: '' };
      if (!got.ok) file.message = got.message;
      else if (got.reply.result !== 0 || got.reply.content_b64 === undefined) file.message = got.reply.message;
      else {
        const content = Buffer.from(got.reply.content_b64, 'base64');
        file.path = got.reply.path ?? path;
        file.size = content.length;
        file.sha256 = got.reply.sha256 ?? '';
        if (content.length > max) file.message = `${content.length} bytes, over exec.max_file_bytes (${max}): not kept`;
        else {
          file.kept = true;
          this.emit('file', t.rec, {
            node: c.result.node,
            step: i,
            path: file.path,
            size: file.size,
            sha256: file.sha256,
            content: new Uint8Array(content),
          } satisfies FetchedFile);
        }
      }
      c.result.files.push(file);
    }
  }

  /** Appends a live line to the task's ring (exec.max_buffered_lines) and publishes it. */
  private addLine(
    t: LiveTask,
    node: string,
    step: number,
    stream: 'stdout' | 'stderr',
    at: number,
    line: string,
  ): void {
    const l: TaskLine = { seq: ++t.seq, node, step, stream, at, line };
    t.lines.push(l);
    const max = this.cfg().max_buffered_lines;
    if (t.lines.length > max) {
      const cut = t.lines.length - max;
      t.lines.splice(0, cut);
      this.metrics.dropped.inc({ where: 'manager' }, cut);
    }
    this.publish(t, { type: 'line', line: l });
  }

  private endNode(t: LiveTask, c: NodeCtl, state: NodeRunState, message: string): void {
    const r = c.result;
    if (r.end !== null) return;
    r.state = state;
    r.message = message;
    r.end = new Date().toISOString();
    r.duration_ms = r.begin === null ? null : Math.max(0, Date.parse(r.end) - Date.parse(r.begin));
    this.metrics.nodes.inc({ state });
    if (state !== 'done' && state !== 'skipped') {
      this.log.info({ task: t.rec.id, node: r.node, state, exit_code: r.exit_code, message }, 'task node ended');
    }
    t.rec.summary = summaryOf(t.rec.results);
    this.emit('node', t.rec, r);
    this.publish(t, { type: 'node', result: r });
  }

  private finish(t: LiveTask): void {
    if (t.rec.finished_at !== null) return;
    if (t.timer) clearTimeout(t.timer);
    for (const c of t.ctl.values()) if (c.result.end === null) this.endNode(t, c, 'skipped', 'not started');
    const s = summaryOf(t.rec.results);
    t.rec.summary = s;
    t.rec.state =
      t.stop === 'killed' ? 'killed' : t.stop === 'timeout' ? 'timeout' : s.done === s.nodes ? 'done' : 'failed';
    t.rec.message = `${s.nodes} node${s.nodes === 1 ? '' : 's'}: ${s.done} done, ${s.failed} failed, ${s.skipped} skipped${t.stop ? ` (${t.stop === 'fail_fast' ? 'stopped by fail_fast' : t.stop})` : ''}`;
    t.rec.finished_at = new Date().toISOString();
    this.metrics.tasks.inc({ state: t.rec.state });
    this.metrics.running.set(this.runningCount);
    this.log.info({ task: t.rec.id, state: t.rec.state, ...s }, 'task ended');
    this.emit('finished', t.rec);
    this.publish(t, { type: 'summary', task: t.rec });
    t.readers.clear();
    // Keep the last exec.keep_tasks finished tasks in memory for late readers.
    const keep = this.cfg().keep_tasks;
    const finished = [...this.live.values()].filter((x) => x.rec.finished_at !== null);
    for (const old of finished.slice(0, Math.max(0, finished.length - keep))) this.live.delete(old.rec.id);
  }
}
