/**
 * Unpacks a fetched bar bundle into a component's bundle directory, safely (docs/operations.md
 * "A refused bundle", docs/configuration.md `bar.*`).
 *
 * A gzip tar (detected by its magic bytes, not its name) is extracted in one streaming pass into
 * a temp directory beside the bundle directory. Before an entry is written it is checked (no
 * absolute path, no `..` segment, no symlink or hardlink that resolves outside the bundle through
 * the links seen so far, no device or fifo, no symlink at all unless allowed) and counted: the
 * entry count against `maxFiles`, the bytes against `maxBytes` (its declared size before a byte
 * is written, then the bytes as they stream). The extraction is aborted the moment a bound is
 * passed: a decompression bomb never fills the disk, whatever node-tar's ratio heuristic says.
 * Once the archive is unpacked, every symlink in the tree is resolved to its final target on
 * disk (links defined later in the archive included) and the bundle is refused when any leaves
 * the bundle directory. `bar.yaml` must be a regular file at the root. Only then is the temp
 * directory renamed to the bundle directory; on any refusal it is removed, so a refused bundle
 * leaves nothing. A file that is not a gzip tar but a script (`#!`) or an ELF binary is a bundle
 * of one, run as `./<file>`.
 */

import { createReadStream } from 'node:fs';
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  rmdir,
  stat,
} from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import type { ReadEntry } from 'tar';
import { nodeCrypto } from '../../../common/node-crypto.js';
import { fmtBytes } from '../../deploy/admission.js';
import { DeployError, RESULT } from '../../deploy/results.js';
import { MAX_MANIFEST_BYTES, type Manifest, parseManifest } from './manifest.js';

/** What a fetched file is, by its first bytes. */
export type BundleKind = 'tgz' | 'script' | 'elf' | 'unknown';

/** Sniffs the first bytes of `file`: gzip (1f 8b), `#!`, ELF (7f 'E' 'L' 'F'). */
export async function sniff(file: string): Promise<BundleKind> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    const b = buf.subarray(0, bytesRead);
    if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'tgz';
    if (b.length >= 2 && b[0] === 0x23 && b[1] === 0x21) return 'script';
    if (b.length >= 4 && b[0] === 0x7f && b.subarray(1, 4).toString('latin1') === 'ELF') return 'elf';
    return 'unknown';
  } finally {
    await fh.close();
  }
}

/** The parts of a tar entry the guard looks at. */
export interface EntryInfo {
  path: string;
  type: string;
  linkpath?: string | undefined;
}

const ALLOWED = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);
/** Most symlinks followed while resolving one path (the kernel's limit is 40). */
const MAX_HOPS = 40;

/**
 * Why a bundle was refused, the `reason` label of `muster_agent_bundles_refused_total`:
 * `unpacked_bytes` (bar.max_unpacked_bytes), `files` (bar.max_files), `link` (a symlink whose
 * final target leaves the bundle), `symlinks` (a symlink while bar.allow_symlinks is false),
 * `entry` (an absolute or `..` path, a device, fifo or unsupported entry), `archive` (not a gzip
 * tar or an executable, or a broken one), `manifest` (no or an invalid bar.yaml).
 */
export type RefusalReason = 'unpacked_bytes' | 'files' | 'link' | 'symlinks' | 'entry' | 'archive' | 'manifest';

/** Every {@link RefusalReason}, for metrics. */
export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'unpacked_bytes',
  'files',
  'link',
  'symlinks',
  'entry',
  'archive',
  'manifest',
];

/** A bundle refused by what it holds (result 3, FETCH_FAILED); `reason` says which rule. */
export class BundleRefused extends DeployError {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(RESULT.FETCH_FAILED, `bundle refused: ${message}`);
    this.name = 'BundleRefused';
  }
}

const escapes = (p: string, extra = ''): BundleRefused =>
  new BundleRefused('entry', `entry ${JSON.stringify(p)}${extra} escapes the bundle directory`);

/**
 * Checks tar entries in archive order. It keeps the archive's own symlinks so that a path is
 * resolved as the kernel would resolve it in the unpacked tree (the tree starts empty and holds
 * only what the archive put there): `a -> .` followed by `b -> a/..` is caught, which a purely
 * lexical check would miss.
 */
