/**
 * The `link_tokens` table (docs/links.md "Link tokens"): the tokens nodes present on the
 * WebSocket node link, kept as the sha256 of the whole token (never the token), each optionally
 * bound to one node id. Failed writes are counted as `link_token`.
 */
import type { StatementSync } from 'node:sqlite';
import { rowsChanged, type StoreCore, type TableModule } from './core.js';

/** A token's last use is written at most this often, ms. */
const TOUCH_EVERY_MS = 60_000;

/** A stored link token; times in ms since the epoch. */
export interface LinkTokenRow {
  /** Public id (`lt_` + 8 hex), shown by `muster links tokens list`. */
  id: string;
  /** sha256 of the token, hex. */
  hash: string;
  /** The only node id it may link; null = any. */
  node: string | null;
  created_by: string;
  created_at: number;
  last_used_at: number | null;
}

/** The link_tokens table. */
export class LinkTokensTable implements TableModule {
  readonly tables = ['link_tokens'];
  private readonly byHashStmt: StatementSync;
  private readonly listStmt: StatementSync;
  private readonly insertStmt: StatementSync;
  private readonly deleteStmt: StatementSync;
  private readonly usedStmt: StatementSync;
  /** When each token's last use was last written, ms. */
  private readonly touched = new Map<string, number>();

  constructor(private readonly core: StoreCore) {
    const db = core.db;
    this.byHashStmt = db.prepare('SELECT * FROM link_tokens WHERE hash = ?');
    this.listStmt = db.prepare('SELECT * FROM link_tokens ORDER BY created_at, id');
    this.insertStmt = db.prepare(
      'INSERT INTO link_tokens (id, hash, node, created_by, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.deleteStmt = db.prepare('DELETE FROM link_tokens WHERE id = ?');
    this.usedStmt = db.prepare('UPDATE link_tokens SET last_used_at = ? WHERE id = ?');
  }

  /** The token whose sha256 is `hash`, or undefined. */
  byHash(hash: string): LinkTokenRow | undefined {
    return this.byHashStmt.get(hash) as LinkTokenRow | undefined;
  }

  /** Every token, oldest first. */
  list(): LinkTokenRow[] {
    return this.listStmt.all() as unknown as LinkTokenRow[];
  }

  /** Adds a token; false when its id or hash exists already (or the write failed). */
  add(r: LinkTokenRow): boolean {
    return this.core.guard(
      'link_token',
      false,
      () => rowsChanged(this.insertStmt.run(r.id, r.hash, r.node, r.created_by, r.created_at, r.last_used_at)) === 1,
    );
  }

  /** Revokes token `id`; false when there is none. */
  remove(id: string): boolean {
    return this.core.guard('link_token', false, () => rowsChanged(this.deleteStmt.run(id)) === 1);
  }

  /**
   * Records that token `id` was used at `at` (ms), through the store's write queue (a reconnecting
   * fleet does not wait on SQLite); the same token is written at most once a minute.
   */
  touch(id: string, at: number): void {
    const prev = this.touched.get(id);
    if (prev !== undefined && at - prev < TOUCH_EVERY_MS) return;
    this.touched.set(id, at);
    if (this.touched.size > 100_000) this.touched.clear();
    this.core.enqueue('link_token', () => {
      this.usedStmt.run(at, id);
    });
  }
}
