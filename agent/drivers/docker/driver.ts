/**
 * The docker workload driver (docs/protocol.md "docker: what url and file mean", docs/operations.md
 * "Deploying workloads"): images come from a registry (`docker pull url/file`, pull.ts) or, on
 * air-gapped chassis, from an http(s) `docker save` tarball (tarball.ts). Each component is one
 * container named `muster-<uuid>` (reference.ts), labelled with its uuid / instance_id / index,
 * pinned to its granted cores (cpuset) with a hard memory cap and its GPUs; figures come from
 * one-shot stats (stats.ts). The engine is reached through dockerode on a unix socket, loaded on
 * first use (engine.ts).
 */
import type Docker from 'dockerode';
import type { Logger } from '../../../common/log.js';
import { cpuList, fmtBytes } from '../../deploy/admission.js';
import { DeployError, RESULT } from '../../deploy/results.js';
import { createDownloadDispatcher } from '../../net/download.js';
import type { ComponentRecord, Observed, Progress, Started, StartSpec, WorkloadDriver } from '../driver.js';
import { Engine, isStatus, reason } from './engine.js';
import { pullImage } from './pull.js';
import { containerName, isTarballSource, registryImage, validateDockerSource } from './reference.js';
import { type StatsSample, StatsTracker } from './stats.js';
import { fetchTarballImage, type TarballLimits } from './tarball.js';

/** Settings of the docker driver (the agent's `deploy` config section). */
export interface DockerDriverOptions {
  /** Engine socket, e.g. `/var/run/docker.sock` (deploy.docker_socket). */
  socketPath: string;
  /** Time limit of one image pull, or of one tarball download plus its `docker load`, ms. */
  fetchTimeoutMs: number;
  /** Largest image tarball fetched over http(s), bytes. */
  maxBundleBytes: number;
  log: Logger;
}

/** Label keys put on every container this driver creates. */
export const LABELS = {
  uuid: 'muster.uuid',
  instanceId: 'muster.instance_id',
  index: 'muster.index',
  managed: 'muster.managed',
} as const;

/** Docker refuses memory limits below this, bytes. */
const MIN_MEMORY = 6 * 1024 * 1024;

class DockerDriver implements WorkloadDriver {
  readonly type = 'docker' as const;
  private readonly engine: Engine;
  private readonly stats = new StatsTracker();
  private readonly limits: TarballLimits;
  private readonly log: Logger;

  constructor(private readonly opts: DockerDriverOptions) {
    this.engine = new Engine(opts.socketPath, opts.fetchTimeoutMs);
    this.limits = {
      maxBytes: opts.maxBundleBytes,
      timeoutMs: opts.fetchTimeoutMs,
      dispatcher: createDownloadDispatcher(opts.fetchTimeoutMs),
    };
    this.log = opts.log;
  }

  validate(url: string, file: string): string | null {
    return validateDockerSource(url, file);
  }

  /**
   * Removes a leftover container of the same name (an earlier run of this uuid that ended on its
   * own) so the name is free; refuses when that container runs or is not this component's.
   */
  private async freeName(name: string, uuid: string): Promise<void> {
    const docker = await this.engine.docker();
    let info: Docker.ContainerInspectInfo;
    try {
      info = await docker.getContainer(name).inspect();
    } catch (err) {
      if (isStatus(err, 404)) return;
      throw this.engine.runtimeError(`cannot inspect container ${name}`, err);
    }
    if (info.Config.Labels?.[LABELS.uuid] !== uuid) {
      throw new DeployError(
        RESULT.RUNTIME_ERROR,
        `a container named ${name} exists that is not component ${uuid}'s; remove it (docker rm -f ${name})`,
      );
    }
    if (info.State.Running || info.State.Paused || info.State.Restarting) {
      throw new DeployError(
        RESULT.RUNTIME_ERROR,
        `container ${name} (${info.Id.slice(0, 12)}) of component ${uuid} is already running but not recorded by this agent; stop it first (docker rm -f ${name})`,
      );
    }
    this.log.info({ uuid, name, id: info.Id }, 'removing the ended container of an earlier run of this uuid');
    await docker
      .getContainer(info.Id)
      .remove({ force: true })
      .catch((err: unknown) => {
        if (!isStatus(err, 404)) throw this.engine.runtimeError(`cannot remove old container ${name}`, err);
      });
  }

