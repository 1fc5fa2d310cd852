/**
 * The {@link AgentClient} over the WebSocket node link (docs/links.md "Commands over the link"),
 * and the client the manager uses for every node: {@link RoutingAgentClient} picks, per node, the
 * link when the node reports over it, else HTTP.
 *
 * - A muster agent on the link gets every agent command (deploy, exec, exec_status, exec_kill,
 *   exec_file, command_set) as a `muster.command` carrying the same `{ api_version, data }` body
 *   as over HTTP; its `muster.reply` is checked against the same reply schemas
 *   (manager/agents/http.ts REPLY_CHECKS). Deploy progress lines are not carried (progress: null).
 * - A node speaking only the link specification runs tasks of ONE shell step (`command_content`,
 *   command_type sh or bash): the step is sent as `execute_command` (command_id = the task id,
 *   timeout in seconds) and `exec_status` is answered from its `command_started` and
 *   `command_result`. Deploys, kills, files and command sets are refused with a message.
 *
 * Never throws: failures are outcomes (MANAGER_RESULT of common/api/deploy.ts).
 */
import type { Readable } from 'node:stream';
import { MANAGER_RESULT } from '../../common/api/deploy.js';
import { API_VERSION } from '../../common/constants.js';
import type {
  CommandSetReplyData,
  CommandSetRequestData,
  ExecFileReplyData,
  ExecFileRequestData,
  ExecKillRequestData,
  ExecReplyData,
  ExecRequestData,
  ExecStatusReplyData,
  ExecStatusRequestData,
  OutputLine,
  StepState,
  TaskState,
} from '../../common/exec.js';
import type { CommandResultData } from '../../common/link.js';
import { DeployReplyBody, type DeployRequestData } from '../../common/protocol.js';
import { parseDuration } from '../../common/time.js';
import { type Checker, compile } from '../../common/validate.js';
import type {
  AgentClient,
  AgentOutcome,
  AgentProgress,
  AgentTarget,
  DeployOutcome,
  ExecKillReplyData,
  FileUploadSpec,
} from '../agents/client.js';
import { unsupportedFileCalls } from '../agents/client.js';
import { EXEC_CALL_DEFAULTS, type ExecCallOptions, REPLY_CHECKS } from '../agents/http.js';
import type { NodeRegistry } from '../registry.js';
import type { CallOutcome, LinkHub } from './hub.js';

const checkDeploy = compile<DeployReplyBody>(DeployReplyBody);

/** Default time limit of a seed-link task without one, s. */
const SEED_DEFAULT_TIMEOUT_S = 3600;
/** How long a finished seed-link task's status is kept for exec_status, ms. */
const SEED_KEEP_MS = 10 * 60_000;

const fail = (result: number, message: string) => ({ ok: false as const, result, message });

/** Maps a link call's failure to the outcome the task runner and deployer understand. */
function failure(o: Extract<CallOutcome, { ok: false }>): { ok: false; result: number; message: string } {
  return fail(o.reason === 'timeout' ? MANAGER_RESULT.TIMEOUT : MANAGER_RESULT.UNREACHABLE, o.message);
}

/** A task on a seed-protocol node (or an SSH server behind a relay), as exec_status reports it. */
export interface SeedTask {
  name: string;
  state: TaskState;
  begin: string | null;
  end: string | null;
  exit_code: number | null;
  stdout: string;
  stderr: string;
  message: string;
  lines: OutputLine[];
  waiters: Set<() => void>;
}

/** The link client: muster agents by `muster.command`, seed nodes by `execute_command`. */
export class LinkAgentClient implements AgentClient {
  private readonly seedTasks = new Map<string, SeedTask>();
  /** Files and screen are not carried over the link (docs/links.md "Commands over the link"). */
  private readonly noFiles = unsupportedFileCalls(
    'files and screen are not carried over the WebSocket link: reach the board over HTTP (docs/links.md)',
  );
  readonly fileOffset = this.noFiles.fileOffset;
  readonly filePut = this.noFiles.filePut;
  readonly fileList = this.noFiles.fileList;
  readonly fileGet = this.noFiles.fileGet;
  readonly fileDelete = this.noFiles.fileDelete;
  readonly screen = this.noFiles.screen;

