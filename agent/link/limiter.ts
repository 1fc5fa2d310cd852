/**
 * The agent's reply rate limit per destination (docs/protocol.md "7. Timing", docs/configuration.md
 * `report.rate_per_destination`): a token bucket per `manager_ip:manager_port`, so that a flood of
 * queries naming a third party cannot make the agent a reflector or an amplifier towards it.
 *
 * - Each destination has a bucket of `burst` tokens that refills at `ratePerSec`; a report takes
 *   one token, and a query that finds the bucket empty is dropped (`rate`).
 * - At most `maxDestinations` buckets are kept. A bucket is forgotten only when it is full again
 *   (it then says nothing a new bucket would not), least recently used first. When every bucket is
 *   still refilling, a query naming a new destination is dropped (`destinations`): naming ever new
 *   addresses can neither grow the memory nor reset a bucket.
 * - The known manager (set with {@link DestinationLimiter.setKnown}) has its own bucket outside
 *   the table, so floods naming other destinations never take its place.
 */

/** Why a report was not allowed. */
export type LimitReason = 'rate' | 'destinations';

/** Options of a {@link DestinationLimiter}. */
export interface LimiterOptions {
  /** Tokens added per second to each bucket (reports per second, sustained). */
  ratePerSec: number;
  /** Bucket size: reports allowed at once after a quiet period. */
  burst: number;
  /** Most destinations tracked besides the known manager. */
  maxDestinations: number;
  /** Clock in ms (monotonic); performance.now by default (tests pass a fake one). */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets per destination with a bounded, LRU-ordered table. */
export class DestinationLimiter {
  private readonly table = new Map<string, Bucket>(); // in least-recently-used-first order
  private knownKey: string | null = null;
  private known: Bucket | null = null;
  private readonly now: () => number;

  constructor(private readonly o: LimiterOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  /** Destinations tracked in the table (the known manager not included). */
  get size(): number {
    return this.table.size;
  }

  /** The known manager's destination key (`ip:port`), or null. */
  get knownDestination(): string | null {
    return this.knownKey;
  }

  /**
   * Marks `dest` (`ip:port`) as the known manager: its bucket leaves the LRU table. A previous
   * known manager goes back to being an ordinary destination, with its bucket as it is (so that
   * switching back and forth never hands out a fresh burst).
   */
  setKnown(dest: string): void {
    if (this.knownKey === dest) return;
    const fromTable = this.table.get(dest);
    this.table.delete(dest);
    if (this.knownKey !== null && this.known) {
      this.table.set(this.knownKey, this.known);
      const now = this.now();
      // The table bound is hard: a full bucket goes first, else the least recently used one.
      while (this.table.size > this.o.maxDestinations)
        if (!this.evictOne(now)) this.table.delete(this.table.keys().next().value as string);
    }
    this.knownKey = dest;
    this.known = fromTable ?? { tokens: this.o.burst, at: this.now() };
  }

  /**
   * Takes one token for a report to `dest` (`ip:port`).
   * @returns null when the report may go, else why not
   */
  take(dest: string): LimitReason | null {
    const now = this.now();
    if (dest === this.knownKey && this.known) return this.spend(this.known, now) ? null : 'rate';
    let b = this.table.get(dest);
    if (b) {
      this.table.delete(dest); // re-inserted below: most recently used
    } else {
      if (this.table.size >= this.o.maxDestinations && !this.evictOne(now)) return 'destinations';
      b = { tokens: this.o.burst, at: now };
    }
    this.table.set(dest, b);
    return this.spend(b, now) ? null : 'rate';
  }

  private refill(b: Bucket, now: number): void {
    b.tokens = Math.min(this.o.burst, b.tokens + ((now - b.at) / 1000) * this.o.ratePerSec);
    b.at = now;
  }

  private spend(b: Bucket, now: number): boolean {
    this.refill(b, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets the least recently used bucket that is full again; false when there is none. */
  private evictOne(now: number): boolean {
    for (const [k, b] of this.table) {
      this.refill(b, now);
      if (b.tokens >= this.o.burst) {
        this.table.delete(k);
        return true;
      }
    }
    return false;
  }
}