  async start(spec: StartSpec, progress: Progress): Promise<Started> {
    const bad = validateDockerSource(spec.url, spec.file);
    if (bad) throw new DeployError(RESULT.BAD_REQUEST, bad);
    const memory = spec.require.memory;
    if (memory > 0 && memory < MIN_MEMORY) {
      throw new DeployError(
        RESULT.BAD_REQUEST,
        `require.memory: ${fmtBytes(memory)} is below docker's minimum of ${fmtBytes(MIN_MEMORY)}`,
      );
    }
    const name = containerName(spec.uuid);
    await this.freeName(name, spec.uuid);

    const deadline = AbortSignal.timeout(this.opts.fetchTimeoutMs);
    let image: string;
    if (isTarballSource(spec.url)) {
      image = await fetchTarballImage(this.engine, this.limits, spec, progress, deadline, this.log);
    } else {
      image = registryImage(spec.url, spec.file);
      await pullImage(this.engine, image, progress, deadline);
    }

    const hostConfig: Docker.HostConfig = {
      CpusetCpus: cpuList(spec.cpus),
      Memory: memory,
      MemorySwap: memory,
      RestartPolicy: { Name: 'no' },
    };
    if (spec.gpus.length > 0) {
      hostConfig.DeviceRequests = [{ Driver: 'nvidia', DeviceIDs: spec.gpus.map(String), Capabilities: [['gpu']] }];
    }
    const docker = await this.engine.docker();
    let container: Docker.Container;
    try {
      container = await docker.createContainer({
        name,
        Image: image,
        Labels: {
          [LABELS.uuid]: spec.uuid,
          [LABELS.instanceId]: spec.instance_id,
          [LABELS.index]: String(spec.index),
          [LABELS.managed]: 'true',
        },
        HostConfig: hostConfig,
      });
    } catch (err) {
      // A failed create leaves no container; a missing image is a fetch problem.
      if (isStatus(err, 404)) throw this.engine.fetchError(`image ${image} is not available`, err);
      throw this.engine.runtimeError(`cannot create container ${name} from ${image}`, err);
    }
    try {
      progress(`starting ${name} from ${image} on cores ${cpuList(spec.cpus)}`);
      await container.start();
    } catch (err) {
      await container.remove({ force: true }).catch((e: unknown) => {
        if (!isStatus(e, 404))
          this.log.error({ id: container.id, err: reason(e) }, 'cannot remove the failed container');
      });
      throw this.engine.runtimeError(`cannot start container ${name} from ${image}`, err);
    }
    this.log.info({ uuid: spec.uuid, id: container.id, name, image }, 'container started');
    return { id: container.id, name };
  }

  async stop(rec: ComponentRecord, graceMs: number): Promise<void> {
    const c = (await this.engine.docker()).getContainer(rec.id || containerName(rec.uuid));
    try {
      await c.stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
    } catch (err) {
      if (isStatus(err, 404)) return;
      if (!isStatus(err, 304)) throw this.engine.runtimeError(`cannot stop container ${rec.id || rec.name}`, err);
    }
    try {
      await c.remove({ force: true });
    } catch (err) {
      // 404: already gone; 409: a removal is already under way.
      if (isStatus(err, 404, 409)) return;
      throw this.engine.runtimeError(`cannot remove container ${rec.id || rec.name}`, err);
    }
    this.stats.forget(rec.id);
  }

  async observe(recs: readonly ComponentRecord[], signal: AbortSignal): Promise<Map<string, Observed>> {
    const out = new Map<string, Observed>();
    const seen = new Set<string>();
    const docker = await this.engine.docker();
    await Promise.all(
      recs.map(async (rec) => {
        const ref = rec.id || containerName(rec.uuid);
        const resource: Observed['resource'] = {
          cpu: { load: null },
          memory: { mem_used: null, mem_limit: rec.require.memory || null },
          network: { tx: null, rx: null },
        };
        let info: Docker.ContainerInspectInfo;
        try {
          info = await docker.getContainer(ref).inspect({ abortSignal: signal });
        } catch (err) {
          if (isStatus(err, 404)) out.set(rec.uuid, { state: 'FAILED', exitCode: null, resource });
          // Anything else (engine down, out of time): unknown, left out of the map.
          return;
        }
        seen.add(info.Id);
        const st = info.State;
        if (!st.Running && !st.Paused && !st.Restarting) {
          const status = st.Status === 'created' ? 'PENDING' : st.ExitCode === 0 ? 'STOPPED' : 'FAILED';
          out.set(rec.uuid, { state: status, exitCode: st.Status === 'created' ? null : st.ExitCode, resource });
          return;
        }
        const state = st.Paused ? 'SLEEPING' : 'RUNNING';
        try {
          const statsOpts = { stream: false as const, 'one-shot': true, abortSignal: signal };
          const s = (await docker.getContainer(info.Id).stats(statsOpts)) as unknown as StatsSample;
          this.stats.apply(info.Id, s, resource);
        } catch (err) {
          this.log.debug({ uuid: rec.uuid, id: info.Id, err: reason(err) }, 'docker stats failed');
        }
        out.set(rec.uuid, { state, resource });
      }),
    );
    this.stats.keepOnly(seen);
    return out;
  }

  async adopt(recs: readonly ComponentRecord[]): Promise<Map<string, boolean>> {
    let list: Docker.ContainerInfo[];
    try {
      list = await (await this.engine.docker()).listContainers({
        all: true,
        filters: { label: [`${LABELS.managed}=true`] },
      });
    } catch (err) {
      throw this.engine.runtimeError('cannot list containers', err);
    }
    const out = new Map<string, boolean>();
    for (const rec of recs) {
      const name = `/${containerName(rec.uuid)}`;
      const c = list.find(
        (x) => x.Labels?.[LABELS.uuid] === rec.uuid && (rec.id ? x.Id === rec.id : (x.Names ?? []).includes(name)),
      );
      out.set(rec.uuid, c !== undefined && (c.State === 'running' || c.State === 'paused'));
    }
    return out;
  }
}

/**
 * Creates the docker driver (see the module comment). dockerode is not loaded until the first
 * call that needs the engine.
 */
export function createDockerDriver(opts: DockerDriverOptions): WorkloadDriver {
  return new DockerDriver(opts);
}
