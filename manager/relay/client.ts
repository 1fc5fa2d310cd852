/**
 * The {@link AgentClient} of SSH servers behind relays (docs/links.md "Running commands through a
 * relay"): a task step on target `server:<name>` is sent to the server's relay as
 * `execute_command` (its credential opened from the store just for the message), and the
 * `command_result` becomes the task's state, exit code, output lines and tails, recorded like any
 * task's. Tasks of ONE shell step (`command_content`, command type sh or bash) only; deploys,
 * kills, files and command sets are refused with a message.
 *
 * Host keys: the relay reports the fingerprint it saw (`hostKey`); the first one is pinned on the
 * server (trust on first use, recorded in the history) and sent with every later command; a
 * relay refusing a changed key (`failure: host_key_changed`) raises a critical
 * `host_key_changed` alert on the server.
 *
 * Never throws: failures are outcomes. Never logs a credential.
 */
import { MANAGER_RESULT } from '../../common/api/deploy.js';
import type {
  CommandSetReplyData,
  ExecFileReplyData,
  ExecKillRequestData,
  ExecReplyData,
  ExecRequestData,
  ExecStatusReplyData,
  ExecStatusRequestData,
} from '../../common/exec.js';
import type { Logger } from '../../common/log.js';
import { type RelayExecuteData, SERVER_PREFIX } from '../../common/relay.js';
import { parseDuration } from '../../common/time.js';
import type { AgentClient, AgentOutcome, AgentProgress, DeployOutcome, ExecKillReplyData } from '../agents/client.js';
import { unsupportedFileCalls } from '../agents/client.js';
import type { AlertEngine } from '../alerts/engine.js';
import { type SeedTask, seedStatus, setResult } from '../link/client.js';
import type { Store } from '../store/store.js';
import type { RelayConfig, RelayHub } from './hub.js';
import type { SecretBox } from './secrets.js';

/** How long a finished task's status is kept for exec_status, ms. */
const KEEP_MS = 10 * 60_000;

const fail = (result: number, message: string) => ({ ok: false as const, result, message });

/** What the relay client uses. */
export interface RelayClientDeps {
  hub: Pick<RelayHub, 'execute'>;
  store: Pick<Store, 'relays' | 'addHistory'>;
  box: SecretBox;
  alerts: Pick<AlertEngine, 'raise'>;
  cfg: () => RelayConfig;
  log: Logger;
}

/** Runs one-command tasks on SSH servers through their relays. */
export class RelayAgentClient implements AgentClient {
  private readonly tasks = new Map<string, SeedTask>();
  /** Files and screen do not go through a relay (docs/links.md "The SSH relay"). */
  private readonly noFiles = unsupportedFileCalls('files and screen are not carried through an SSH relay');
  readonly fileOffset = this.noFiles.fileOffset;
  readonly filePut = this.noFiles.filePut;
  readonly fileList = this.noFiles.fileList;
  readonly fileGet = this.noFiles.fileGet;
  readonly fileDelete = this.noFiles.fileDelete;
  readonly screen = this.noFiles.screen;

  constructor(private readonly d: RelayClientDeps) {}

  async deploy(target: { node: string }): Promise<DeployOutcome> {
    return fail(MANAGER_RESULT.BAD_REPLY, `${target.node} is an SSH server behind a relay: it takes no deploys`);
  }

  async progress(): Promise<AgentProgress | null> {
    return null;
  }

