/**
 * Starts with placement (docs/scheduling.md "Placement", "Races"): the scheduler picks the node
 * and reserves there, the Deployer sends the start. When the agent refuses it for lack of
 * resources (its admission is the last word: the manager's view may be stale), that node is
 * passed over for scheduler.refused_cooldown_ms and the start is placed again elsewhere, at most
 * scheduler.max_attempts times in all; each retry is a new deployment whose id the refused one
 * records as `placement.next`.
 *
 * `wireScheduler` keeps the reservation ledger in step with every start the Deployer sends (to a
 * named node too): reserved when sent, released when it fails; and notes the GPUs of the starts
 * already recorded (call it after Deployer.restore).
 */
import { randomUUID } from 'node:crypto';
import type { DeploymentRecord } from '../../common/api/deploy.js';
import type { Constraint } from '../../common/constraints.js';
import type { Logger } from '../../common/log.js';
import type { Deployer, StartInput, Submitted } from '../deploy.js';
import type { Distinct, Scheduler } from './scheduler.js';
import type { Scoring } from './score.js';

/** The agent's result code for a start refused for lack of resources (docs/protocol.md "Result codes"). */
export const AGENT_INSUFFICIENT_RESOURCES = 2;

/** A start to place. */
export interface PlacedStartInput extends StartInput {
  constraints?: readonly Constraint[];
  scoring?: Scoring | undefined;
  distinct?: Distinct | undefined;
  /** Nodes holding siblings (for distinct). */
  avoid?: readonly string[];
}

/** No node can take the start; `explain` says why (`8 nodes: 3 filtered by ..., 4 exhausted on cpu, 1 suspect`). */
export class PlacementFailed extends Error {
  constructor(
    readonly explain: string,
    readonly reasons: Record<string, number>,
  ) {
    super(`no node fits: ${explain}`);
    this.name = 'PlacementFailed';
  }
}

/** A placed start: the first deployment, and the final one (after retries) once done. */
export interface PlacedSubmitted extends Submitted {
  /** The node of the first attempt. */
  node: string;
}

/**
 * Keeps the scheduler's reservations in step with the Deployer: a start sent reserves its
 * resources on its node (a placed one already did), a start that fails releases them.
 */
export function wireScheduler(deployer: Deployer, scheduler: Scheduler): void {
  // The GPUs of components started before a manager restart (the deployments put back).
  for (const rec of deployer.list())
    if (rec.mode === 'start' && rec.result === 0 && rec.request.require)
      scheduler.noteGpus(rec.uuid, rec.request.require.gpu);
  deployer.on('deployment', (rec: DeploymentRecord) => {
    if (rec.mode !== 'start' || !rec.request.require) return;
    if (!scheduler.hasReservation(rec.uuid, rec.node)) scheduler.reserve(rec.node, rec.uuid, rec.request.require);
  });
  deployer.on('finished', (rec: DeploymentRecord) => {
    if (rec.mode === 'start' && rec.result !== 0) scheduler.release(rec.uuid);
  });
}

/** Places starts and retries them elsewhere when an agent refuses. */
export class Placer {
  /**
   * @param maxAttempts most placements of one start (scheduler.max_attempts; a function reads the
   *   value of a reloaded config)
   */
  constructor(
    private readonly scheduler: Scheduler,
    private readonly deployer: Pick<Deployer, 'start'>,
    private readonly log: Logger,
    private readonly maxAttempts: number | (() => number),
  ) {}

  /**
   * Places and sends a start. Returns at once with the first deployment; `done` resolves with the
   * last deployment of the chain (the one that succeeded, or the last refused or failed).
   * @throws PlacementFailed when no node can take it now
   * @throws DeployRefused (manager/deploy.ts) when the chosen node cannot be called
   */
  start(input: PlacedStartInput, who: string): PlacedSubmitted {
    const uuid = input.uuid || randomUUID();
    const first = this.attempt({ ...input, uuid }, who, 1);
    return first;
  }

  private attempt(input: PlacedStartInput & { uuid: string }, who: string, attempt: number): PlacedSubmitted {
    const p = this.scheduler.place(
      {
        require: input.require,
        constraints: input.constraints ?? [],
        scoring: input.scoring,
        distinct: input.distinct,
        avoid: input.avoid ?? [],
      },
      input.uuid,
    );
    if (!p.ok) throw new PlacementFailed(p.explain, p.reasons);
    let sub: Submitted;
    try {
      sub = this.deployer.start(
        p.node,
        {
          ...input,
          placement: { score: Math.round(p.score * 1e4) / 1e4, feasible: p.feasible, total: p.total, attempt },
        },
        who,
      );
    } catch (err) {
      this.scheduler.release(input.uuid);
      throw err;
    }
    const done = sub.done.then((rec): Promise<DeploymentRecord> | DeploymentRecord => {
      if (rec.result !== AGENT_INSUFFICIENT_RESOURCES) return rec;
      this.scheduler.release(input.uuid);
      this.scheduler.markRefused(p.node);
      const max = typeof this.maxAttempts === 'number' ? this.maxAttempts : this.maxAttempts();
      if (attempt >= max) return rec;
      try {
        const next = this.attempt(input, who, attempt + 1);
        if (rec.placement) rec.placement.next = next.deployment.id;
        this.log.info(
          { uuid: input.uuid, refused_by: p.node, node: next.node, attempt: attempt + 1 },
          'start refused by the agent for lack of resources; placed again',
        );
        return next.done;
      } catch (err) {
        this.log.warn({ uuid: input.uuid, err: (err as Error).message }, 'start refused and no other node fits');
        return rec;
      }
    });
    return { deployment: sub.deployment, done, node: p.node };
  }
}
