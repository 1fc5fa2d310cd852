/**
 * The agent's component records on disk: `<data_dir>/components.json` (docs/operations.md "The
 * agent's data directory"), written atomically (temp file, fsync, rename) so a crash at any
 * instant leaves the old or the new file, never half.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { ComponentRecord } from '../drivers/driver.js';

const VERSION = 1;

/**
 * A record as agents before the driver-state split wrote it: the bar driver's `pid` and
 * `pidStartTicks` at the top level.
 */
type StoredRecord = ComponentRecord & { pid?: unknown; pidStartTicks?: unknown };

/**
 * Moves the top-level `pid` / `pidStartTicks` of a record written by an older agent into its
 * `driverState`, so that a board upgraded in place re-adopts its running bar workloads. A record
 * that already has a `driverState` keeps it. Pure; returns a new record without the old keys.
 */
export function upgradeRecord(stored: StoredRecord): ComponentRecord {
  const { pid, pidStartTicks, ...rec } = stored;
  if ((pid === undefined && pidStartTicks === undefined) || rec.driverState) return rec;
  return { ...rec, driverState: { pid, pidStartTicks } };
}

/** Loads and saves the records of one agent. */
export class RecordStore {
  readonly file: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly dataDir: string) {
    this.file = path.join(dataDir, 'components.json');
  }

  /** The saved records; [] when there is no file yet. @throws when the file exists but is not valid */
  async load(): Promise<ComponentRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const doc = JSON.parse(text) as { version?: number; components?: StoredRecord[] };
    if (doc.version !== VERSION || !Array.isArray(doc.components))
      throw new Error(`${this.file}: not a muster component file (version ${doc.version})`);
    return doc.components.map(upgradeRecord);
  }

  /** Renames an unreadable file to `components.json.bad-<time>`; returns the new name. */
  async setAside(): Promise<string> {
    const to = `${this.file}.bad-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await rename(this.file, to);
    return to;
  }

  /** Saves all records; concurrent saves are serialized, the last one wins. */
  save(records: readonly ComponentRecord[]): Promise<void> {
    const text = `${JSON.stringify({ version: VERSION, components: records }, null, 1)}\n`;
    this.writing = this.writing.catch(() => undefined).then(() => this.write(text));
    return this.writing;
  }

  private async write(text: string): Promise<void> {
    await mkdir(this.dataDir, { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }
}
