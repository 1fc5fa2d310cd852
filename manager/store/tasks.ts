/**
 * The remote-execution tables (docs/exec.md "History and retention"): `tasks` (one row per task,
 * the record without its results, written when it is created and when it ends), `task_nodes` (one
 * row per node's part, written when that part ends), `task_files` (the generate_files fetched back)
 * and `commands` (the command-set catalog). Failed writes are counted as `task`, `task_node`,
 * `task_file` and `command`.
 *
 * Retention (store.retention.days / max_rows): a finished task goes by age or count; the node rows
 * and files of a task under way never go.
 */
import type { StatementSync } from 'node:sqlite';
import type { NodeResult, TaskRecord } from '../../common/api/tasks.js';
import type { Page } from '../alerts/types.js';
import { type RetentionRule, rowsChanged, type StoreCore, type TableModule } from './core.js';

/** A command-set entry as stored; `updated_at` in ms since the epoch. */
export interface CommandRow {
  name: string;
  argument_count: number;
  generate_file: string | null;
  sha256: string;
  size: number;
  content: Uint8Array;
  who: string;
  updated_at: number;
}

/** A generate_file as stored. */
export interface TaskFileRow {
  task_id: string;
  node: string;
  step: number;
  path: string;
  size: number;
  sha256: string;
  content: Uint8Array;
}

const UNDER_WAY = 'task_id IN (SELECT id FROM tasks WHERE finished_at IS NULL)';

/** The tasks, task_nodes and task_files tables. */
export class TasksTable implements TableModule {
  readonly tables = ['tasks', 'task_nodes', 'task_files'];
  readonly retained: readonly RetentionRule[] = [
    { table: 'tasks', key: 'rowid', date: 'at', keep: 'finished_at IS NULL' },
    { table: 'task_nodes', key: 'rowid', date: 'at', keep: UNDER_WAY },
    { table: 'task_files', key: 'rowid', date: 'at', keep: UNDER_WAY },
  ];
  private readonly saveStmt: StatementSync;
  private readonly nodeStmt: StatementSync;
  private readonly fileStmt: StatementSync;
  private readonly getStmt: StatementSync;
  private readonly nodesOf: StatementSync;
  private readonly fileGet: StatementSync;
  private readonly unfinished: StatementSync;

