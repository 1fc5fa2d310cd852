/**
 * The agent's workload supervisor: carries out a deploy (docs/protocol.md "5. Load command") through
 * the drivers (agent/drivers/index.ts), with admission (agent/deploy/admission.ts), idempotency per uuid, one operation per
 * uuid at a time, records that survive an agent restart, and re-adoption of running workloads.
 * It is also the agent's WorkloadSource: the `component` list and `core_allocated` of /resource.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { WORKLOAD_TYPES, type WorkloadType } from '../../common/api/primitives.js';
import type { Logger } from '../../common/log.js';
import type { Component, DeployReplyData, DeployRequestData } from '../../common/protocol.js';
import { redactText, redactUrl } from '../../common/redact.js';
import type { ComponentRecord, Observed, WorkloadDriver } from '../drivers/driver.js';
import type { DriverRegistry } from '../drivers/index.js';
import type { WorkloadSnapshot, WorkloadSource } from '../workloads.js';
import { admit, type Capacity, cpuList, fmtBytes } from './admission.js';
import { DeployError, HTTP_STATUS, RESULT, type ResultCode } from './results.js';
import { RecordStore } from './store.js';

/** Supervisor settings (the agent's `deploy` config section). */
export interface SupervisorOptions {
  dataDir: string;
  stopGraceMs: number;
  /** How long a STOPPED component stays in reports, ms. */
  keepEndedMs: number;
  /**
   * Told when a component exits on its own with a failure (`crashed`), and when a component is
   * started or stopped through /deploy (`cleared`: whatever it did before is over). Must not throw.
   */
  onComponent?: (event: 'crashed' | 'cleared', rec: ComponentRecord) => void;
  /**
   * How long the progress lines of an ended operation stay readable (`GET /deploy/:uuid`), ms;
   * default {@link PROGRESS_KEEP_MS}. The uuid is forgotten after it.
   */
  progressKeepMs?: number;
  /** Most uuids whose progress lines are kept; past it the oldest ended ones go (default 1000). */
  progressMaxEntries?: number;
}

/** Default time the progress lines of an ended operation are kept, ms (10 min). */
export const PROGRESS_KEEP_MS = 600_000;

/** Told of a component's `crashed` / `cleared` event (see SupervisorOptions.onComponent). Must not throw. */
export type ComponentListener = (event: 'crashed' | 'cleared', rec: ComponentRecord) => void;

/** A deploy reply and its HTTP status. */
export interface DeployOutcome {
  status: number;
  reply: DeployReplyData;
}

const ACTIVE = new Set(['PENDING', 'RUNNING', 'SLEEPING']);
const FILE_RE = /^[A-Za-z0-9._:@+-]+$/;
/** A uuid names directories and cgroups: no separators, no leading dot, bounded length. */
const UUID_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Runs workloads for one agent. */
export class Supervisor implements WorkloadSource {
  private records = new Map<string, ComponentRecord>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly store: RecordStore;
  /** Progress lines per uuid; `endedAt` (ms) once its operation is over. */
  private readonly progress = new Map<string, { lines: string[]; endedAt?: number }>();
  private lastObserved = new Map<string, Observed>();
  private readonly listeners: ComponentListener[] = [];

  constructor(
    private readonly drivers: DriverRegistry,
    private readonly capacity: () => Capacity,
    private readonly opts: SupervisorOptions,
    private readonly log: Logger,
  ) {
    this.store = new RecordStore(opts.dataDir);
    if (opts.onComponent) this.listeners.push(opts.onComponent);
  }

  /** Adds a listener of component events (as `opts.onComponent`), e.g. the link's alerts. */
  onComponent(listener: ComponentListener): void {
    this.listeners.push(listener);
  }

  private emit(event: 'crashed' | 'cleared', rec: ComponentRecord): void {
    for (const l of this.listeners) l(event, rec);
  }

