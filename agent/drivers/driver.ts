/**
 * The one interface every workload driver implements (docker, bar): as in Nomad's drivers/,
 * adding a runtime touches one file. The supervisor (agent/deploy/supervisor.ts) owns admission,
 * idempotency, persistence and locking; a driver only starts, stops, observes and re-adopts.
 */
import type { Component, ComponentState, Require } from '../../common/protocol.js';

/** What the supervisor persists for each component (agent data dir, components.json). */
export interface ComponentRecord {
  uuid: string;
  type: 'docker' | 'bar';
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
  /** bar: the pid and its start time (clock ticks since boot, /proc/<pid>/stat field 22). */
  pid?: number | undefined;
  pidStartTicks?: number | undefined;
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
  id: string;
  name: string;
  pid?: number;
  pidStartTicks?: number;
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
  readonly type: 'docker' | 'bar';
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
}
