/**
 * The `api_tokens` table (docs/operations.md "Users and access"): named API tokens for the CLI and
 * scripts, found by prefix and checked against the sha256 of the whole token (never stored). A
 * token belongs to the user who created it and never has more than their role. Failed writes are
 * counted as `token`.
 */
import type { StatementSync } from 'node:sqlite';
import type { Role } from '../../common/api/auth.js';
import { rowsChanged, type StoreCore, type TableModule } from './core.js';

/** A stored API token; times in ms since the epoch, `expires_at` null = never. */
export interface TokenRow {
  prefix: string;
  /** sha256 of the token, hex. */
  hash: string;
  name: string;
  role: Role;
  /** The user who created it. */
  user: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
}

const COLUMNS = 'prefix, hash, name, role, user, created_at, expires_at, last_used_at';

/** The api_tokens table. */
export class TokensTable implements TableModule {
  readonly tables = ['api_tokens'];
  private readonly getStmt: StatementSync;
  private readonly byNameStmt: StatementSync;
  private readonly listStmt: StatementSync;
  private readonly insertStmt: StatementSync;
  private readonly deleteStmt: StatementSync;
  private readonly deleteUserStmt: StatementSync;
  private readonly usedStmt: StatementSync;

  constructor(private readonly core: StoreCore) {
    const db = core.db;
    this.getStmt = db.prepare(`SELECT ${COLUMNS} FROM api_tokens WHERE prefix = ?`);
    this.byNameStmt = db.prepare(`SELECT ${COLUMNS} FROM api_tokens WHERE name = ?`);
    this.listStmt = db.prepare(`SELECT ${COLUMNS} FROM api_tokens ORDER BY created_at, name`);
    this.insertStmt = db.prepare(
      `INSERT INTO api_tokens (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.deleteStmt = db.prepare('DELETE FROM api_tokens WHERE name = ?');
    this.deleteUserStmt = db.prepare('DELETE FROM api_tokens WHERE user = ?');
    this.usedStmt = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE prefix = ?');
  }

  /** The token whose secret starts with `prefix`, or undefined. */
  get(prefix: string): TokenRow | undefined {
    return this.getStmt.get(prefix) as TokenRow | undefined;
  }

  /** The token named `name`, or undefined. */
  byName(name: string): TokenRow | undefined {
    return this.byNameStmt.get(name) as TokenRow | undefined;
  }

  /** Every token, oldest first. */
  list(): TokenRow[] {
    return this.listStmt.all() as unknown as TokenRow[];
  }

  /** Adds a token; false when the name is taken (or the write failed). */
  add(r: TokenRow): boolean {
    return this.core.guard(
      'token',
      false,
      () =>
        rowsChanged(
          this.insertStmt.run(r.prefix, r.hash, r.name, r.role, r.user, r.created_at, r.expires_at, r.last_used_at),
        ) === 1,
    );
  }

  /** Revokes the token named `name`; false when there is none. */
  remove(name: string): boolean {
    return this.core.guard('token', false, () => rowsChanged(this.deleteStmt.run(name)) === 1);
  }

  /** Revokes every token of `user`; returns how many. */
  removeUser(user: string): number {
    return this.core.guard('token', 0, () => rowsChanged(this.deleteUserStmt.run(user)));
  }

  /** Records that a token was used at `at` (ms). */
  touch(prefix: string, at: number): void {
    this.core.guard('token', undefined, () => this.usedStmt.run(at, prefix));
  }
}
