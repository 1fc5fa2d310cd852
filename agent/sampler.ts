/**
 * Runs each collector on its own cadence and keeps its latest good sample, so that building a
 * report only reads memory (issue "Core": "a report is assembled from recent samples").
 */
import type { Histogram } from 'prom-client';
import type { Logger } from '../common/log.js';
import type { Collector } from './collectors/collector.js';
import type { AgentConfig } from './config.js';

/** The latest sample of one collector with its age. */
export interface Sample<T> {
  value: T;
  /** Date.now() when the sample was taken; 0 before the first one. */
  at: number;
  /** Message of the last failure, cleared by the next success. */
  error?: string | undefined;
}

/** Samples a fixed set of collectors in the background. */
export class Sampler<C extends Record<string, Collector<unknown>>> {
  private readonly samples = new Map<string, Sample<unknown>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  /**
   * @param collectors the collectors by name
   * @param cfg the `collect` config (intervals in ms, timeout_ms)
   * @param duration histogram observing each run's duration in seconds, labelled by collector
   */
  constructor(
    private readonly collectors: C,
    private readonly cfg: AgentConfig['collect'],
    private readonly log: Logger,
    private readonly duration?: Histogram<'collector'>,
  ) {
    for (const [name, c] of Object.entries(collectors)) this.samples.set(name, { value: c.initial, at: 0 });
  }

  /** Takes a first sample of everything (bounded by timeout_ms) and then keeps sampling. */
  async start(): Promise<void> {
    await Promise.all(Object.keys(this.collectors).map((name) => this.runOnce(name)));
    for (const name of Object.keys(this.collectors)) this.schedule(name);
  }

  /** Stops sampling; samples stay readable. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** The latest sample of `name` (its initial value before the first run). */
  latest<K extends keyof C & string>(name: K): Sample<C[K] extends Collector<infer T> ? T : never> {
    return this.samples.get(name) as Sample<C[K] extends Collector<infer T> ? T : never>;
  }

  /** Runs `name` once now; used at start and by tests. Never throws. */
  async runOnce(name: string): Promise<void> {
    const c = this.collectors[name];
    if (!c) return;
    const started = performance.now();
    // One timer per run: it aborts the collector's I/O and settles the run even if the
    // collector ignores the signal.
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`timed out after ${this.cfg.timeout_ms} ms`);
        ac.abort(err);
        reject(err);
      }, this.cfg.timeout_ms);
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

  private intervalOf(c: Collector<unknown>): number {
    if (c.cadence === 'disk') return this.cfg.disk_interval_ms;
    if (c.cadence === 'gpu') return this.cfg.gpu_interval_ms;
    return this.cfg.interval_ms;
  }

  private schedule(name: string): void {
    if (this.stopped) return;
    const c = this.collectors[name] as Collector<unknown>;
    const t = setTimeout(async () => {
      this.timers.delete(t);
      await this.runOnce(name);
      this.schedule(name);
    }, this.intervalOf(c));
    t.unref();
    this.timers.add(t);
  }
}
