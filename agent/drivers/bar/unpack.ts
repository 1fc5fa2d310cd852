/**
 * Unpacks a fetched bar bundle into a component's bundle directory, safely.
 *
 * A gzip tar (detected by its magic bytes, not its name) is read twice: a listing pass checks
 * every entry first (no absolute path, no `..` segment, no symlink or hardlink that resolves
 * outside the bundle, no device or fifo) and only when all pass is it extracted, with node-tar's
 * own path checks as a second line. So a refused bundle writes nothing at all. `bar.yaml` must
 * be a regular file at the root. A file that is not a gzip tar but a script (`#!`) or an ELF
 * binary is a bundle of one, run as `./<file>`.
 */
import { chmod, copyFile, lstat, mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { extract, list, type ReadEntry } from 'tar';
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

const escapes = (p: string, extra = ''): DeployError =>
  new DeployError(RESULT.FETCH_FAILED, `bundle entry ${JSON.stringify(p)}${extra} escapes the bundle directory`);

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
   * @throws DeployError FETCH_FAILED when the entry is refused
   */
  check(e: EntryInfo): void {
    this.count++;
    const raw = e.path;
    if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw) || raw.startsWith('\\')) throw escapes(raw);
    const segs = raw.split('/').filter((s) => s !== '' && s !== '.');
    if (segs.includes('..')) throw escapes(raw);
    if (!ALLOWED.has(e.type)) {
      const what = /Device|FIFO/.test(e.type) ? 'device and fifo entries are not allowed' : 'unsupported entry type';
      throw new DeployError(RESULT.FETCH_FAILED, `bundle entry ${JSON.stringify(raw)}: ${e.type}: ${what}`);
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

/**
 * Lists `tgz` and checks every entry.
 * @returns the guard after all entries (hasManifest, count)
 * @throws DeployError FETCH_FAILED on the first refused entry or a broken archive
 */
export async function checkArchive(tgz: string): Promise<EntryGuard> {
  const guard = new EntryGuard();
  let refused: unknown;
  try {
    await list({
      file: tgz,
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        if (refused) return;
        try {
          guard.check({ path: entry.path, type: entry.type, linkpath: entry.linkpath });
        } catch (err) {
          refused = err;
        }
      },
    });
  } catch (err) {
    if (refused) throw refused;
    throw new DeployError(RESULT.FETCH_FAILED, `not a valid gzip tar bundle: ${(err as Error).message}`);
  }
  if (refused) throw refused;
  return guard;
}

/** What was unpacked. */
export interface Unpacked {
  manifest: Manifest;
  kind: BundleKind;
}

/**
 * Unpacks the fetched `blob` (named `file` on the server) into `bundleDir` (created; expected
 * empty) and reads its manifest.
 * @throws DeployError FETCH_FAILED when the bundle is refused or its bar.yaml is invalid
 */
export async function unpackBundle(blob: string, file: string, bundleDir: string): Promise<Unpacked> {
  const kind = await sniff(blob);
  await mkdir(bundleDir, { recursive: true });
  if (kind === 'script' || kind === 'elf') {
    const dest = path.join(bundleDir, file);
    await copyFile(blob, dest);
    await chmod(dest, 0o755);
    return {
      kind,
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
    throw new DeployError(RESULT.FETCH_FAILED, `${file}: not a gzip tar bundle or an executable (#! script or ELF)`);
  }
  const guard = await checkArchive(blob);
  if (!guard.hasManifest) {
    throw new DeployError(RESULT.FETCH_FAILED, `${file}: bundle has no bar.yaml (a regular file) at its root`);
  }
  try {
    await extract({
      file: blob,
      cwd: bundleDir,
      strict: true,
      preserveOwner: false,
      // Checked above; kept here so that nothing else can slip through.
      filter: (_p, entry) => 'type' in entry && ALLOWED.has(entry.type as string),
    });
  } catch (err) {
    throw new DeployError(RESULT.FETCH_FAILED, `${file}: cannot unpack: ${(err as Error).message}`);
  }
  const manifestPath = path.join(bundleDir, 'bar.yaml');
  const st = await lstat(manifestPath).catch(() => null);
  if (!st?.isFile()) throw new DeployError(RESULT.FETCH_FAILED, `${file}: bar.yaml at the bundle root is not a file`);
  if (st.size > MAX_MANIFEST_BYTES) {
    throw new DeployError(RESULT.FETCH_FAILED, `bar.yaml: larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  return { kind, manifest: parseManifest(await readFile(manifestPath, 'utf8')) };
}