  constructor(private readonly core: StoreCore) {
    const db = core.db;
    this.saveStmt = db.prepare(
      `INSERT INTO tasks (id, at, finished_at, who, state, record) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, state = excluded.state, record = excluded.record`,
    );
    this.nodeStmt = db.prepare(
      `INSERT INTO task_nodes (task_id, node, at, state, exit_code, result) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (task_id, node) DO UPDATE SET state = excluded.state, exit_code = excluded.exit_code, result = excluded.result`,
    );
    this.fileStmt = db.prepare(
      `INSERT OR REPLACE INTO task_files (task_id, node, step, at, path, size, sha256, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.getStmt = db.prepare('SELECT record FROM tasks WHERE id = ?');
    this.nodesOf = db.prepare('SELECT result FROM task_nodes WHERE task_id = ?');
    this.fileGet = db.prepare('SELECT * FROM task_files WHERE task_id = ? AND node = ? AND step = ?');
    this.unfinished = db.prepare('SELECT record FROM tasks WHERE finished_at IS NULL ORDER BY rowid');
  }

  /** Writes a task's record (without its results) now: created, or ended. */
  save(t: TaskRecord): void {
    const { results: _omit, ...head } = t;
    this.core.guard('task', undefined, () =>
      this.saveStmt.run(
        t.id,
        Date.parse(t.at),
        t.finished_at ? Date.parse(t.finished_at) : null,
        t.who,
        t.state,
        JSON.stringify(head),
      ),
    );
  }

  /** Writes one node's result of task `t` now. */
  saveNode(t: Pick<TaskRecord, 'id' | 'at'>, r: NodeResult): void {
    this.core.guard('task_node', undefined, () =>
      this.nodeStmt.run(t.id, r.node, Date.parse(t.at), r.state, r.exit_code, JSON.stringify(r)),
    );
  }

  /** Writes node results of task `t` in one transaction (a task ended with many nodes skipped). */
  saveNodes(t: Pick<TaskRecord, 'id' | 'at'>, rs: readonly NodeResult[]): void {
    if (rs.length === 0) return;
    this.core.guard('task_node', undefined, () =>
      this.core.transaction(() => {
        for (const r of rs) this.nodeStmt.run(t.id, r.node, Date.parse(t.at), r.state, r.exit_code, JSON.stringify(r));
      }),
    );
  }

  /** Keeps a fetched generate_file. */
  saveFile(t: Pick<TaskRecord, 'id' | 'at'>, f: Omit<TaskFileRow, 'task_id'>): void {
    this.core.guard('task_file', undefined, () =>
      this.fileStmt.run(t.id, f.node, f.step, Date.parse(t.at), f.path, f.size, f.sha256, f.content),
    );
  }

  /** A task with the node results stored so far, or undefined. A record this muster cannot read is undefined. */
  get(id: string): TaskRecord | undefined {
    const row = this.getStmt.get(id) as { record: string } | undefined;
    if (!row) return undefined;
    try {
      const t = JSON.parse(row.record) as TaskRecord;
      const byNode = new Map<string, NodeResult>();
      for (const r of this.nodesOf.all(id) as { result: string }[]) {
        const n = JSON.parse(r.result) as NodeResult;
        byNode.set(n.node, n);
      }
      t.results = t.nodes.map((node) => byNode.get(node) ?? missing(node));
      return t;
    } catch {
      return undefined;
    }
  }

  /** A page of tasks (records without results), newest first; `next` is the `before` of the next page. */
  list(limit: number, before?: number): Page<TaskRecord> {
    const rows = this.core.db
      .prepare(
        `SELECT rowid AS id, record FROM tasks ${before !== undefined ? 'WHERE rowid < ?' : ''} ORDER BY rowid DESC LIMIT ?`,
      )
      .all(...(before !== undefined ? [before] : []), limit + 1) as { id: number; record: string }[];
    const items: TaskRecord[] = [];
    for (const r of rows.slice(0, limit)) {
      try {
        items.push(JSON.parse(r.record) as TaskRecord);
      } catch {
        // a row this muster cannot read is left out
      }
    }
    return { items, next: rows.length > limit ? (rows[limit - 1]?.id ?? null) : null };
  }

  /** Tasks the previous run left under way, oldest first. */
  loadUnfinished(): TaskRecord[] {
    const out: TaskRecord[] = [];
    for (const r of this.unfinished.all() as { record: string }[]) {
      try {
        out.push(JSON.parse(r.record) as TaskRecord);
      } catch {
        // unreadable: left as it is
      }
    }
    return out;
  }

  /** A fetched generate_file, or undefined. */
  file(taskId: string, node: string, step: number): TaskFileRow | undefined {
    return this.fileGet.get(taskId, node, step) as TaskFileRow | undefined;
  }
}

/** The result of a node no row was written for (the manager stopped first). */
function missing(node: string): NodeResult {
  return {
    node,
    host_ip: '',
    state: 'interrupted',
    exit_code: null,
    begin: null,
    end: null,
    duration_ms: null,
    message: 'no result was recorded (the manager stopped while the task ran)',
    steps: [],
    files: [],
    lines_dropped: 0,
  };
}

/** The command-set catalog. */
export class CommandsTable implements TableModule {
  readonly tables = ['commands'];
  private readonly putStmt: StatementSync;
  private readonly rmStmt: StatementSync;
  private readonly allStmt: StatementSync;

  constructor(private readonly core: StoreCore) {
    this.putStmt = core.db.prepare(
      `INSERT OR REPLACE INTO commands (name, argument_count, generate_file, sha256, size, content, who, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.rmStmt = core.db.prepare('DELETE FROM commands WHERE name = ?');
    this.allStmt = core.db.prepare('SELECT * FROM commands ORDER BY name');
  }

  /** Writes an entry now. Returns whether it was written. */
  put(c: CommandRow): boolean {
    return this.core.guard('command', false, () => {
      this.putStmt.run(c.name, c.argument_count, c.generate_file, c.sha256, c.size, c.content, c.who, c.updated_at);
      return true;
    });
  }

  /** Deletes an entry now. Returns whether it existed. */
  remove(name: string): boolean {
    return this.core.guard('command', false, () => rowsChanged(this.rmStmt.run(name)) > 0);
  }

  /** Every entry, by name. */
  load(): CommandRow[] {
    return (this.allStmt.all() as unknown as CommandRow[]).map((r) => ({ ...r, content: new Uint8Array(r.content) }));
  }
}