  /**
   * Loads the records and re-adopts what still runs; a component that vanished while the agent
   * was down is marked FAILED with a message. Never stops a running workload.
   */
  async init(): Promise<void> {
    const recs = await this.store.load().catch(async (err: Error) => {
      // Keep the unreadable file for a person to look at; never overwrite what may be the only
      // list of running workloads.
      const aside = await this.store.setAside().catch(() => null);
      this.log.error(
        { err: err.message, file: this.store.file, kept_as: aside },
        'cannot read component records; starting with none',
      );
      return [] as ComponentRecord[];
    });
    this.records = new Map(recs.map((r) => [r.uuid, r]));
    for (const type of WORKLOAD_TYPES) {
      const mine = recs.filter((r) => r.type === type && ACTIVE.has(r.state));
      if (mine.length === 0) continue;
      const driver = this.drivers[type];
      let alive: Map<string, boolean>;
      try {
        alive = driver ? await driver.adopt(mine) : new Map<string, boolean>();
      } catch (err) {
        // The runtime is not reachable yet (docker still starting): judge these later by observing.
        this.log.warn(
          { type, err: (err as Error).message, components: mine.length },
          'cannot check components now; will observe them later',
        );
        continue;
      }
      for (const r of mine) {
        if (alive.get(r.uuid)) {
          this.log.info({ uuid: r.uuid, type, id: r.id }, 're-adopted running component');
          if (r.state === 'PENDING') r.state = 'RUNNING';
        } else {
          r.state = 'FAILED';
          r.endedAt = new Date().toISOString();
          r.message = driver ? 'vanished while the agent was down' : `no ${type} driver on this agent`;
          this.log.warn({ uuid: r.uuid, type, id: r.id }, 'component vanished while the agent was down');
        }
      }
    }
    await this.persist();
  }

  /** Records in their current state (for the agent's own API and tests). */
  list(): ComponentRecord[] {
    return [...this.records.values()];
  }

  /**
   * Progress lines of the operation under way (or last done) on `uuid`, with URL credentials
   * already redacted; [] once the ended operation's lines were forgotten (see progressKeepMs).
   */
  progressOf(uuid: string): string[] {
    this.pruneProgress();
    return this.progress.get(uuid)?.lines ?? [];
  }

  /** How many uuids have progress lines remembered (bounded by progressMaxEntries). */
  progressEntries(): number {
    this.pruneProgress();
    return this.progress.size;
  }

  /** Forgets the progress of operations ended longer than progressKeepMs ago, and the oldest past the cap. */
  private pruneProgress(): void {
    const keep = this.opts.progressKeepMs ?? PROGRESS_KEEP_MS;
    const max = this.opts.progressMaxEntries ?? 1000;
    const now = Date.now();
    for (const [uuid, p] of this.progress) {
      if (p.endedAt !== undefined && now - p.endedAt >= keep) this.progress.delete(uuid);
    }
    // Insertion order is start order: the first ended entries are the oldest.
    for (const [uuid, p] of this.progress) {
      if (this.progress.size <= max) break;
      if (p.endedAt !== undefined) this.progress.delete(uuid);
    }
  }

  private persist(): Promise<void> {
    return this.store.save([...this.records.values()]);
  }

