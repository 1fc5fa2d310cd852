/**
 * Failed-login limits (docs/operations.md "Users and access", "Lockout"): a state machine per
 * address and per user name, on an injectable clock.
 *
 * - **Per address**: after `address_failures` failed logins from one address, every login from it
 *   is refused for `base_ms`, doubling with each further failure up to `max_ms`.
 * - **Per user**: after `user_failures` failed logins for one user name, logins for that user are
 *   refused — but only from the addresses that failed for it during the lock. An address that
 *   has not failed for that user still gets through, so a flood from one address (or a few)
 *   never locks the admin out from another; a guesser spread over many addresses gets one try per
 *   fresh address per lock, and each address meets its own limit.
 * - **Everything expires**: a lock ends after its backoff; an entry without a failure for
 *   `window_ms` is forgotten (the backoff starts again from `base_ms`); a correct login clears its
 *   user's entry and its address's entry. A refused attempt checks no password and counts no
 *   failure, so hammering a lock does not lengthen it.
 * - Memory is bounded: at most `max_entries` of each kind, the least recently failed dropped.
 */

/** The `auth.lockout` config section. */
export interface LockoutConfig {
  /** Failures from one address before it is locked. */
  address_failures: number;
  /** Failures for one user name before it is locked (for the addresses that failed). */
  user_failures: number;
  /** First lock, ms; doubles with each further failure. */
  base_ms: number;
  /** Longest lock, ms. */
  max_ms: number;
  /** An entry with no failure for this long is forgotten, ms. */
  window_ms: number;
}

interface Entry {
  failures: number;
  last: number;
  lockedUntil: number;
  /** For a user entry: the addresses that failed for it. */
  addresses?: Set<string>;
}

/** Why a login is refused without checking the password: the address or the user is locked. */
export interface Locked {
  scope: 'address' | 'user';
  /** ms until the lock ends. */
  retryAfterMs: number;
}

/** The login limiter. */
export class Lockout {
  private readonly byAddress = new Map<string, Entry>();
  private readonly byUser = new Map<string, Entry>();

  constructor(
    private cfg: LockoutConfig,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 10_000,
  ) {}

  /** Applies new limits (existing locks keep their end). */
  reconfigure(cfg: LockoutConfig): void {
    this.cfg = cfg;
  }

  /** Whether a login from `address` for `user` must be refused now; null when it may go on. */
  check(address: string, user: string): Locked | null {
    const t = this.now();
    const a = this.live(this.byAddress, address, t);
    if (a && a.lockedUntil > t) return { scope: 'address', retryAfterMs: a.lockedUntil - t };
    const u = this.live(this.byUser, user, t);
    if (u && u.lockedUntil > t && u.addresses?.has(address)) return { scope: 'user', retryAfterMs: u.lockedUntil - t };
    return null;
  }

  /** Records a failed login (wrong password or unknown user). */
  fail(address: string, user: string): void {
    const t = this.now();
    this.bump(this.byAddress, address, t, this.cfg.address_failures);
    const u = this.bump(this.byUser, user, t, this.cfg.user_failures);
    u.addresses ??= new Set();
    if (u.addresses.size < 1000) u.addresses.add(address);
  }

  /** Records a correct login: the user's and the address's failures are forgotten. */
  succeed(address: string, user: string): void {
    this.byAddress.delete(address);
    this.byUser.delete(user);
  }

  /** How many addresses and users have an entry (for tests and metrics). */
  get size(): { addresses: number; users: number } {
    return { addresses: this.byAddress.size, users: this.byUser.size };
  }

  private live(map: Map<string, Entry>, key: string, t: number): Entry | undefined {
    const e = map.get(key);
    if (e && e.lockedUntil <= t && t - e.last > this.cfg.window_ms) {
      map.delete(key);
      return undefined;
    }
    return e;
  }

  private bump(map: Map<string, Entry>, key: string, t: number, threshold: number): Entry {
    const e = this.live(map, key, t) ?? { failures: 0, last: t, lockedUntil: 0 };
    map.delete(key); // re-inserted last: the map's order is the least recently failed first
    e.failures++;
    e.last = t;
    if (e.failures >= threshold) {
      const exp = Math.min(e.failures - threshold, 30);
      e.lockedUntil = t + Math.min(this.cfg.max_ms, this.cfg.base_ms * 2 ** exp);
    }
    map.set(key, e);
    // The map's order is the least recently failed first: forget the stale ones at its front.
    for (const [k, old] of map) {
      if (old.lockedUntil > t || t - old.last <= this.cfg.window_ms) break;
      map.delete(k);
    }
    while (map.size > this.maxEntries) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) break;
      map.delete(oldest);
    }
    return e;
  }
}
