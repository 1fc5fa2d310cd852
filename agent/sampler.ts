/**
 * Runs each collector on its own interval and keeps its latest good sample, so that building a
 * report only reads memory (docs/protocol.md "7. Timing": a report is assembled from recent
 * samples, never waits on a collector).
 */

import type { Logger } from '../common/log.js';
import type { Collector, CollectorContext, CollectorDef } from './collectors/collector.js';
import type { Histogram } from './prom.js';

/** The latest sample of one collector with its age. */
export interface Sample<T> {
  value: T;
  /** Date.now() when the sample was taken; 0 before the first one. */
  at: number;
  /** Message of the last failure, cleared by the next success. */
  error?: string | undefined;
}

interface Entry {
  collector: Collector<unknown>;
  /** ms; null = disabled (the initial value stays). */
  intervalMs: number | null;
}

/** Samples a fixed set of collectors in the background. */
export class Sampler {
  private readonly entries = new Map<string, Entry>();
  private readonly samples = new Map<string, Sample<unknown>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly timeoutMs: number;
  private readonly log: Logger;

  /**
   * @param defs the collectors to run (agent/collectors/index.ts), created here from `ctx`; each
   *   samples every `ctx.config[def.interval]` ms when `def.enabled` allows it
   * @param ctx what collectors read; `ctx.config.timeout_ms` bounds each run
   * @param duration histogram observing each run's duration in seconds, labelled by collector
   */
  constructor(
    defs: readonly CollectorDef<unknown>[],
    ctx: CollectorContext,
    private readonly duration?: Histogram<'collector'>,
  ) {
    this.timeoutMs = ctx.config.timeout_ms;
    this.log = ctx.log;
    for (const def of defs) {
      if (this.entries.has(def.name)) throw new Error(`collector ${def.name} is registered twice`);
      const collector = def.create(ctx);
      const on = def.enabled ? def.enabled(ctx.config) : true;
      this.entries.set(def.name, { collector, intervalMs: on ? ctx.config[def.interval] : null });
      this.samples.set(def.name, { value: collector.initial, at: 0 });
    }
  }

  /** Takes a first sample of every enabled collector (bounded by timeout_ms), then keeps sampling. */
  async start(): Promise<void> {
    const enabled = [...this.entries].filter(([, e]) => e.intervalMs !== null).map(([name]) => name);
    await Promise.all(enabled.map((name) => this.runOnce(name)));
    for (const name of enabled) this.schedule(name);
  }

  /** Stops sampling; samples stay readable. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * The latest sample of `def` (its initial value before the first run).
   * @throws Error when `def` is not one of this sampler's collectors
   */
  latest<T>(def: CollectorDef<T>): Sample<T> {
    const s = this.samples.get(def.name);
    if (!s) throw new Error(`no collector ${def.name}`);
    return s as Sample<T>;
  }

  /** Runs `name` once now; used at start and by tests. Never throws. */
  async runOnce(name: string): Promise<void> {
    const c = this.entries.get(name)?.collector;
    if (!c) return;
    const started = performance.now();
    // One timer per run: it aborts the collector's I/O and settles the run even if the
    // collector ignores the signal.
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`timed out after ${this.timeoutMs} ms`);
        ac.abort(err);
        reject(err);
      }, this.timeoutMs);
    });
    try {
      const value = await Promise.race([c.collect(ac.signal), deadline]);
      this.samples.set(name, { value, at: Date.now() });
    } catch (err) {
      const prev = this.samples.get(name) as Sample<unknown>;
      const message = (err as Error).message;
      if (prev.error !== message)
        this.log.warn({ collector: name, err: message }, 'collector failed; keeping its last sample');
      this.samples.set(name, { ...prev, error: message });
    } finally {
      clearTimeout(timer);
      this.duration?.observe({ collector: name }, (performance.now() - started) / 1000);
    }
  }

  private schedule(name: string): void {
    const interval = this.entries.get(name)?.intervalMs;
    if (this.stopped || interval === null || interval === undefined) return;
    const t = setTimeout(async () => {
      this.timers.delete(t);
      await this.runOnce(name);
      this.schedule(name);
    }, interval);
    t.unref();
    this.timers.add(t);
  }
}
