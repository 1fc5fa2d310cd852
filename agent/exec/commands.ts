/**
 * The board's command set (docs/exec.md "Command sets"): `exec.commands_dir` holds each named
 * command as an executable file `<name>` with a sidecar `<name>.json` ({argument_count,
 * generate_file, sha256, size}). The manager puts and removes entries with the `command_set`
 * command; a step names one with `command`. The file's sha256 is checked against the sidecar
 * before every run, so an entry changed by hand is refused rather than run.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { COMMAND_NAME_PATTERN, type CommandEntry } from '../../common/exec.js';
import { nodeCrypto } from '../../common/node-crypto.js';

const NAME = new RegExp(COMMAND_NAME_PATTERN);
/** Largest command file, bytes (common/exec.ts CommandSetRequestData). */
export const MAX_COMMAND_BYTES = 1 << 20;

/** A command-set entry with the absolute path of its file. */
export type ResolvedEntry = CommandEntry & { file: string };

/** A refused command_set change; `message` says why. */
export class CommandSetError extends Error {}

async function writeAtomic(file: string, data: Buffer | string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, mode);
  await rename(tmp, file);
}

/** The entries of one commands_dir. */
export class CommandSet {
  constructor(readonly dir: string) {}

  /**
   * The entry `name` when its file and sidecar exist and the file's sha256 matches; else null.
   * Reads the file (≤ 1 MiB) to hash it.
   */
  get(name: string): ResolvedEntry | null {
    if (!NAME.test(name)) return null;
    const file = path.join(this.dir, name);
    try {
      const meta = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as Partial<CommandEntry>;
      const st = statSync(file);
      if (!st.isFile() || st.size > MAX_COMMAND_BYTES) return null;
      const sha = nodeCrypto().createHash('sha256').update(readFileSync(file)).digest('hex');
      if (sha !== meta.sha256) return null;
      return {
        name,
        argument_count: typeof meta.argument_count === 'number' ? meta.argument_count : -1,
        generate_file: typeof meta.generate_file === 'string' ? meta.generate_file : null,
        sha256: sha,
        size: st.size,
        file,
      };
    } catch {
      return null;
    }
  }

  /** Every valid entry, by name. */
  list(): CommandEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: CommandEntry[] = [];
    for (const n of names.sort()) {
      if (!n.endsWith('.json')) continue;
      const e = this.get(n.slice(0, -5));
      if (e) {
        const { file: _f, ...entry } = e;
        out.push(entry);
      }
    }
    return out;
  }

  /**
   * Adds or replaces the entry `name` (file mode 0700, sidecar 0600; the directory made 0700).
   * @throws CommandSetError when the content does not match `sha256`, is too large, or
   *   generate_file is not an absolute path
   */
  async put(
    name: string,
    content: Buffer,
    sha256: string,
    argumentCount: number,
    generateFile: string | null,
  ): Promise<void> {
    if (!NAME.test(name)) throw new CommandSetError(`bad command name ${JSON.stringify(name)}`);
    if (content.length > MAX_COMMAND_BYTES) throw new CommandSetError(`command ${name} is larger than 1 MiB`);
    const sha = nodeCrypto().createHash('sha256').update(content).digest('hex');
    if (sha !== sha256) throw new CommandSetError(`command ${name}: content sha256 ${sha} does not match ${sha256}`);
    if (generateFile !== null && !path.isAbsolute(generateFile))
      throw new CommandSetError(`command ${name}: generate_file must be an absolute path`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, name);
    await writeAtomic(file, content, 0o700);
    const meta = { argument_count: argumentCount, generate_file: generateFile, sha256, size: content.length };
    await writeAtomic(`${file}.json`, `${JSON.stringify(meta)}\n`, 0o600);
  }

  /** Removes the entry `name`; false when there was none. */
  async rm(name: string): Promise<boolean> {
    if (!NAME.test(name)) return false;
    const file = path.join(this.dir, name);
    const had = this.get(name) !== null;
    await rm(`${file}.json`, { force: true });
    await rm(file, { force: true });
    return had;
  }
}
