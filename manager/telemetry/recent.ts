/**
 * The in-memory recent history of every node (always on, with or without InfluxDB): one sample
 * per resource report, for the last telemetry.recent.window_ms and at most
 * telemetry.recent.max_samples per node (a ring: the oldest is overwritten).
 *
 * Memory: each node has one ArrayBuffer of 32 bytes per sample slot: a Uint32 time (ms after a
 * per-node base) and 7 Float32 figures (NaN = null). It starts at 8 slots and doubles as samples
 * come, up to max_samples (so a fleet that has just started allocates little, and the allocation
 * of 5,000 full buffers at once does not fall on the first reports of a manager start). At the
 * defaults (360 samples) a full one is 11,520 bytes, about 12.0 KB with the objects around it
 * (tests/unit/telemetry-recent.test.ts measures it). Float64 times would make it 12,960 bytes.
 * Figures are kept as float32: 7 significant digits, plenty for %, °C and W.
 */
import { RECENT_FIELDS, type RecentField, type RecentSample, type RecentView } from '../../common/api/telemetry.js';
import type { ResourceData } from '../../common/protocol.js';

export { RECENT_FIELDS, type RecentField, type RecentSample, type RecentView };

/** Figures per sample (RECENT_FIELDS, in this order in memory). */
const NF = RECENT_FIELDS.length;

/** Bytes per sample in a node's buffer: a Uint32 time and NF float32 figures. */
export const BYTES_PER_SAMPLE = 4 + 4 * NF;

/** Offsets are Uint32 ms; the base sits this far before the first time, so a clock step back fits. */
const HALF_RANGE = 2 ** 31;
const MAX_OFFSET = 2 ** 32 - 1;

/** Largest non-null value of field `k` over `items`, null when there is none. */
function maxOf<T, K extends keyof T>(items: readonly T[], k: K): number | null {
  let m: number | null = null;
  for (let i = 0; i < items.length; i++) {
    const v = (items[i] as T)[k] as number | null;
    if (v !== null && Number.isFinite(v) && (m === null || v > m)) m = v;
  }
  return m;
}

/** The figures of a sample from a resource report, in RECENT_FIELDS order (null when not reported). */
export function sampleOf(r: ResourceData): (number | null)[] {
  const { cpu, memory, gpu, disk } = r.resource;
  return [
    cpu.usage_percent,
    cpu.temperature,
    memory.usage_percent,
    cpu.power,
    maxOf(gpu, 'temperature'),
    maxOf(gpu, 'compute_usage'),
    maxOf(disk, 'usage_percent'),
  ];
}

/** A float32 as the number it stands for (51.3, not 51.29999923706055); NaN → null. */
const out32 = (v: number): number | null => (Number.isNaN(v) ? null : Number(v.toPrecision(7)));

/** Slots a ring starts with (then doubled, up to its capacity). */
const FIRST_SLOTS = 8;

/** One node's ring of samples in a single ArrayBuffer, grown as samples come. */
class Ring {
  /** ms since the epoch that offset 0 stands for. */
  private base = 0;
  private times: Uint32Array;
  private values: Float32Array;
  /** Slots allocated now (≤ capacity). */
  private slotsNow: number;
  /** Next slot to write. */
  private next = 0;
  size = 0;

  /** @param capacity most samples kept (max_samples) */
  constructor(readonly capacity: number) {
    this.slotsNow = Math.min(FIRST_SLOTS, capacity);
    [this.times, this.values] = Ring.alloc(this.slotsNow);
  }

  private static alloc(slots: number): [Uint32Array, Float32Array] {
    const buf = new ArrayBuffer(slots * BYTES_PER_SAMPLE);
    return [new Uint32Array(buf, 0, slots), new Float32Array(buf, slots * 4, slots * NF)];
  }

  /** Bytes of the sample buffer. */
  get bytes(): number {
    return this.times.buffer.byteLength;
  }

  /** Doubles the slots (up to capacity), the samples copied oldest first. */
  private grow(): void {
    const slots = Math.min(this.capacity, this.slotsNow * 2);
    const [times, values] = Ring.alloc(slots);
    let k = 0;
    for (const i of this.slots()) {
      times[k] = this.times[i] as number;
      values.set(this.values.subarray(i * NF, i * NF + NF), k * NF);
      k++;
    }
    this.times = times;
    this.values = values;
    this.slotsNow = slots;
    this.next = k % slots;
  }

