/**
 * The docker workload driver (DESIGN.md "docker"): images come from a registry (`url` is
 * `host[:port][/prefix]`, `file` the image reference: `docker pull url/file`) or, on air-gapped
 * chassis, from an http(s) server (`url` is a base URL, `file` a `docker save` tarball that is
 * fetched and `docker load`ed). Each component is one container named `muster-<uuid>`, labelled
 * with its uuid / instance_id / index, pinned to its granted cores (cpuset) with a hard memory cap
 * and its GPUs. Talks to the engine through dockerode on a unix socket.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import { getGlobalDispatcher, interceptors, request } from 'undici';
import type { Logger } from '../../common/log.js';
import { cpuList, fmtBytes } from '../deploy/admission.js';
import { DeployError, RESULT } from '../deploy/results.js';
import type { ComponentRecord, Observed, Progress, Started, StartSpec, WorkloadDriver } from './driver.js';

/** Settings of the docker driver (the agent's `deploy` config section). */
export interface DockerDriverOptions {
  /** Engine socket, e.g. `/var/run/docker.sock`. */
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
/** At most one throttled progress line per this many ms. */
const PROGRESS_EVERY_MS = 1000;

// Image reference grammar (github.com/distribution/reference), lowercase path components.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = '[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}';
const IMAGE_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG}|@${DIGEST})?$`);
const PREFIX_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const HOST_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
const HOST_RE = new RegExp(`^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9A-Fa-f:.]+\\])(?::(\\d{1,5}))?$`);
const TARBALL_RE = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]*\.(?:tar|tar\.gz|tgz)$/;

/**
 * The container name of component `uuid`: `muster-<uuid>` when the uuid is a valid docker name
 * part, else the uuid with other characters replaced by `_` plus a short hash of it (so that two
 * uuids never share a name).
 */
export function containerName(uuid: string): string {
  const safe = uuid.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100);
  if (safe === uuid) return `muster-${uuid}`;
  return `muster-${safe}-${createHash('sha256').update(uuid).digest('hex').slice(0, 8)}`;
}

/**
 * Checks a docker `url` and `file`.
 * @returns what is wrong, naming the field, or null when both are usable
 */
export function validateDockerSource(url: string, file: string): string | null {
  if (/^https?:\/\//i.test(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return `url ${JSON.stringify(url)}: not a valid http(s) URL`;
    }
    if (!u.hostname) return `url ${JSON.stringify(url)}: the http(s) base URL has no host`;
    if (u.search || u.hash) return `url ${JSON.stringify(url)}: the base URL must not have a query or fragment`;
    if (!TARBALL_RE.test(file)) {
      return `file ${JSON.stringify(file)}: with an http(s) url, file must be an image tarball name (*.tar, *.tar.gz or *.tgz, made by docker save)`;
    }
    return null;
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)) {
    return `url ${JSON.stringify(url)}: scheme must be http:// or https://, or give a registry address host[:port][/prefix] without scheme`;
  }
  const reg = url.replace(/\/+$/, '');
  const slash = reg.indexOf('/');
  const host = slash < 0 ? reg : reg.slice(0, slash);
  const prefix = slash < 0 ? '' : reg.slice(slash + 1);
  const m = HOST_RE.exec(host);
  const port = m?.[1] === undefined ? 1 : Number(m[1]);
  if (!m || port < 1 || port > 65535) {
    return `url ${JSON.stringify(url)}: must be a registry address host[:port][/prefix] or an http(s):// base URL`;
  }
  if (prefix && !PREFIX_RE.test(prefix)) {
    return `url ${JSON.stringify(url)}: registry path prefix ${JSON.stringify(prefix)} must be lowercase letters, digits and . _ - separated by /`;
  }
  if (!IMAGE_RE.test(file)) {
    return `file ${JSON.stringify(file)}: with a registry url, file must be an image reference name[:tag] or name@digest (lowercase name, tag or digest, not both)`;
  }
  if (`${reg}/${file}`.replace(/[:@].*$/, '').length > 255) {
    return `file ${JSON.stringify(file)}: the image name ${reg}/${file} is longer than 255 characters`;
  }
  return null;
}

/** The docker stats fields this driver reads (all optional: the engine omits what it lacks). */
interface StatsSample {
  read?: string;
  cpu_stats?: CpuSample;
  precpu_stats?: CpuSample;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}
