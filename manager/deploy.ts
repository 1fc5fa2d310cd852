/**
 * The manager's side of the load command (docs/protocol.md "5. Load command"): sends a start or
 * stop to the agent of a node (its address and port from the node's latest heartbeat) through an
 * AgentClient (manager/agents/), and records every operation.
 *
 * The request `data` is the spec's `{ mode, type, uuid, id?, url, file, require, instance_id?,
 * index? }` (instance_id and index are muster's optional extensions). Whatever goes wrong on the
 * way (agent unreachable, time limit, a reply that is not the spec's shape) is a recorded failure
 * with a negative `result` (MANAGER_RESULT), never a crash. Non-negative results are the agent's
 * own (docs/protocol.md "Result codes": 0 ok, 1 bad request, 2 insufficient resources, ...).
 *
 * While a start is under way the agent's progress (docs/protocol.md "Progress: `GET /deploy/:uuid`")
 * is polled, and new progress lines (image pull, bundle fetch) are kept with the record.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type DeploymentRecord, MANAGER_RESULT, type PlacementInfo } from '../common/api/deploy.js';
import type { WorkloadType } from '../common/api/primitives.js';
import type { Logger } from '../common/log.js';
import type { DeployReplyData, DeployRequestData, Require } from '../common/protocol.js';
import { redactText, redactUrl } from '../common/redact.js';
import type { AgentClient, AgentTarget } from './agents/client.js';
import type { ManagerConfig } from './config.js';
import { Refused } from './refused.js';
import type { NodeRegistry } from './registry.js';

export { type DeploymentRecord, MANAGER_RESULT };

/** Most deployments kept in memory; the oldest go first. */
export const DEPLOYMENTS_KEPT = 1000;
/** Most progress lines kept per deployment. */
const PROGRESS_KEPT = 500;

/** What an operator asks for in a start. */
export interface StartInput {
  type: WorkloadType;
  /** Component uuid; generated when absent. */
  uuid?: string | undefined;
  url: string;
  file: string;
  require: Require;
  instance_id?: string | undefined;
  index?: number | undefined;
  /** How the scheduler chose the node (a start sent without one: manager/scheduler/), kept on the record. */
  placement?: PlacementInfo | undefined;
}

/** What an operator asks for in a stop. */
export interface StopInput {
  uuid: string;
  /** Defaults to the type the component was started with (deployments, then the latest report). */
  type?: WorkloadType | undefined;
  /** Container id or bar pid; defaults to the id in the node's latest report. */
  id?: string | number | undefined;
}

/** A refused operation: HTTP status, error code and message for the REST API. */
export class DeployRefused extends Refused {}

/** An operation accepted: its record (updated in place) and a promise of the finished record. */
export interface Submitted {
  deployment: DeploymentRecord;
  done: Promise<DeploymentRecord>;
}

/** The deploy settings the Deployer uses (the time limits and tokens are the AgentClient's). */
type DeployConfig = Pick<ManagerConfig['deploy'], 'progress_poll_ms'>;

/**
 * Appends to `have` the lines of `got` it does not hold yet. `got` is the agent's latest window
 * of the stream (the agent keeps only its last lines), `have` what was taken so far: the longest
 * suffix of `have` that is a prefix of `got` is the overlap.
 */
export function newLines(have: readonly string[], got: readonly string[]): string[] {
  for (let k = Math.min(have.length, got.length); k > 0; k--) {
    let match = true;
    for (let i = 0; i < k; i++) {
      if (have[have.length - k + i] !== got[i]) {
        match = false;
        break;
      }
    }
    if (match) return got.slice(k);
  }
  return [...got];
}

/**
 * Sends deploy commands to agents and keeps their records. Events: `deployment` (a record was
 * created), `finished` (a record got its result).
 */
export class Deployer extends EventEmitter {
  private readonly records: DeploymentRecord[] = [];

  /**
   * @param cfg progress_poll_ms: how often a start's progress is read
   * @param registry where the nodes' agents are (latest heartbeats)
   * @param agents how the agents are called
   * @param keep most records kept in memory
   */
  constructor(
    private readonly cfg: DeployConfig,
    private readonly registry: NodeRegistry,
    private readonly agents: Pick<AgentClient, 'deploy' | 'progress'>,
    private readonly log: Logger,
    readonly keep = DEPLOYMENTS_KEPT,
  ) {
    super();
  }