  add(at: number, figures: readonly (number | null)[]): void {
    if (this.size === 0) this.base = at - HALF_RANGE;
    else if (at - this.base < 0 || at - this.base > MAX_OFFSET) this.rebase(at);
    if (this.size === this.slotsNow && this.slotsNow < this.capacity) this.grow();
    const i = this.next;
    this.times[i] = Math.round(at - this.base);
    for (let f = 0; f < NF; f++) {
      const v = figures[f];
      this.values[i * NF + f] = v === null || v === undefined || !Number.isFinite(v) ? Number.NaN : v;
    }
    this.next = (i + 1) % this.slotsNow;
    if (this.size < this.slotsNow) this.size++;
  }

  /** Slot indexes oldest first. */
  private *slots(): Generator<number> {
    const n = this.slotsNow;
    const start = (this.next - this.size + n) % n;
    for (let k = 0; k < this.size; k++) yield (start + k) % n;
  }

  /** Time of slot `i`, ms since the epoch. */
  private timeOf(i: number): number {
    return this.base + (this.times[i] as number);
  }

  /**
   * Moves the base so that `at` fits (once every ~24 days, or after a clock step of more than
   * ~24 days back): samples that no longer fit (that far from `at`) are dropped.
   */
  private rebase(at: number): void {
    const kept: { t: number; v: number[] }[] = [];
    for (const i of this.slots()) {
      const t = this.timeOf(i);
      if (Math.abs(t - at) < HALF_RANGE) kept.push({ t, v: Array.from(this.values.subarray(i * NF, i * NF + NF)) });
    }
    this.base = at - HALF_RANGE;
    this.size = 0;
    this.next = 0;
    for (const k of kept)
      this.add(
        k.t,
        k.v.map((v) => (Number.isNaN(v) ? null : v)),
      );
  }

  /** Samples with time ≥ `from`, oldest first. */
  read(from: number): RecentSample[] {
    const out: RecentSample[] = [];
    for (const i of this.slots()) {
      const t = this.timeOf(i);
      if (t < from) continue;
      const s = { at: new Date(t).toISOString() } as RecentSample;
      for (let f = 0; f < NF; f++) s[RECENT_FIELDS[f] as RecentField] = out32(this.values[i * NF + f] as number);
      out.push(s);
    }
    return out;
  }
}

/** The recent history of all nodes. */
export class RecentHistory {
  private readonly rings = new Map<string, Ring>();

  /**
   * @param windowMs how far back a view reaches, ms
   * @param maxSamples most samples kept per node (≥ 2)
   * @param now the clock, ms since the epoch
   */
  constructor(
    readonly windowMs: number,
    readonly maxSamples: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records the sample of a resource report of `node` that arrived at `at` (ms since the epoch). */
  add(node: string, r: ResourceData, at: number): void {
    this.addFigures(node, at, sampleOf(r));
  }

  /** Records a sample given as figures in RECENT_FIELDS order. */
  addFigures(node: string, at: number, figures: readonly (number | null)[]): void {
    let ring = this.rings.get(node);
    if (!ring) {
      ring = new Ring(this.maxSamples);
      this.rings.set(node, ring);
    }
    ring.add(at, figures);
  }

  /**
   * The samples of `node` within the window (and at or after `sinceMs` when given), oldest first;
   * null when the node has none.
   */
  view(node: string, sinceMs?: number): RecentView | null {
    const ring = this.rings.get(node);
    if (!ring) return null;
    const from = Math.max(this.now() - this.windowMs, sinceMs ?? Number.NEGATIVE_INFINITY);
    return { node, window_ms: this.windowMs, samples: ring.read(from) };
  }

  /** Nodes with a history, and samples held in all (including those older than the window). */
  size(): { nodes: number; samples: number } {
    let samples = 0;
    for (const r of this.rings.values()) samples += r.size;
    return { nodes: this.rings.size, samples };
  }

  /** Bytes of sample buffers in all (the typed arrays; objects around them not counted). */
  bytes(): number {
    let b = 0;
    for (const r of this.rings.values()) b += r.bytes;
    return b;
  }
}