  /**
   * @param hub the link
   * @param opts deploy.timeout_ms and the exec call bounds (docs/configuration.md "deploy", "exec")
   */
  constructor(
    private readonly hub: Pick<LinkHub, 'call' | 'execute' | 'linkOf'>,
    private readonly opts: { deploy_timeout_ms: number; exec?: ExecCallOptions },
  ) {}

  private get execOpts(): ExecCallOptions {
    return this.opts.exec ?? EXEC_CALL_DEFAULTS;
  }

  private seed(node: string): boolean {
    return this.hub.linkOf(node) === 'seed';
  }

  private async command<T>(
    target: AgentTarget,
    name: string,
    data: unknown,
    check: Checker<{ data: T }>,
    timeout: number,
  ): Promise<AgentOutcome<T>> {
    const got = await this.hub.call(target.node, name, { api_version: API_VERSION, data }, timeout);
    if (!got.ok) return failure(got);
    const checked = check.check(got.reply);
    if (checked.ok) return { ok: true, reply: checked.value.data };
    const refusal = REPLY_CHECKS.refusal.check(got.reply);
    if (refusal.ok && refusal.value.data.result !== 0)
      return fail(refusal.value.data.result, refusal.value.data.message);
    return fail(
      MANAGER_RESULT.BAD_REPLY,
      `node ${target.node} answered ${name} over the link with a body that is not its reply: ${checked.error.field} ${checked.error.message}`,
    );
  }

  async deploy(target: AgentTarget, request: DeployRequestData): Promise<DeployOutcome> {
    if (this.seed(target.node)) {
      return fail(
        MANAGER_RESULT.BAD_REPLY,
        `node ${target.node} speaks only the link specification: it takes no deploys`,
      );
    }
    return this.command(target, 'deploy', request, checkDeploy, this.opts.deploy_timeout_ms);
  }

  async progress(_target: AgentTarget, _uuid: string): Promise<AgentProgress | null> {
    return null;
  }

  async exec(target: AgentTarget, data: ExecRequestData): Promise<AgentOutcome<ExecReplyData>> {
    if (!this.seed(target.node)) {
      return this.command(target, 'exec', data, REPLY_CHECKS.exec, this.execOpts.call_timeout_ms);
    }
    return this.seedExec(target.node, data);
  }

  async execStatus(target: AgentTarget, data: ExecStatusRequestData): Promise<AgentOutcome<ExecStatusReplyData>> {
    const t = this.seedTasks.get(`${target.node}|${data.task_id}`);
    if (!t && !this.seed(target.node)) {
      return this.command(
        target,
        'exec_status',
        data,
        REPLY_CHECKS.exec_status,
        (data.wait_ms ?? 0) + this.execOpts.call_timeout_ms,
      );
    }
    return { ok: true, reply: await seedStatus(data, t) };
  }

  async execKill(target: AgentTarget, data: ExecKillRequestData): Promise<AgentOutcome<ExecKillReplyData>> {
    if (this.seed(target.node) || this.seedTasks.has(`${target.node}|${data.task_id}`)) {
      return {
        ok: true,
        reply: {
          result: 4,
          message: 'a node speaking only the link specification cannot kill a command; it ends at its timeout',
        },
      };
    }
    return this.command(target, 'exec_kill', data, REPLY_CHECKS.exec_kill, this.execOpts.call_timeout_ms);
  }

  async execFile(target: AgentTarget, data: ExecFileRequestData): Promise<AgentOutcome<ExecFileReplyData>> {
    if (this.seed(target.node)) return fail(MANAGER_RESULT.BAD_REPLY, 'no files over the link specification');
    return this.command(target, 'exec_file', data, REPLY_CHECKS.exec_file, this.execOpts.call_timeout_ms);
  }