  /**
   * Puts back the records of a previous run (oldest first). One still under way when the manager
   * stopped can no longer get its reply: it is finished with MANAGER_RESULT.INTERRUPTED (and the
   * `finished` event is emitted for it, so that the store records that).
   */
  restore(records: DeploymentRecord[]): void {
    for (const r of records) {
      this.records.push(r);
      if (r.result === null) {
        this.finish(
          r,
          MANAGER_RESULT.INTERRUPTED,
          'the manager restarted before the agent replied; the operation may have completed on the board (see muster components)',
          null,
        );
      }
    }
    while (this.records.length > this.keep) this.records.shift();
  }

  /** Deployments, oldest first (of `node` when given; the newest `limit` when given). */
  list(filter: { node?: string | undefined; limit?: number | undefined } = {}): DeploymentRecord[] {
    const mine = filter.node === undefined ? this.records : this.records.filter((r) => r.node === filter.node);
    return filter.limit === undefined ? [...mine] : mine.slice(Math.max(0, mine.length - filter.limit));
  }

  /** One deployment by its id. */
  get(id: string): DeploymentRecord | undefined {
    return this.records.find((r) => r.id === id);
  }

  /**
   * Sends a start to `node`'s agent. Returns at once; the call goes on in the background.
   * @throws DeployRefused when the node is unknown (404) or offline (409)
   */
  start(node: string, input: StartInput, who = 'cli'): Submitted {
    const target = this.target(node);
    const data: DeployRequestData = {
      mode: 'start',
      type: input.type,
      uuid: input.uuid || randomUUID(),
      url: input.url,
      file: input.file,
      require: input.require,
      ...(input.instance_id !== undefined ? { instance_id: input.instance_id } : {}),
      ...(input.index !== undefined ? { index: input.index } : {}),
    };
    return this.submit(node, target, data, who, input.placement);
  }

  /**
   * Sends a stop to `node`'s agent. `type` and `id` default to what is known of the component
   * (the spec names `id` as needed to stop, so a spec-only agent gets it too).
   * @throws DeployRefused when the node is unknown (404) or offline (409), or the type cannot be told (400)
   */
  stop(node: string, input: StopInput, who = 'cli'): Submitted {
    const target = this.target(node);
    const known = this.componentOf(node, input.uuid);
    const type = input.type ?? known.type;
    if (!type) {
      throw new DeployRefused(
        400,
        'bad_request',
        `type: node ${node} reports no component ${input.uuid} and no start of it is recorded; give the type (docker or bar)`,
        '/type',
      );
    }
    const id = input.id ?? known.id;
    const data: DeployRequestData = {
      mode: 'stop',
      type,
      uuid: input.uuid,
      ...(id !== undefined
        ? { id: type === 'bar' && typeof id === 'string' && /^[1-9]\d*$/.test(id) ? Number(id) : id }
        : {}),
    };
    return this.submit(node, target, data, who);
  }

  /** The agent address of `node`, refusing unknown and offline nodes (a suspect one is allowed). */
  private target(node: string): AgentTarget {
    const n = this.registry.nodes.get(node);
    const hb = n ? this.registry.boardOf(n)?.heartbeat : undefined;
    if (!n || !hb) throw new DeployRefused(404, 'not_found', `no node ${node}`);
    if (n.state === 'offline') {
      throw new DeployRefused(
        409,
        'node_offline',
        `node ${node} is offline since ${new Date(n.since).toISOString()} (no heartbeat from ${n.primary}); refusing to deploy to it`,
      );
    }
    return { node, host_ip: hb.host_ip, port: hb.service_port };
  }

  /** The type and id of a component of `node`: from the latest report, then from recorded starts. */
  private componentOf(node: string, uuid: string): { type?: WorkloadType; id?: string | number } {
    const n = this.registry.nodes.get(node);
    const c = n ? this.registry.boardOf(n)?.resource?.component.find((x) => x.uuid === uuid) : undefined;
    const started = this.records.findLast(
      (r) => r.node === node && r.uuid === uuid && r.mode === 'start' && r.result === 0,
    );
    const type =
      started?.type ??
      this.records.findLast((r) => r.node === node && r.uuid === uuid)?.type ??
      (c?.config.id ? (/^\d+$/.test(c.config.id) ? 'bar' : 'docker') : undefined);
    const id = c?.config.id || started?.reply?.id;
    return { ...(type ? { type } : {}), ...(id !== undefined && id !== '' ? { id } : {}) };
  }

