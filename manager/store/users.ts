/**
 * The `users` table (docs/operations.md "Users and access"): a name, a role and the password as a
 * PHC string (argon2id, manager/auth/passwords.ts); the password is never stored in clear. Writes
 * are rare and committed at once; failed ones are counted as `user`.
 */
import type { StatementSync } from 'node:sqlite';
import type { Role } from '../../common/api/auth.js';
import { rowsChanged, type StoreCore, type TableModule } from './core.js';

/** A stored user; times in ms since the epoch. */
export interface UserRow {
  name: string;
  role: Role;
  /** PHC string of the password hash. */
  password: string;
  created_at: number;
  updated_at: number;
}

/** The users table. */
export class UsersTable implements TableModule {
  readonly tables = ['users'];
  private readonly getStmt: StatementSync;
  private readonly listStmt: StatementSync;
  private readonly countStmt: StatementSync;
  private readonly insertStmt: StatementSync;
  private readonly passwordStmt: StatementSync;
  private readonly roleStmt: StatementSync;
  private readonly deleteStmt: StatementSync;

  constructor(private readonly core: StoreCore) {
    const db = core.db;
    this.getStmt = db.prepare('SELECT name, role, password, created_at, updated_at FROM users WHERE name = ?');
    this.listStmt = db.prepare('SELECT name, role, password, created_at, updated_at FROM users ORDER BY name');
    this.countStmt = db.prepare('SELECT count(*) AS n FROM users');
    this.insertStmt = db.prepare(
      'INSERT INTO users (name, role, password, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.passwordStmt = db.prepare('UPDATE users SET password = ?, updated_at = ? WHERE name = ?');
    this.roleStmt = db.prepare('UPDATE users SET role = ?, updated_at = ? WHERE name = ?');
    this.deleteStmt = db.prepare('DELETE FROM users WHERE name = ?');
  }

  /** The user named `name`, or undefined. */
  get(name: string): UserRow | undefined {
    return this.getStmt.get(name) as UserRow | undefined;
  }

  /** Every user, by name. */
  list(): UserRow[] {
    return this.listStmt.all() as unknown as UserRow[];
  }

  /** How many users there are. */
  count(): number {
    return Number((this.countStmt.get() as { n: number }).n);
  }

  /** Adds a user; false when the name is taken (or the write failed). */
  add(row: UserRow): boolean {
    return this.core.guard(
      'user',
      false,
      () => rowsChanged(this.insertStmt.run(row.name, row.role, row.password, row.created_at, row.updated_at)) === 1,
    );
  }

  /** Sets a user's password hash; false when there is no such user. */
  setPassword(name: string, phc: string, at: number): boolean {
    return this.core.guard('user', false, () => rowsChanged(this.passwordStmt.run(phc, at, name)) === 1);
  }

  /** Sets a user's role; false when there is no such user. */
  setRole(name: string, role: Role, at: number): boolean {
    return this.core.guard('user', false, () => rowsChanged(this.roleStmt.run(role, at, name)) === 1);
  }

  /** Removes a user; false when there is no such user. Their sessions and tokens go with them (the caller removes them). */
  remove(name: string): boolean {
    return this.core.guard('user', false, () => rowsChanged(this.deleteStmt.run(name)) === 1);
  }
}