  async commandSet(target: AgentTarget, data: CommandSetRequestData): Promise<AgentOutcome<CommandSetReplyData>> {
    if (this.seed(target.node)) return fail(MANAGER_RESULT.BAD_REPLY, 'no command set over the link specification');
    return this.command(target, 'command_set', data, REPLY_CHECKS.command_set, this.execOpts.call_timeout_ms);
  }

  /** One shell step → execute_command; its status kept for exec_status. */
  private seedExec(node: string, data: ExecRequestData): AgentOutcome<ExecReplyData> {
    const step = data.steps[0];
    const refuse = (message: string) => ({
      ok: true as const,
      reply: { task_id: data.task_id, count: 0, result: 1, message },
    });
    if (data.steps.length !== 1 || !step || step.command_content === undefined || step.command !== undefined) {
      return refuse('a node speaking only the link specification runs tasks of one command_content step');
    }
    if (step.command_type !== undefined && !['sh', 'bash'].includes(step.command_type)) {
      return refuse(`command_type ${step.command_type}: a link-specification node runs shell command text only`);
    }
    let timeoutS = data.timeout_s ?? SEED_DEFAULT_TIMEOUT_S;
    if (step.timeout !== undefined) {
      try {
        timeoutS = Math.min(
          timeoutS,
          typeof step.timeout === 'number' ? step.timeout : Math.ceil(parseDuration(step.timeout, 'timeout') / 1000),
        );
      } catch (err) {
        return refuse((err as Error).message);
      }
    }
    const key = `${node}|${data.task_id}`;
    if (this.seedTasks.has(key)) return refuse(`task ${data.task_id} is already known on ${node}`);
    const t: SeedTask = {
      name: step.name ?? '0',
      state: 'queued',
      begin: null,
      end: null,
      exit_code: null,
      stdout: '',
      stderr: '',
      message: '',
      lines: [],
      waiters: new Set(),
    };
    this.seedTasks.set(key, t);
    const wake = () => {
      for (const w of [...t.waiters]) w();
    };
    void this.hub
      .execute(node, data.task_id, step.command_content, Math.max(1, timeoutS), () => {
        t.state = 'running';
        t.begin = new Date().toISOString();
        wake();
      })
      .then((o) => {
        t.end = new Date().toISOString();
        t.begin ??= t.end;
        if (o.ok) {
          setResult(t, o.result);
        } else {
          t.state = o.reason === 'timeout' ? 'timeout' : 'failed';
          t.message = o.message;
        }
        wake();
        setTimeout(() => this.seedTasks.delete(key), SEED_KEEP_MS).unref();
      });
    return { ok: true, reply: { task_id: data.task_id, count: 1, result: 0, message: '' } };
  }
}

/** Records a command's result in its task (state, exit code, output lines). */
export function setResult(t: SeedTask, r: CommandResultData): void {
  t.exit_code = r.exit_code;
  t.stdout = r.stdout;
  t.stderr = r.stderr;
  t.state = r.exit_code === 0 ? 'done' : 'failed';
  t.message = r.exit_code === 0 ? '' : `exit code ${r.exit_code}`;
  const at = Date.now();
  let seq = 0;
  for (const [stream, text] of [
    ['stdout', r.stdout],
    ['stderr', r.stderr],
  ] as const) {
    if (text === '') continue;
    for (const line of text.replace(/\n$/, '').split('\n')) t.lines.push({ seq: ++seq, step: 0, stream, at, line });
  }
}

export const ended = (s: TaskState) => s !== 'queued' && s !== 'running';

/** exec_status's answer for a task the node does not know. */
export function unknownTask(taskId: string): ExecStatusReplyData {
  return {
    task_id: taskId,
    result: 4,
    message: `no task ${taskId} on this node`,
    state: null,
    begin: null,
    end: null,
    steps: [],
    output: [],
    next: 0,
    lines_dropped: 0,
  };
}