  /**
   * Records the request with its url redacted (credentials and secret query values removed:
   * common/redact.ts), so that the API, the history, the store and the log never see them; the
   * real request is kept only in memory, for the call to the agent.
   */
  private submit(
    node: string,
    target: AgentTarget,
    data: DeployRequestData,
    who: string,
    placement?: PlacementInfo,
  ): Submitted {
    const rec: DeploymentRecord = {
      id: randomUUID(),
      node,
      mode: data.mode,
      type: data.type,
      uuid: data.uuid,
      request: data.url === undefined ? data : { ...data, url: redactUrl(data.url) },
      who,
      at: new Date().toISOString(),
      finished_at: null,
      result: null,
      message: null,
      reply: null,
      progress: [],
      ...(placement ? { placement } : {}),
    };
    this.records.push(rec);
    while (this.records.length > this.keep) this.records.shift();
    this.emit('deployment', rec);
    this.log.info(
      { deployment: rec.id, node, mode: data.mode, type: data.type, uuid: data.uuid, who, agent: target.host_ip },
      'deploy sent',
    );
    const done = this.run(rec, target, data).then(
      () => rec,
      (err: Error) => {
        // run() records every failure itself; this is a last guard.
        this.finish(rec, MANAGER_RESULT.BAD_REPLY, `internal error: ${err.message}`, null);
        return rec;
      },
    );
    return { deployment: rec, done };
  }

  private finish(rec: DeploymentRecord, result: number, message: string, reply: DeployReplyData | null): void {
    if (rec.result !== null) return;
    rec.result = result;
    rec.message = redactText(message);
    rec.reply = reply && {
      ...reply,
      message: redactText(reply.message),
      ...(reply.url !== undefined ? { url: redactUrl(reply.url) } : {}),
    };
    rec.finished_at = new Date().toISOString();
    const fields = { deployment: rec.id, node: rec.node, mode: rec.mode, uuid: rec.uuid, result, message: rec.message };
    if (result === 0) this.log.info(fields, 'deploy done');
    else this.log.warn(fields, 'deploy failed');
    this.emit('finished', rec);
  }

  /**
   * Sends the request (`sent`: the real one, url with its credentials; `rec.request` is the
   * redacted copy) and records the outcome; polls progress meanwhile (starts only).
   */
  private async run(rec: DeploymentRecord, target: AgentTarget, sent: DeployRequestData): Promise<void> {
    const poller = rec.mode === 'start' ? await this.pollProgress(rec, target) : null;
    try {
      const out = await this.agents.deploy(target, sent);
      if (!out.ok) {
        this.finish(rec, out.result, out.message, null);
        return;
      }
      if (poller) await poller.last();
      this.finish(rec, out.reply.result, out.reply.message, out.reply);
    } finally {
      poller?.stop();
    }
  }

  /**
   * Polls the agent's progress every progress_poll_ms and appends new lines to `rec.progress`;
   * resolves once the baseline is read, the request may then go out. Lines of an earlier
   * operation on the same uuid (the agent keeps the last one's) are told apart by the component
   * record's creation time, read before the first poll.
   */
  private async pollProgress(rec: DeploymentRecord, target: AgentTarget) {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const fetchOne = () => this.agents.progress(target, rec.uuid);
    // The creation time of the agent's record before this operation (undefined: none, or unknown),
    // read before the request goes out so that it cannot see the new record.
    const before = (await fetchOne())?.createdAt;
    const take = async () => {
      const d = await fetchOne();
      if (!d || !Array.isArray(d.progress)) return;
      if (before !== undefined && d.createdAt === before) return;
      const got = d.progress.filter((l): l is string => typeof l === 'string').map(redactText);
      const add = newLines(rec.progress, got);
      if (add.length === 0) return;
      rec.progress.push(...add);
      if (rec.progress.length > PROGRESS_KEPT) rec.progress.splice(0, rec.progress.length - PROGRESS_KEPT);
    };
    let current: Promise<void> = Promise.resolve();
    const loop = () => {
      if (stopped) return;
      timer = setTimeout(() => {
        current = take().finally(loop);
      }, this.cfg.progress_poll_ms);
      timer.unref();
    };
    loop();
    return {
      /** Takes the lines that came after the last poll (called when the reply is in). */
      last: async () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        await current;
        await take();
      },
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }
}