  async exec(target: { node: string }, data: ExecRequestData): Promise<AgentOutcome<ExecReplyData>> {
    const refuse = (message: string) => ({
      ok: true as const,
      reply: { task_id: data.task_id, count: 0, result: 1, message },
    });
    const name = target.node.slice(SERVER_PREFIX.length);
    const server = this.d.store.relays.server(name);
    if (!target.node.startsWith(SERVER_PREFIX) || !server) return refuse(`no SSH server ${name}`);
    const step = data.steps[0];
    if (data.steps.length !== 1 || !step || step.command_content === undefined || step.command !== undefined) {
      return refuse('an SSH server behind a relay runs tasks of one command_content step');
    }
    if (step.command_type !== undefined && !['sh', 'bash'].includes(step.command_type)) {
      return refuse(`command_type ${step.command_type}: an SSH server behind a relay runs shell command text only`);
    }
    if (step.command_content.length === 0 || step.command_content.length > 65_536) {
      return refuse('the command text must be 1 to 65536 characters');
    }
    let timeoutMs = data.timeout_s !== undefined ? data.timeout_s * 1000 : this.d.cfg().default_timeout_ms;
    if (step.timeout !== undefined) {
      try {
        timeoutMs = Math.min(
          timeoutMs,
          typeof step.timeout === 'number' ? step.timeout * 1000 : parseDuration(step.timeout, 'timeout'),
        );
      } catch (err) {
        return refuse((err as Error).message);
      }
    }
    const key = `${target.node}|${data.task_id}`;
    if (this.tasks.has(key)) return refuse(`task ${data.task_id} is already known on ${target.node}`);
    let secret: string;
    try {
      secret = this.d.box.open(server.secret, server.name);
    } catch (err) {
      return refuse(`the credential of ${target.node} cannot be opened: ${(err as Error).message}`);
    }
    const t: SeedTask = {
      name: step.name ?? '0',
      state: 'running',
      begin: new Date().toISOString(),
      end: null,
      exit_code: null,
      stdout: '',
      stderr: '',
      message: '',
      lines: [],
      waiters: new Set(),
    };
    this.tasks.set(key, t);
    const msg: RelayExecuteData = {
      commandId: `${data.task_id}.${server.id}`,
      serverId: server.id,
      host: server.host,
      port: server.port,
      username: server.username,
      ...(server.auth === 'password' ? { password: secret } : { privateKey: secret }),
      command: step.command_content,
      timeout: Math.max(1, Math.round(timeoutMs)),
      ...(server.host_key ? { hostKey: server.host_key } : {}),
    };
    void this.d.hub.execute(server.relay, msg).then((o) => {
      t.end = new Date().toISOString();
      if (o.ok) {
        const r = o.result;
        this.hostKey(server.name, server.host_key, r.hostKey, r.failure, r.result.stderr);
        setResult(t, {
          command_id: r.commandId,
          exit_code: r.result.exitCode,
          stdout: r.result.stdout,
          stderr: r.result.stderr,
        });
        if (r.failure === 'timeout') t.state = 'timeout';
        if (r.failure) t.message = `${r.failure}: ${r.result.stderr.slice(0, 512)}`;
      } else {
        t.state = o.reason === 'timeout' ? 'timeout' : o.reason === 'lost' ? 'interrupted' : 'failed';
        t.message = o.message;
      }
      for (const w of [...t.waiters]) w();
      setTimeout(() => this.tasks.delete(key), KEEP_MS).unref();
    });
    return { ok: true, reply: { task_id: data.task_id, count: 1, result: 0, message: '' } };
  }

  /** Trust on first use, or the alert of a changed key. */
  private hostKey(
    name: string,
    pinned: string | null,
    seen: string | undefined,
    failure: string | undefined,
    stderr: string,
  ): void {
    const node = `${SERVER_PREFIX}${name}`;
    if (failure === 'host_key_changed') {
      const message = `SSH server ${name}: the host key changed (pinned ${pinned ?? '?'}, offered ${seen ?? '?'}); commands are refused until an admin runs muster servers trust ${name}`;
      this.d.alerts.raise(
        { kind: 'host_key_changed', rule: 'host_key_changed', severity: 'critical', node, message },
        Date.now(),
      );
      this.d.store.addHistory({
        at: Date.now(),
        node,
        kind: 'operation',
        operation: 'ssh_host_key_refused',
        args: { pinned, offered: seen ?? null },
        result: 1,
        message: stderr.slice(0, 512),
        who: 'manager',
      });
      return;
    }
    if (pinned === null && seen) {
      if (this.d.store.relays.setHostKey(name, seen)) {
        this.d.log.info({ server: name, host_key: seen }, 'SSH host key pinned (trust on first use)');
        this.d.store.addHistory({
          at: Date.now(),
          node,
          kind: 'operation',
          operation: 'ssh_host_key_pinned',
          args: { host_key: seen },
          result: 0,
          message: `host key of ${name} pinned on first use: ${seen}`,
          who: 'manager',
        });
      }
    }
  }

  async execStatus(target: { node: string }, data: ExecStatusRequestData): Promise<AgentOutcome<ExecStatusReplyData>> {
    return { ok: true, reply: await seedStatus(data, this.tasks.get(`${target.node}|${data.task_id}`)) };
  }

  async execKill(_t: { node: string }, _d: ExecKillRequestData): Promise<AgentOutcome<ExecKillReplyData>> {
    return {
      ok: true,
      reply: { result: 4, message: 'a relay cannot kill a command; it ends at its timeout (the relay signals it)' },
    };
  }

  async execFile(): Promise<AgentOutcome<ExecFileReplyData>> {
    return fail(MANAGER_RESULT.BAD_REPLY, 'no files from an SSH server behind a relay');
  }

  async commandSet(): Promise<AgentOutcome<CommandSetReplyData>> {
    return fail(MANAGER_RESULT.BAD_REPLY, 'no command set on an SSH server behind a relay');
  }
}