interface CpuSample {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] };
  system_cpu_usage?: number;
  online_cpus?: number;
}

/** An engine error as dockerode (docker-modem) gives it. */
interface EngineError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
}

/** The engine's own words for an error. */
function reason(err: unknown): string {
  const e = err as EngineError;
  const msg = e?.json && typeof e.json === 'object' && e.json.message ? e.json.message : (e?.message ?? String(err));
  // docker-modem prefixes `(HTTP code 404) unexpected - `: keep only the engine's message.
  return msg.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

const isStatus = (err: unknown, ...codes: number[]): boolean =>
  codes.includes((err as EngineError | undefined)?.statusCode ?? -1);

/** An error for a time-bounded fetch that ran out of time. */
class FetchTimeout extends Error {}

/**
 * Reads a JSON-lines progress stream of the engine (pull, load) to its end.
 * Like `docker.modem.followProgress`, but a malformed line is skipped instead of throwing inside
 * a stream handler, an `error` event of the stream rejects, and `signal` ends it early.
 * @returns every event
 * @throws the first `{error}` event's message, a stream error, or FetchTimeout on abort
 */
function followJsonLines(
  stream: NodeJS.ReadableStream,
  signal: AbortSignal,
  onEvent: (ev: Record<string, unknown>) => void,
): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const events: Record<string, unknown>[] = [];
    let buf = '';
    let done = false;
    let failure: Error | undefined;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (err) {
        (stream as unknown as { destroy?: () => void }).destroy?.();
        reject(err);
      } else resolve(events);
    };
    const onAbort = () => finish(new FetchTimeout('time limit exceeded'));
    const line = (raw: string) => {
      const s = raw.trim();
      if (!s) return;
      let ev: Record<string, unknown>;
      try {
        ev = JSON.parse(s) as Record<string, unknown>;
      } catch {
        return;
      }
      events.push(ev);
      const detail = ev.errorDetail as { message?: string } | undefined;
      if (ev.error !== undefined || detail?.message) {
        failure ??= new Error(String(detail?.message ?? ev.error));
        return;
      }
      try {
        onEvent(ev);
      } catch {
        // a progress callback never breaks the operation
      }
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
    });
    stream.on('error', (err: Error) => finish(signal.aborted ? new FetchTimeout('time limit exceeded') : err));
    const end = () => {
      line(buf);
      buf = '';
      if (signal.aborted) return finish(new FetchTimeout('time limit exceeded'));
      finish(failure);
    };
    stream.on('end', end);
    stream.on('close', end);
  });
}

/** Percent of `part` in `total`, rounded. */
const pct = (part: number, total: number): number => Math.min(100, Math.round((part / total) * 100));

/** Rounds a CPU load to 0.1 %. */
const round1 = (x: number): number => Math.round(x * 10) / 10;

/**
 * Creates the docker driver.
 *
 * Resource figures of `observe` (Component['resource'] of the protocol):
 * - `cpu.load`: % of one core (200 = two cores busy), from the CPU time the container used
 *   between two samples over the host CPU time in between (docker stats' formula). A one-shot
 *   stats call has no previous sample of its own (its precpu_stats is empty), so the driver keeps
 *   each container's last sample and compares against it: the first observation of a container
 *   gives null, every later one the average load since the previous observation.
 * - `memory.mem_used`: bytes, usage minus page cache (cgroup v1 `cache`, v2 `inactive_file`);
 *   `memory.mem_limit`: bytes, the cgroup limit (require.memory).
 * - `network.tx` / `rx`: bytes since the container started, summed over its networks; null
 *   when it has none (network mode none/host).
 */