  /** Runs `fn` with the uuid's lock held: operations on one uuid never overlap. */
  private withLock<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(uuid) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.locks.set(uuid, next);
    void next
      .finally(() => {
        if (this.locks.get(uuid) === next) this.locks.delete(uuid);
      })
      .catch(() => undefined);
    return next;
  }

  /**
   * Carries out one deploy request (already schema-valid).
   * @returns the spec's reply (the request's fields, `id`, `result`, `message`) and its HTTP status
   */
  async handle(req: DeployRequestData): Promise<DeployOutcome> {
    const reply = (result: ResultCode, message: string, rec?: ComponentRecord): DeployOutcome => {
      const id = rec?.id ? (this.drivers[rec.type]?.replyId?.(rec) ?? rec.id) : req.id;
      // A message may quote the url (fetch errors): never its credentials (docs/operations.md).
      return {
        status: HTTP_STATUS[result],
        reply: { ...req, ...(id !== undefined && id !== '' ? { id } : {}), result, message: redactText(message) },
      };
    };
    try {
      if (!UUID_RE.test(req.uuid)) {
        throw new DeployError(
          RESULT.BAD_REQUEST,
          `uuid ${JSON.stringify(req.uuid)}: must be 1-128 letters, digits, . _ - and not start with a dot`,
        );
      }
      const rec = await this.withLock(req.uuid, () => (req.mode === 'start' ? this.start(req) : this.stop(req)));
      this.emit('cleared', rec);
      return reply(RESULT.OK, rec.message ?? 'ok', rec);
    } catch (err) {
      if (err instanceof DeployError) return reply(err.code, err.message, this.records.get(req.uuid));
      this.log.error({ err: redactText(String((err as Error).stack)), uuid: req.uuid }, 'deploy failed unexpectedly');
      return reply(RESULT.RUNTIME_ERROR, `internal error: ${(err as Error).message}`);
    }
  }

  private driverFor(type: WorkloadType): WorkloadDriver {
    const d = this.drivers[type];
    if (!d) throw new DeployError(RESULT.RUNTIME_ERROR, `type ${type}: no ${type} runtime on this board`);
    return d;
  }

  private async start(req: DeployRequestData): Promise<ComponentRecord> {
    const missing = (['url', 'file', 'require'] as const).filter((k) => req[k] === undefined);
    if (missing.length > 0) throw new DeployError(RESULT.BAD_REQUEST, `start needs ${missing.join(', ')}`);
    const url = req.url as string;
    const file = req.file as string;
    const require = req.require as NonNullable<DeployRequestData['require']>;
    if (require.cpu < 1)
      throw new DeployError(RESULT.BAD_REQUEST, 'require.cpu: must be at least 1 (whole cores, allocated exclusively)');
    if (file === '.' || file === '..' || !FILE_RE.test(file)) {
      throw new DeployError(
        RESULT.BAD_REQUEST,
        `file ${JSON.stringify(file)}: must be a plain name (letters, digits, . _ : @ + -), no path separators`,
      );
    }
    const driver = this.driverFor(req.type);
    const bad = driver.validate(url, file);
    if (bad) throw new DeployError(RESULT.BAD_REQUEST, bad);

    const existing = this.records.get(req.uuid);
    if (existing && ACTIVE.has(existing.state)) {
      if (existing.type !== req.type) {
        throw new DeployError(
          RESULT.BAD_REQUEST,
          `uuid ${req.uuid} is already a running ${existing.type} component (${existing.id})`,
        );
      }
      return { ...existing, message: `already running as ${existing.id} (start is idempotent per uuid)` };
    }

    const cap = this.capacity();
    const held = [...this.records.values()]
      .filter((r) => ACTIVE.has(r.state))
      .map((r) => ({ cpus: r.cpus, gpus: r.gpus, memory: r.require.memory }));
    const grant = admit(cap, held, require);
    if ('short' in grant)
      throw new DeployError(RESULT.INSUFFICIENT_RESOURCES, `insufficient resources: ${grant.short}`);

    const now = new Date().toISOString();
    const rec: ComponentRecord = {
      uuid: req.uuid,
      type: req.type,
      instance_id: req.instance_id ?? '',
      index: req.index ?? 0,
      // Stored and shown without credentials; the driver gets the real url for the request only.
      url: redactUrl(url),
      file,
      require,
      cpus: grant.cpus,
      gpus: grant.gpus,
      state: 'PENDING',
      id: '',
      name: file,
      createdAt: now,
    };
    this.records.set(rec.uuid, rec);
    await this.persist();
    const lines: string[] = [];
    this.progress.delete(rec.uuid);
    const entry: { lines: string[]; endedAt?: number } = { lines };
    this.progress.set(rec.uuid, entry);
    this.pruneProgress();
    const workDir = path.join(this.opts.dataDir, 'components', rec.uuid);
    try {
      await mkdir(workDir, { recursive: true });
      const started = await driver.start(
        {
          uuid: rec.uuid,
          instance_id: rec.instance_id,
          index: rec.index,
          url,
          file,
          require,
          cpus: rec.cpus,
          gpus: rec.gpus,
          workDir,
        },
        (line) => {
          lines.push(redactText(line));
          if (lines.length > 200) lines.shift();
        },
      );
      entry.endedAt = Date.now();
      Object.assign(rec, started, { state: 'RUNNING', startedAt: new Date().toISOString() });
      rec.message = `started ${rec.type} ${rec.name} as ${rec.id} on cores ${cpuList(rec.cpus)}, memory ${fmtBytes(require.memory)}${rec.gpus.length ? `, GPUs ${rec.gpus.join(',')}` : ''}`;
      await this.persist();
      this.log.info(
        { uuid: rec.uuid, type: rec.type, id: rec.id, cpus: rec.cpus, memory: require.memory, gpus: rec.gpus },
        'component started',
      );
      return rec;
    } catch (err) {
      // Nothing half-started is left: the driver cleans up its own; the record and the grant go.
      entry.endedAt = Date.now();
      this.records.delete(rec.uuid);
      await this.persist();
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
      this.log.warn(
        { uuid: rec.uuid, type: rec.type, err: redactText((err as Error).message) },
        'component start failed',
      );
      throw err instanceof DeployError ? err : new DeployError(RESULT.RUNTIME_ERROR, (err as Error).message);
    }
  }

  private async stop(req: DeployRequestData): Promise<ComponentRecord> {
    let rec = this.records.get(req.uuid);
    if (!rec && req.id !== undefined) rec = [...this.records.values()].find((r) => r.id === String(req.id));
    if (!rec)
      throw new DeployError(
        RESULT.NOT_FOUND,
        `no component with uuid ${req.uuid}${req.id !== undefined ? ` or id ${req.id}` : ''} on this board`,
      );
    if (rec.type !== req.type)
      throw new DeployError(RESULT.BAD_REQUEST, `type ${req.type}: component ${rec.uuid} is a ${rec.type} component`);
    if (!ACTIVE.has(rec.state)) {
      // Already ended: remove what may be left of it (an exited container), then say so.
      await this.drivers[rec.type]?.stop(rec, 0).catch(() => undefined);
      const was = rec.state.toLowerCase();
      const since = rec.endedAt;
      if (rec.state === 'FAILED') {
        rec.state = 'STOPPED';
        await this.persist();
      }
      return { ...rec, message: `already ${was}${since ? ` since ${since}` : ''}` };
    }
    const driver = this.driverFor(rec.type);
    try {
      await driver.stop(rec, this.opts.stopGraceMs);
    } catch (err) {
      throw err instanceof DeployError
        ? err
        : new DeployError(RESULT.RUNTIME_ERROR, `cannot stop ${rec.id}: ${(err as Error).message}`);
    }
    rec.state = 'STOPPED';
    rec.endedAt = new Date().toISOString();
    rec.message = `stopped ${rec.type} ${rec.id}; cores ${cpuList(rec.cpus)} given back`;
    await this.persist();
    this.log.info({ uuid: rec.uuid, type: rec.type, id: rec.id }, 'component stopped');
    return rec;
  }

  /**
   * The component list and cores held, for /resource. Observes the drivers once; a workload that
   * ended on its own becomes FAILED (non-zero exit) or STOPPED and gives its resources back.
   */
  async snapshot(signal: AbortSignal): Promise<WorkloadSnapshot> {
    this.pruneProgress();
    const now = Date.now();
    for (const [uuid, r] of this.records) {
      if (
        r.state === 'STOPPED' &&
        r.endedAt &&
        now - Date.parse(r.endedAt) > this.opts.keepEndedMs &&
        !this.locks.has(uuid)
      ) {
        this.records.delete(uuid);
      }
    }
    const observed = new Map<string, Observed>();
    for (const type of WORKLOAD_TYPES) {
      const recs = [...this.records.values()].filter(
        (r) => r.type === type && (r.state === 'RUNNING' || r.state === 'SLEEPING'),
      );
      const d = this.drivers[type];
      if (!d || recs.length === 0) continue;
      try {
        for (const [k, v] of await d.observe(recs, signal)) observed.set(k, v);
      } catch (err) {
        this.log.debug({ type, err: (err as Error).message }, 'observe failed');
      }
    }
    let changed = false;
    for (const [uuid, o] of observed) {
      const r = this.records.get(uuid);
      if (!r || (r.state !== 'RUNNING' && r.state !== 'SLEEPING') || this.locks.has(uuid)) continue;
      if ((o.state === 'RUNNING' || o.state === 'SLEEPING') && o.state !== r.state) {
        r.state = o.state; // paused ↔ running
        changed = true;
      } else if (o.state === 'FAILED' || o.state === 'STOPPED') {
        r.state = o.state;
        r.exitCode = o.exitCode ?? null;
        r.endedAt = new Date().toISOString();
        r.message = `exited on its own with code ${o.exitCode ?? 'unknown'}`;
        changed = true;
        this.log.warn(
          { uuid, type: r.type, id: r.id, exitCode: o.exitCode },
          `component ended on its own (${o.state})`,
        );
        if (o.state === 'FAILED') this.emit('crashed', r);
      }
    }
    if (changed) await this.persist();
    this.lastObserved = observed;
    const components: Component[] = [...this.records.values()].map((r) => this.toComponent(r));
    const coreAllocated = [...this.records.values()]
      .filter((r) => ACTIVE.has(r.state))
      .reduce((s, r) => s + r.cpus.length, 0);
    return { components, coreAllocated };
  }

  private toComponent(r: ComponentRecord): Component {
    const o = this.lastObserved.get(r.uuid);
    const running = r.state === 'RUNNING' || r.state === 'SLEEPING';
    return {
      instance_id: r.instance_id,
      uuid: r.uuid,
      index: r.index,
      config: { name: r.name, id: r.id },
      state: r.state,
      resource:
        running && o
          ? o.resource
          : {
              cpu: { load: null },
              memory: { mem_used: null, mem_limit: r.require.memory || null },
              network: { tx: null, rx: null },
            },
    };
  }
}
