/**
 * The one interface every workload driver implements (docker, bar; docs/protocol.md "/deploy"
 * `type`): as in Nomad's drivers/, a runtime is one folder `agent/drivers/<type>/` whose
 * `driver.ts` makes a WorkloadDriver, registered by its WorkloadType in agent/drivers/index.ts.
 * The supervisor (agent/deploy/supervisor.ts) owns admission, idempotency, persistence and
 * locking; a driver only validates, starts, stops, observes and re-adopts.
 */
import type { WorkloadType } from '../../common/api/primitives.js';
import type { Component, ComponentState, Require } from '../../common/protocol.js';

/**
 * What a driver keeps about one of its components across agent restarts (e.g. bar: the pid and
 * its start ticks): a JSON object persisted with the record, opaque to everything but the driver
 * that returned it from `start`.
 */
export type DriverState = Readonly<Record<string, unknown>>;

/** What the supervisor persists for each component (agent data dir, components.json). */
export interface ComponentRecord {
  uuid: string;
  type: WorkloadType;
  instance_id: string;
  index: number;
  url: string;
  file: string;
  require: Require;
  /** Core ids held exclusively (cpuset), e.g. [2, 3]. */
  cpus: number[];
  /** GPU indexes held. */
  gpus: number[];
  state: ComponentState;
  /** Container id, or the bar process pid as a string; '' before the start completes. */
  id: string;
  /** Container name or bundle name. */
  name: string;
  /** The driver's own state of this component, as its `start` returned it (opaque here). */
  driverState?: DriverState | undefined;
  /** Exit code of a workload that ended on its own. */
  exitCode?: number | null | undefined;
  /** ISO times. */
  createdAt: string;
  startedAt?: string | undefined;
  endedAt?: string | undefined;
  /** Last message (why it failed, how it stopped). */
  message?: string | undefined;
}

/** What a driver needs to start one component. */
export interface StartSpec {
  uuid: string;
  instance_id: string;
  index: number;
  url: string;
  file: string;
  require: Require;
  cpus: number[];
  gpus: number[];
  /** A directory private to this component (bundle unpack, logs), created by the supervisor. */
  workDir: string;
}

/** What a start produced. */
export interface Started {
  /** Container id, pid as a string, ...: how the runtime names the workload. */
  id: string;
  /** Container name or bundle name. */
  name: string;
  /** Kept on the record as `driverState` and handed back in every later call. */
  driverState?: DriverState;
}

/** A component as the driver sees it now. */
export interface Observed {
  state: ComponentState;
  exitCode?: number | null;
  resource: Component['resource'];
}

/** Progress lines shown to the operator while an image is pulled or a bundle fetched. */
export type Progress = (line: string) => void;

/** A workload runtime. Errors are thrown as DeployError (agent/deploy/results.ts). */
export interface WorkloadDriver {
  readonly type: WorkloadType;
  /** Checks `url` and `file` syntax before any work; returns what is wrong, or null. */
  validate(url: string, file: string): string | null;
  /** Fetches and starts; on failure leaves nothing behind (no container, no process). */
  start(spec: StartSpec, progress: Progress): Promise<Started>;
  /** Stops and removes; succeeds when the workload is already gone. `graceMs` before SIGKILL. */
  stop(rec: ComponentRecord, graceMs: number): Promise<void>;
  /** One-shot state and resource figures of the given components (never a slow two-sample call). */
  observe(recs: readonly ComponentRecord[], signal: AbortSignal): Promise<Map<string, Observed>>;
  /** At agent start: which recorded components are still running (and are ours). */
  adopt(recs: readonly ComponentRecord[]): Promise<Map<string, boolean>>;
  /**
   * The component's `id` in a deploy reply (docs/protocol.md "Reply": the container id, a
   * string, for docker; the pid, an int, for bar). Absent: `rec.id`.
   */
  replyId?(rec: ComponentRecord): string | number;
}