/**
 * exec_status on a one-command task (a link-specification node's, an SSH server's): the long poll
 * waits up to `wait_ms` for a line after `since` or the task's end, then answers with
 * {@link statusOf}; {@link unknownTask} when there is no such task.
 */
export async function seedStatus(data: ExecStatusRequestData, t: SeedTask | undefined): Promise<ExecStatusReplyData> {
  if (!t) return unknownTask(data.task_id);
  const since = data.since ?? 0;
  if (!ended(t.state) && data.wait_ms && !t.lines.some((l) => l.seq > since)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        t.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, data.wait_ms);
      t.waiters.add(done);
    });
  }
  return statusOf(data.task_id, t, since);
}

/** exec_status's answer for a one-command task, output lines after `since`. */
export function statusOf(taskId: string, t: SeedTask, since: number): ExecStatusReplyData {
  const stepState: StepState = t.state === 'queued' ? 'pending' : (t.state as StepState);
  const output = t.lines.filter((l) => l.seq > since);
  return {
    task_id: taskId,
    result: 0,
    message: '',
    state: t.state,
    begin: t.begin,
    end: t.end,
    steps: [
      {
        step: 0,
        name: t.name,
        state: stepState,
        exit_code: t.exit_code,
        signal: null,
        begin: t.begin,
        end: t.end,
        stdout_tail: t.stdout,
        stderr_tail: t.stderr,
        stdout_cut_bytes: 0,
        stderr_cut_bytes: 0,
        message: t.message,
      },
    ],
    output,
    next: Math.max(since, t.lines.length),
    lines_dropped: 0,
  };
}

/**
 * The manager's agent client: the link for a node that reports over it (connected now, or last
 * seen on it), HTTP for the others (docs/links.md "Commands over the link").
 */
export class RoutingAgentClient implements AgentClient {
  constructor(
    private readonly http: AgentClient,
    private readonly link: AgentClient,
    private readonly hub: Pick<LinkHub, 'linkOf'>,
    private readonly registry: Pick<NodeRegistry, 'nodes'>,
    /** SSH servers behind relays (`server:<name>` targets, docs/links.md "The SSH relay"). */
    private readonly relay?: AgentClient,
  ) {}

  private pick(t: AgentTarget): AgentClient {
    if (this.relay && t.node.startsWith('server:')) return this.relay;
    return this.hub.linkOf(t.node) !== null || this.registry.nodes.get(t.node)?.link ? this.link : this.http;
  }

  deploy(t: AgentTarget, r: DeployRequestData) {
    return this.pick(t).deploy(t, r);
  }
  progress(t: AgentTarget, uuid: string) {
    return this.pick(t).progress(t, uuid);
  }
  exec(t: AgentTarget, d: ExecRequestData) {
    return this.pick(t).exec(t, d);
  }
  execStatus(t: AgentTarget, d: ExecStatusRequestData) {
    return this.pick(t).execStatus(t, d);
  }
  execKill(t: AgentTarget, d: ExecKillRequestData) {
    return this.pick(t).execKill(t, d);
  }
  execFile(t: AgentTarget, d: ExecFileRequestData) {
    return this.pick(t).execFile(t, d);
  }
  commandSet(t: AgentTarget, d: CommandSetRequestData) {
    return this.pick(t).commandSet(t, d);
  }
  fileOffset(t: AgentTarget, s: FileUploadSpec) {
    return this.pick(t).fileOffset(t, s);
  }
  filePut(t: AgentTarget, s: Parameters<AgentClient['filePut']>[1], body: Readable, signal?: AbortSignal) {
    return this.pick(t).filePut(t, s, body, signal);
  }
  fileList(t: AgentTarget, path: string) {
    return this.pick(t).fileList(t, path);
  }
  fileGet(t: AgentTarget, path: string) {
    return this.pick(t).fileGet(t, path);
  }
  fileDelete(t: AgentTarget, path: string, recursive: boolean) {
    return this.pick(t).fileDelete(t, path, recursive);
  }
  screen(t: AgentTarget) {
    return this.pick(t).screen(t);
  }
}
