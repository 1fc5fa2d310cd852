/**
 * Task records on disk (docs/exec.md "Results and restarts"): one JSON file per task in
 * `<data_dir>/exec/tasks/<id>.json`, mode 0600, written atomically (temp file, fsync, rename) so
 * a crash leaves the old or the new record, never half. env_vars are never stored (names only).
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StepState, TaskState } from '../../common/exec.js';
import type { RunMode } from './plan.js';

/** One step as recorded. Times are ms since the epoch. */
export interface StepRecord {
  step: number;
  name: string;
  command_type: string;
  /** The command-set entry's name, or null for a script step. */
  command: string | null;
  depends_on: string[];
  /** Names of the env_vars (values are never stored). */
  env_names: string[];
  timeout_ms: number;
  state: StepState;
  exit_code: number | null;
  signal: string | null;
  begin: number | null;
  end: number | null;
  /** The process group (= the step's leader pid) while it runs, for a restarted agent to kill. */
  pgid: number | null;
  stdout_tail: string;
  stderr_tail: string;
  stdout_cut_bytes: number;
  stderr_cut_bytes: number;
  /** stdout and stderr interleaved as they came (bounded like each stream). */
  output: string;
  output_cut_bytes: number;
  message: string;
  /** The command-set entry's generate_file, fetched with exec_file. */
  generate_file: string | null;
}

/** One task as recorded. */
export interface TaskRecord {
  version: 1;
  id: string;
  /** Who submitted it: `manager` (the exec command) or `osreapi` (the seed API). */
  source: string;
  mode: RunMode;
  state: TaskState;
  message: string;
  created: number;
  begin: number | null;
  end: number | null;
  timeout_ms: number | null;
  /** /proc/sys/kernel/random/boot_id when it ran: process groups of another boot are gone. */
  boot_id: string;
  steps: StepRecord[];
}

/** Loads, saves and removes task records of one data dir. */
export class TaskStore {
  readonly dir: string;
  private readonly chains = new Map<string, Promise<void>>();

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'exec', 'tasks');
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  /** Every readable record; unreadable files are returned by name in `bad` (and left alone). */
  async loadAll(): Promise<{ records: TaskRecord[]; bad: string[] }> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const records: TaskRecord[] = [];
    const bad: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const r = JSON.parse(await readFile(path.join(this.dir, name), 'utf8')) as TaskRecord;
        if (r.version !== 1 || typeof r.id !== 'string' || !Array.isArray(r.steps)) throw new Error('not a task');
        records.push(r);
      } catch {
        bad.push(name);
      }
    }
    return { records, bad };
  }

  /** The record of `id`, or null. */
  async load(id: string): Promise<TaskRecord | null> {
    try {
      return JSON.parse(await readFile(this.file(id), 'utf8')) as TaskRecord;
    } catch {
      return null;
    }
  }

  /** Saves `rec` (a snapshot is taken now); saves of one task are serialized, the last wins. */
  save(rec: TaskRecord): Promise<void> {
    const text = JSON.stringify(rec);
    const prev = this.chains.get(rec.id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => this.write(rec.id, text));
    this.chains.set(rec.id, next);
    void next.finally(() => {
      if (this.chains.get(rec.id) === next) this.chains.delete(rec.id);
    });
    return next;
  }

  /** Removes the record of `id` (after pending saves). */
  async remove(id: string): Promise<void> {
    await (this.chains.get(id) ?? Promise.resolve()).catch(() => undefined);
    await rm(this.file(id), { force: true });
  }

  private async write(id: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(id);
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  }
}