export class EntryGuard {
  private readonly links = new Map<string, string>();
  /** True once a regular file `bar.yaml` was seen at the root. */
  hasManifest = false;
  /** Entries checked so far. */
  count = 0;

  /**
   * @throws BundleRefused (result 3) when the entry is refused
   */
  check(e: EntryInfo): void {
    this.count++;
    const raw = e.path;
    if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw) || raw.startsWith('\\')) throw escapes(raw);
    const segs = raw.split('/').filter((s) => s !== '' && s !== '.');
    if (segs.includes('..')) throw escapes(raw);
    if (!ALLOWED.has(e.type)) {
      const what = /Device|FIFO/.test(e.type) ? 'device and fifo entries are not allowed' : 'unsupported entry type';
      throw new BundleRefused('entry', `entry ${JSON.stringify(raw)}: ${e.type}: ${what}`);
    }
    const key = segs.join('/');
    if (key === '') return; // the root directory itself
    // The entry's parent directories, followed through the archive's symlinks, stay inside.
    if (this.resolve(segs.slice(0, -1)) === null) throw escapes(raw, ' (through a symlink)');
    if (key === 'bar.yaml') this.hasManifest = e.type !== 'Directory' && e.type !== 'SymbolicLink';
    if (e.type === 'SymbolicLink') {
      const target = e.linkpath ?? '';
      if (
        target === '' ||
        target.startsWith('/') ||
        this.resolve([...segs.slice(0, -1), ...target.split('/')]) === null
      ) {
        throw escapes(raw, ` (symlink to ${JSON.stringify(target)})`);
      }
      this.links.set(key, target);
      return;
    }
    this.links.delete(key);
    if (e.type === 'Link') {
      // Hardlink targets are relative to the archive root.
      const target = e.linkpath ?? '';
      const tsegs = target.split('/');
      if (target === '' || target.startsWith('/') || tsegs.includes('..')) {
        throw escapes(raw, ` (hardlink to ${JSON.stringify(target)})`);
      }
      const parent = this.resolve(tsegs.slice(0, -1));
      if (parent === null) throw escapes(raw, ` (hardlink to ${JSON.stringify(target)})`);
    }
  }

  /**
   * Resolves a path (segments from the bundle root) through the archive's symlinks.
   * @returns the resolved segments, or null when it leaves the bundle or loops
   */
  private resolve(input: string[]): string[] | null {
    const cur: string[] = [];
    const queue = [...input];
    let hops = 0;
    while (queue.length > 0) {
      const s = queue.shift() as string;
      if (s === '' || s === '.') continue;
      if (s === '..') {
        if (cur.length === 0) return null;
        cur.pop();
        continue;
      }
      cur.push(s);
      const target = this.links.get(cur.join('/'));
      if (target !== undefined) {
        if (++hops > MAX_HOPS || target.startsWith('/')) return null;
        cur.pop();
        queue.unshift(...target.split('/'));
      }
    }
    return cur;
  }
}

/** Bounds of one unpack (docs/configuration.md `bar.*`). */
export interface UnpackLimits {
  /** Largest total size of the unpacked files, bytes (bar.max_unpacked_bytes). */
  maxBytes: number;
  /** Most entries: files, directories and links (bar.max_files). */
  maxFiles: number;
  /** Accept symbolic links (bar.allow_symlinks); their final targets must stay inside anyway. */
  allowSymlinks: boolean;
}

/** The documented defaults: 512 MiB, 10,000 entries, symlinks allowed. */
export const DEFAULT_UNPACK_LIMITS: UnpackLimits = {
  maxBytes: 512 * 1024 * 1024,
  maxFiles: 10_000,
  allowSymlinks: true,
};

/** What was unpacked. */
export interface Unpacked {
  manifest: Manifest;
  kind: BundleKind;
  /** Entries written (a bundle of one: 1). */
  files: number;
  /** Bytes of file content written. */
  bytes: number;
}