export function createDockerDriver(opts: DockerDriverOptions): WorkloadDriver {
  // dockerode (with ssh2 and protobufjs behind it) is loaded on first use, not at agent start:
  // a board that never runs a container does not carry ~25 MiB of code it does not need.
  let client: Docker | undefined;
  const engine = async (): Promise<Docker> => {
    if (!client) {
      const { default: DockerCtor } = await import('dockerode');
      client = new DockerCtor({ socketPath: opts.socketPath });
    }
    return client;
  };
  const log = opts.log;
  /** Last CPU sample of each container, by container id. */
  const lastCpu = new Map<string, { usage: number; system: number; at: number; cpus: number }>();
  const httpDispatcher = getGlobalDispatcher().compose(interceptors.redirect({ maxRedirections: 5 }));

  /** A DeployError for an engine failure; `what` says which step. */
  const runtimeError = (what: string, err: unknown): DeployError => {
    const e = err as EngineError;
    if (
      e?.statusCode === undefined &&
      ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE'].includes(e?.code ?? '')
    ) {
      return new DeployError(
        RESULT.RUNTIME_ERROR,
        `${what}: docker engine unreachable at ${opts.socketPath} (${e.code}): is dockerd running?`,
      );
    }
    return new DeployError(RESULT.RUNTIME_ERROR, `${what}: ${reason(err)}`);
  };

  /** A DeployError for an image that could not be fetched: FETCH_FAILED, or RUNTIME_ERROR if the engine is down. */
  const fetchError = (what: string, err: unknown): DeployError => {
    if (err instanceof DeployError) return err;
    const r = runtimeError(what, err);
    if (r.message.includes('docker engine unreachable')) return r;
    if (err instanceof FetchTimeout) {
      return new DeployError(RESULT.FETCH_FAILED, `${what}: time limit of ${opts.fetchTimeoutMs} ms exceeded`);
    }
    return new DeployError(RESULT.FETCH_FAILED, `${what}: ${reason(err)}`);
  };

  /** Pulls `ref` from its registry. */
  async function pull(ref: string, progress: Progress, signal: AbortSignal): Promise<void> {
    progress(`pulling ${ref}`);
    let last = 0;
    const seen = new Set<string>();
    try {
      const stream = await (await engine()).pull(ref, { abortSignal: signal });
      await followJsonLines(stream, signal, (ev) => {
        const status = typeof ev.status === 'string' ? ev.status : '';
        const layer = typeof ev.id === 'string' ? ev.id : '';
        const d = ev.progressDetail as { current?: number; total?: number } | undefined;
        if (d && typeof d.total === 'number' && d.total > 0 && typeof d.current === 'number') {
          const now = Date.now();
          if (now - last < PROGRESS_EVERY_MS) return;
          last = now;
          progress(`pulling ${ref}: ${layer} ${status.toLowerCase()} ${pct(d.current, d.total)}%`);
        } else if (status) {
          const lineText = `pulling ${ref}: ${layer ? `${layer}: ` : ''}${status}`;
          if (seen.has(lineText)) return;
          seen.add(lineText);
          progress(lineText);
        }
      });
    } catch (err) {
      throw fetchError(`image ${ref} could not be pulled`, signal.aborted ? new FetchTimeout() : err);
    }
  }

  /** Downloads `url/file` into `dest`, bounded in size and time. */
  async function download(src: string, file: string, dest: string, progress: Progress, signal: AbortSignal) {
    progress(`fetching ${src}`);
    const what = `image tarball ${src} could not be fetched`;
    let got = 0;
    try {
      const res = await request(src, { method: 'GET', signal, dispatcher: httpDispatcher });
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => undefined);
        throw new DeployError(RESULT.FETCH_FAILED, `${what}: HTTP ${res.statusCode}`);
      }
      const lenHeader = res.headers['content-length'];
      const total = typeof lenHeader === 'string' && /^\d+$/.test(lenHeader) ? Number(lenHeader) : undefined;
      if (total !== undefined && total > opts.maxBundleBytes) {
        res.body.destroy();
        throw new DeployError(
          RESULT.FETCH_FAILED,
          `${what}: ${fmtBytes(total)} is more than the ${fmtBytes(opts.maxBundleBytes)} allowed (deploy.max_bundle_bytes)`,
        );
      }
      let last = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          got += chunk.length;
          if (got > opts.maxBundleBytes) {
            cb(
              new DeployError(
                RESULT.FETCH_FAILED,
                `${what}: more than the ${fmtBytes(opts.maxBundleBytes)} allowed (deploy.max_bundle_bytes)`,
              ),
            );
            return;
          }
          const now = Date.now();
          if (now - last >= PROGRESS_EVERY_MS) {
            last = now;
            progress(
              `fetching ${file}: ${fmtBytes(got)}${total ? ` of ${fmtBytes(total)} (${pct(got, total)}%)` : ''}`,
            );
          }
          cb(null, chunk);
        },
      });
      await pipeline(res.body, counter, createWriteStream(dest), { signal });
    } catch (err) {
      if (err instanceof DeployError) throw err;
      if (signal.aborted) throw fetchError(what, new FetchTimeout());
      throw new DeployError(RESULT.FETCH_FAILED, `${what}: ${(err as Error).message}`);
    }
    progress(`fetched ${file}: ${fmtBytes(got)}`);
  }

  /** Loads a `docker save` tarball; returns the image reference it holds. */
  async function load(tarball: string, file: string, progress: Progress, signal: AbortSignal): Promise<string> {
    progress(`loading ${file}`);
    const what = `image tarball ${file} could not be loaded`;
    let events: Record<string, unknown>[];
    try {
      const stream = await (await engine()).loadImage(tarball, { abortSignal: signal });
      let last = 0;
      events = await followJsonLines(stream, signal, (ev) => {
        const now = Date.now();
        if (typeof ev.stream === 'string' || now - last < PROGRESS_EVERY_MS) return;
        last = now;
        const d = ev.progressDetail as { current?: number; total?: number } | undefined;
        if (typeof ev.status === 'string' && d?.total) {
          progress(`loading ${file}: ${ev.status.toLowerCase()} ${pct(d.current ?? 0, d.total)}%`);
        }
      });
    } catch (err) {
      throw fetchError(what, signal.aborted ? new FetchTimeout() : err);
    }
    const text = events.map((e) => (typeof e.stream === 'string' ? e.stream : '')).join('');
    const tagged = [...text.matchAll(/^Loaded image: (\S+)/gm)].map((m) => m[1] as string);
    const ids = [...text.matchAll(/^Loaded image ID: (\S+)/gm)].map((m) => m[1] as string);
    const ref = tagged[0] ?? ids[0];
    if (!ref) throw new DeployError(RESULT.FETCH_FAILED, `${what}: docker load reported no image`);
    if (tagged.length + ids.length > 1) {
      log.warn({ file, images: [...tagged, ...ids] }, 'tarball holds several images; running the first');
    }
    progress(`loaded ${ref}`);
    return ref;
  }

  /**
   * Removes a leftover container of the same name (an earlier run of this uuid that ended on its
   * own) so the name is free; refuses when that container runs or is not this component's.
   */
  async function freeName(name: string, uuid: string): Promise<void> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await (await engine()).getContainer(name).inspect();
    } catch (err) {
      if (isStatus(err, 404)) return;
      throw runtimeError(`cannot inspect container ${name}`, err);
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
    log.info({ uuid, name, id: info.Id }, 'removing the ended container of an earlier run of this uuid');
    await (await engine())
      .getContainer(info.Id)
      .remove({ force: true })
      .catch((err: unknown) => {
        if (!isStatus(err, 404)) throw runtimeError(`cannot remove old container ${name}`, err);
      });
  }

  return {
    type: 'docker',

    validate: validateDockerSource,

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
      await freeName(name, spec.uuid);

      const deadline = AbortSignal.timeout(opts.fetchTimeoutMs);
      let image: string;
      if (/^https?:\/\//i.test(spec.url)) {
        const src = `${spec.url.replace(/\/+$/, '')}/${spec.file}`;
        const tarball = path.join(spec.workDir, `image-${process.pid}-${Date.now()}.tar`);
        try {
          await mkdir(spec.workDir, { recursive: true });
          await download(src, spec.file, tarball, progress, deadline);
          image = await load(tarball, spec.file, progress, deadline);
        } finally {
          await rm(tarball, { force: true }).catch(() => undefined);
        }
      } else {
        image = `${spec.url.replace(/\/+$/, '')}/${spec.file}`;
        await pull(image, progress, deadline);
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
      let container: Docker.Container;
      try {
        container = await (await engine()).createContainer({
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
        if (isStatus(err, 404)) throw fetchError(`image ${image} is not available`, err);
        throw runtimeError(`cannot create container ${name} from ${image}`, err);
      }
      try {
        progress(`starting ${name} from ${image} on cores ${cpuList(spec.cpus)}`);
        await container.start();
      } catch (err) {
        await container.remove({ force: true }).catch((e: unknown) => {
          if (!isStatus(e, 404)) log.error({ id: container.id, err: reason(e) }, 'cannot remove the failed container');
        });
        throw runtimeError(`cannot start container ${name} from ${image}`, err);
      }
      log.info({ uuid: spec.uuid, id: container.id, name, image }, 'container started');
      return { id: container.id, name };
    },

    async stop(rec: ComponentRecord, graceMs: number): Promise<void> {
      const c = (await engine()).getContainer(rec.id || containerName(rec.uuid));
      try {
        await c.stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
      } catch (err) {
        if (isStatus(err, 404)) return;
        if (!isStatus(err, 304)) throw runtimeError(`cannot stop container ${rec.id || rec.name}`, err);
      }
      try {
        await c.remove({ force: true });
      } catch (err) {
        // 404: already gone; 409: a removal is already under way.
        if (isStatus(err, 404, 409)) return;
        throw runtimeError(`cannot remove container ${rec.id || rec.name}`, err);
      }
      lastCpu.delete(rec.id);
    },

    async observe(recs: readonly ComponentRecord[], signal: AbortSignal): Promise<Map<string, Observed>> {
      const out = new Map<string, Observed>();
      const seen = new Set<string>();
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
            info = await (await engine()).getContainer(ref).inspect({ abortSignal: signal });
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
            const s = (await (await engine()).getContainer(info.Id).stats(statsOpts)) as unknown as StatsSample;
            resource.cpu.load = cpuLoad(info.Id, s);
            const mem = s.memory_stats;
            if (mem && typeof mem.usage === 'number') {
              const st2 = mem.stats ?? {};
              const cache = 'cache' in st2 ? st2.cache : st2.inactive_file;
              resource.memory.mem_used = Math.max(0, mem.usage - (cache ?? 0));
            }
            if (mem && typeof mem.limit === 'number' && mem.limit > 0) resource.memory.mem_limit = mem.limit;
            if (s.networks && Object.keys(s.networks).length > 0) {
              const nets = Object.values(s.networks);
              resource.network.tx = nets.reduce((a, n) => a + (n.tx_bytes ?? 0), 0);
              resource.network.rx = nets.reduce((a, n) => a + (n.rx_bytes ?? 0), 0);
            }
          } catch (err) {
            log.debug({ uuid: rec.uuid, id: info.Id, err: reason(err) }, 'docker stats failed');
          }
          out.set(rec.uuid, { state, resource });
        }),
      );
      for (const id of lastCpu.keys()) if (!seen.has(id)) lastCpu.delete(id);
      return out;
    },

    async adopt(recs: readonly ComponentRecord[]): Promise<Map<string, boolean>> {
      let list: Docker.ContainerInfo[];
      try {
        list = await (await engine()).listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`] } });
      } catch (err) {
        throw runtimeError('cannot list containers', err);
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
    },
  };

  /**
   * CPU load of a container, % of one core: from the sample's own precpu_stats when the engine
   * filled it (a streaming or two-sample stats call), else against the previous sample this
   * driver kept; null for the first sample of a container.
   */
  function cpuLoad(id: string, s: StatsSample): number | null {
    const cur = s.cpu_stats;
    const usage = cur?.cpu_usage?.total_usage;
    const system = cur?.system_cpu_usage;
    if (typeof usage !== 'number') return null;
    const cpus = cur?.online_cpus || cur?.cpu_usage?.percpu_usage?.length || 0;
    const at = s.read ? Date.parse(s.read) : Date.now();
    const pre = s.precpu_stats;
    const prev =
      pre?.cpu_usage?.total_usage && pre.system_cpu_usage
        ? { usage: pre.cpu_usage.total_usage, system: pre.system_cpu_usage, at: Number.NaN, cpus }
        : lastCpu.get(id);
    lastCpu.set(id, { usage, system: system ?? 0, at, cpus });
    if (!prev) return null;
    const dUsage = usage - prev.usage;
    if (dUsage < 0) return null;
    // Host CPU time elapsed (ns, all cores) when the engine reports it, else wall-clock time.
    if (typeof system === 'number' && prev.system > 0 && system > prev.system && cpus > 0) {
      return round1((dUsage / (system - prev.system)) * cpus * 100);
    }
    const dWallNs = (at - prev.at) * 1e6;
    return dWallNs > 0 ? round1((dUsage / dWallNs) * 100) : null;
  }
}
