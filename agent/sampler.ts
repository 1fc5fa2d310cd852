/**
 * Runs each collector on its own interval and keeps its latest good sample, so that building a
 * report only reads memory (docs/protocol.md "7. Timing": a report is assembled from recent
 * samples, never waits on a collector).
 *
 * Collectors that share an interval share one timer (docs/operations.md "Agent footprint"): every
 * `interval` ms one tick runs them together under one deadline (`collect.timeout_ms`), so an idle
 * agent wakes once per interval, not once per collector. The timer runs at a fixed rate; a
 * collector whose previous run has not settled yet (it is bounded by the deadline) is left out
 * of that tick, and a slow collector never delays the others of its interval.
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
  /** A run is in flight. */
  running: boolean;
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
      this.entries.set(def.name, { collector, intervalMs: on ? ctx.config[def.interval] : null, running: false });
      this.samples.set(def.name, { value: collector.initial, at: 0 });
    }
  }

  /** Takes a first sample of every enabled collector (bounded by timeout_ms), then keeps sampling. */
  async start(): Promise<void> {
    const enabled = [...this.entries].filter(([, e]) => e.intervalMs !== null).map(([name]) => name);
    await Promise.all(enabled.map((name) => this.runOnce(name)));
    if (this.stopped) return;
    const byInterval = new Map<number, string[]>();
    for (const name of enabled) {
      const ms = this.entries.get(name)?.intervalMs as number;
      byInterval.set(ms, [...(byInterval.get(ms) ?? []), name]);
    }
    for (const [ms, names] of byInterval) {
      const t = setInterval(() => void this.runTogether(names), ms);
      t.unref();
      this.timers.add(t);
    }
  }

  /** Stops sampling; samples stay readable. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
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
  runOnce(name: string): Promise<void> {
    return this.runTogether([name]);
  }

  /**
   * Runs the collectors `names` (those not already running) at once, under one deadline of
   * `timeout_ms`: it aborts their I/O and settles each run even if a collector ignores the
   * signal. Never throws.
   */
  private async runTogether(names: readonly string[]): Promise<void> {
    const due = names.filter((n) => {
      const e = this.entries.get(n);
      return e !== undefined && !e.running;
    });
    if (due.length === 0) return;
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`timed out after ${this.timeoutMs} ms`);
        ac.abort(err);
        reject(err);
      }, this.timeoutMs);
    });
    deadline.catch(() => {}); // each run races it; none may be left to hear it
    try {
      await Promise.all(due.map((n) => this.run(n, ac.signal, deadline)));
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(name: string, signal: AbortSignal, deadline: Promise<never>): Promise<void> {
    const e = this.entries.get(name) as Entry;
    e.running = true;
    const started = performance.now();
    try {
      const value = await Promise.race([e.collector.collect(signal), deadline]);
      this.samples.set(name, { value, at: Date.now() });
    } catch (err) {
      const prev = this.samples.get(name) as Sample<unknown>;
      const message = (err as Error).message;
      if (prev.error !== message)
        this.log.warn({ collector: name, err: message }, 'collector failed; keeping its last sample');
      this.samples.set(name, { ...prev, error: message });
    } finally {
      e.running = false;
      this.duration?.observe({ collector: name }, (performance.now() - started) / 1000);
    }
  }
}