const tooLarge = (limits: UnpackLimits): BundleRefused =>
  new BundleRefused(
    'unpacked_bytes',
    `unpacks to more than ${fmtBytes(limits.maxBytes)} (bar.max_unpacked_bytes); extraction stopped`,
  );
const tooMany = (limits: UnpackLimits): BundleRefused =>
  new BundleRefused('files', `holds more than ${limits.maxFiles} entries (bar.max_files); extraction stopped`);

/**
 * Extracts the gzip tar `tgz` into the existing empty directory `dir`, checking and counting each
 * entry before it is written and its bytes as they stream; aborted at the first refusal.
 * @returns entries and bytes written
 * @throws BundleRefused on the first refused entry or bound passed; `archive` for a broken tar.
 *   What was written so far stays in `dir` (the caller removes it).
 */
export async function extractCounted(
  tgz: string,
  dir: string,
  limits: UnpackLimits,
): Promise<{ files: number; bytes: number; guard: EntryGuard }> {
  const guard = new EntryGuard();
  let files = 0;
  let declared = 0;
  let streamed = 0;
  let refused: Error | undefined;
  // tar is imported on the first bundle, not when the agent starts (docs/operations.md "Agent footprint").
  const { Unpack } = await import('tar');
  const unpack = new Unpack({
    cwd: dir,
    strict: true,
    preserveOwner: false,
    filter: (_p, entry) => {
      if (refused) return false;
      const e = entry as ReadEntry;
      try {
        guard.check({ path: e.path, type: e.type, linkpath: e.linkpath });
        if (e.type === 'SymbolicLink' && !limits.allowSymlinks) {
          throw new BundleRefused(
            'symlinks',
            `entry ${JSON.stringify(e.path)} is a symbolic link and bar.allow_symlinks is false`,
          );
        }
        if (++files > limits.maxFiles) throw tooMany(limits);
        // The body of an entry is exactly its declared size (node-tar reads no more): refuse
        // before the first byte of the entry that would pass the bound is written.
        declared += e.size ?? 0;
        if (declared > limits.maxBytes) throw tooLarge(limits);
      } catch (err) {
        refused = err as Error;
        unpack.abort(refused);
        return false;
      }
      return true;
    },
    // Counts what is really written, chunk by chunk, as a second line. (node-tar pipes an entry
    // through any stream returned here; its type names its own stream class.)
    transform: ((): Transform =>
      new Transform({
        transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
          if (refused) return cb();
          streamed += chunk.length;
          if (streamed > limits.maxBytes) {
            refused = tooLarge(limits);
            unpack.abort(refused);
            return cb();
          }
          cb(null, chunk);
        },
      })) as unknown as (entry: ReadEntry) => ReadEntry,
  });
  const src = createReadStream(tgz);
  try {
    await new Promise<void>((resolve, reject) => {
      unpack.on('error', reject);
      unpack.on('close', () => resolve());
      src.on('error', reject);
      src.pipe(unpack as unknown as NodeJS.WritableStream);
    });
  } catch (err) {
    if (refused) throw refused;
    throw new BundleRefused('archive', `not a valid gzip tar bundle: ${(err as Error).message}`);
  } finally {
    src.destroy();
  }
  if (refused) throw refused;
  return { files, bytes: streamed, guard };
}

/**
 * The final target of the symlink at `rel` (a path inside `root`), resolved on disk as the
 * kernel would, through every link it meets (those the archive defined later included); a
 * missing component ends the lookup and the rest is taken as written.
 * @returns the target relative to `root` ('' = root itself), or null when the resolution leaves
 *   `root` at any step (a `..` above it, an absolute link) or loops
 */
export async function resolveInside(root: string, rel: string): Promise<string | null> {
  const cur: string[] = [];
  const queue = rel.split('/');
  let hops = 0;
  let missing = false;
  while (queue.length > 0) {
    const s = queue.shift() as string;
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (cur.length === 0) return null;
      cur.pop();
      continue;
    }
    cur.push(s);
    if (missing) continue;
    const abs = path.join(root, ...cur);
    const st = await lstat(abs).catch(() => null);
    if (!st) {
      missing = true;
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_HOPS) return null;
      const target = await readlink(abs);
      if (target.startsWith('/')) return null;
      cur.pop();
      queue.unshift(...target.split('/'));
    } else if (!st.isDirectory() && queue.some((q) => q !== '' && q !== '.')) {
      // A file in the middle of a path: the kernel says ENOTDIR; nothing further is reachable.
      missing = true;
    }
  }
  return cur.join('/');
}

