/**
 * The `sessions` table (docs/operations.md "Users and access"): one row per login, found by the
 * token's prefix (not secret) and checked against the sha256 of the whole token; the token itself
 * is never stored. Expired sessions are removed by retention (`expires_at`). Failed writes are
 * counted as `session`.
 */
import type { StatementSync } from 'node:sqlite';
import { rowsChanged, type StoreCore, type TableModule } from './core.js';

/** A stored session; times in ms since the epoch. */
export interface SessionRow {
  prefix: string;
  /** sha256 of the token, hex. */
  hash: string;
  user: string;
  address: string | null;
  created_at: number;
  expires_at: number;
}

/** The sessions table. */
export class SessionsTable implements TableModule {
  readonly tables = ['sessions'];
  private readonly getStmt: StatementSync;
  private readonly insertStmt: StatementSync;
  private readonly deleteStmt: StatementSync;
  private readonly deleteUserStmt: StatementSync;
  private readonly expireStmt: StatementSync;

  constructor(private readonly core: StoreCore) {
    const db = core.db;
    this.getStmt = db.prepare(
      'SELECT prefix, hash, user, address, created_at, expires_at FROM sessions WHERE prefix = ?',
    );
    this.insertStmt = db.prepare(
      'INSERT INTO sessions (prefix, hash, user, address, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.deleteStmt = db.prepare('DELETE FROM sessions WHERE prefix = ?');
    this.deleteUserStmt = db.prepare('DELETE FROM sessions WHERE user = ?');
    this.expireStmt = db.prepare('DELETE FROM sessions WHERE expires_at <= ?');
  }

  /** The session whose token starts with `prefix`, or undefined. */
  get(prefix: string): SessionRow | undefined {
    return this.getStmt.get(prefix) as SessionRow | undefined;
  }

  /** Writes a new session now; false when the write failed. */
  add(r: SessionRow): boolean {
    return this.core.guard('session', false, () => {
      this.insertStmt.run(r.prefix, r.hash, r.user, r.address, r.created_at, r.expires_at);
      return true;
    });
  }

  /** Ends one session; false when there was none. */
  remove(prefix: string): boolean {
    return this.core.guard('session', false, () => rowsChanged(this.deleteStmt.run(prefix)) === 1);
  }

  /** Ends every session of `user` (password changed, user removed); returns how many. */
  removeUser(user: string): number {
    return this.core.guard('session', 0, () => rowsChanged(this.deleteUserStmt.run(user)));
  }

  /** Removes sessions expired at `now` (ms); returns how many. */
  expire(now: number): number {
    return this.core.guard('session', 0, () => rowsChanged(this.expireStmt.run(now)));
  }
}