/**
 * Walks the unpacked tree `root` (never following links) and checks every symlink's final target.
 * @returns entries seen
 * @throws BundleRefused `link` naming the first link whose target leaves `root`
 */
export async function checkLinks(root: string): Promise<number> {
  let seen = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      seen++;
      if (d.isSymbolicLink()) {
        if ((await resolveInside(root, r)) === null) {
          const target = await readlink(path.join(root, r)).catch(() => '?');
          throw new BundleRefused(
            'link',
            `symlink ${JSON.stringify(r)} -> ${JSON.stringify(target)} resolves outside the bundle directory (through the links of the unpacked tree)`,
          );
        }
      } else if (d.isDirectory()) {
        await walk(r);
      }
    }
  };
  await walk('');
  return seen;
}

/**
 * Unpacks the fetched `blob` (named `file` on the server) into `bundleDir` (must not exist, or
 * be empty) and reads its manifest; see the module comment for the checks and their order.
 * @param limits bounds (default {@link DEFAULT_UNPACK_LIMITS})
 * @throws BundleRefused (result 3) when the bundle is refused, with its reason; nothing of it is
 *   left on disk then
 */
export async function unpackBundle(
  blob: string,
  file: string,
  bundleDir: string,
  limits: UnpackLimits = DEFAULT_UNPACK_LIMITS,
): Promise<Unpacked> {
  const kind = await sniff(blob);
  if (kind === 'script' || kind === 'elf') {
    const size = (await stat(blob)).size;
    if (size > limits.maxBytes) throw tooLarge(limits);
    await mkdir(bundleDir, { recursive: true });
    const dest = path.join(bundleDir, file);
    await copyFile(blob, dest);
    await chmod(dest, 0o755);
    return {
      kind,
      files: 1,
      bytes: size,
      manifest: {
        name: file,
        version: '',
        command: [`./${file}`],
        env: {},
        stopSignal: 'SIGTERM',
        stopGraceMs: undefined,
      },
    };
  }
  if (kind !== 'tgz') {
    throw new BundleRefused('archive', `${file}: not a gzip tar bundle or an executable (#! script or ELF)`);
  }
  const tmp = `${bundleDir}.unpack-${nodeCrypto().randomBytes(6).toString('hex')}`;
  await mkdir(path.dirname(tmp), { recursive: true });
  await mkdir(tmp, { mode: 0o755 });
  try {
    const { files, bytes } = await extractCounted(blob, tmp, limits).catch((err: unknown) => {
      if (err instanceof BundleRefused) throw err;
      throw new BundleRefused('archive', `${file}: cannot unpack: ${(err as Error).message}`);
    });
    await checkLinks(tmp);
    const st = await lstat(path.join(tmp, 'bar.yaml')).catch(() => null);
    if (!st?.isFile())
      throw new BundleRefused('manifest', `${file}: bundle has no bar.yaml (a regular file) at its root`);
    if (st.size > MAX_MANIFEST_BYTES) {
      throw new BundleRefused('manifest', `bar.yaml: larger than ${MAX_MANIFEST_BYTES} bytes`);
    }
    let manifest: Manifest;
    try {
      manifest = parseManifest(await readFile(path.join(tmp, 'bar.yaml'), 'utf8'));
    } catch (err) {
      if (err instanceof DeployError) throw new BundleRefused('manifest', err.message);
      throw err;
    }
    // An empty bundle dir made earlier goes; a non-empty one makes the rename fail (not replaced).
    await rmdir(bundleDir).catch(() => undefined);
    await rename(tmp, bundleDir);
    return { kind, manifest, files, bytes };
  } catch (err) {
    await removeTree(tmp);
    throw err;
  }
}

/**
 * Removes `dir` and everything under it, twice a short while apart: after an aborted extraction
 * node-tar may still be finishing a write it had begun.
 */
async function removeTree(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 50));
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
