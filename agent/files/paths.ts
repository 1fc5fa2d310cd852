/**
 * Where the agent may read and write files (docs/files.md "Roots"): only under the directories of
 * `files.roots`. A path is refused when it is not absolute, holds a `..` segment or a NUL byte, is
 * longer than PATH_MAX, lies outside every root, or reaches outside them through a symlink (the
 * parent directory is resolved with realpath and must still be inside a root). A root itself can
 * be listed but not written, read as a file or deleted.
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { type FileErrorCode, MAX_PATH_BYTES } from '../../common/files.js';

/** A refused file request: the code of common/files.ts and a sentence for the operator. */
export class FileRefusal extends Error {
  constructor(
    readonly code: FileErrorCode,
    message: string,
    readonly offset?: number,
  ) {
    super(message);
    this.name = 'FileRefusal';
  }
}

/** Whether `p` is `root` or below it (both absolute and normalized). */
export function isInside(root: string, p: string): boolean {
  if (p === root) return true;
  const r = root.endsWith(path.sep) ? root : root + path.sep;
  return p.startsWith(r);
}

/**
 * Checks the text of a path: absolute, no `..` segment, no NUL, at most PATH_MAX bytes.
 * @returns the normalized path (duplicate and trailing slashes gone)
 * @throws FileRefusal bad_path
 */
export function checkPathText(p: string): string {
  if (typeof p !== 'string' || p === '') throw new FileRefusal('bad_path', 'no path given');
  if (p.includes('\0')) throw new FileRefusal('bad_path', 'the path holds a NUL byte');
  if (Buffer.byteLength(p) > MAX_PATH_BYTES)
    throw new FileRefusal('bad_path', `the path is longer than ${MAX_PATH_BYTES} bytes`);
  if (!path.isAbsolute(p)) throw new FileRefusal('bad_path', `${p}: not an absolute path`);
  if (p.split('/').includes('..')) throw new FileRefusal('bad_path', `${p}: a path with a .. segment is refused`);
  const n = path.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** The allowed roots, resolved once at start (realpath), and the checks against them. */
export class Roots {
  private constructor(
    /** The configured roots, normalized. */
    readonly configured: readonly string[],
    /** Their realpaths (a root that does not exist is left out). */
    readonly resolved: readonly string[],
  ) {}

  /**
   * Resolves `roots` (files.roots). A root that does not exist is created (mode 0755) so that a
   * fresh board can take files; one that cannot be made is left out and reported in `missing`.
   */
  static async open(roots: readonly string[]): Promise<{ roots: Roots; missing: string[] }> {
    const configured: string[] = [];
    const resolved: string[] = [];
    const missing: string[] = [];
    for (const r of roots) {
      let n: string;
      try {
        n = checkPathText(r);
      } catch {
        missing.push(r);
        continue;
      }
      try {
        await mkdir(n, { recursive: true, mode: 0o755 });
        resolved.push(await realpath(n));
        configured.push(n);
      } catch {
        missing.push(r);
      }
    }
    return { roots: new Roots(configured, resolved), missing };
  }

  /** The resolved root holding `real` (a realpath), or undefined. */
  rootOf(real: string): string | undefined {
    return this.resolved.find((r) => isInside(r, real));
  }

  private outside(p: string): FileRefusal {
    return new FileRefusal(
      'outside_roots',
      this.resolved.length === 0
        ? `${p}: no files.roots are configured on this agent: every path is refused`
        : `${p}: outside the allowed roots (${this.resolved.join(', ')})`,
    );
  }

  /** The lexical root of a normalized path (configured or resolved spelling), or undefined. */
  private lexicalRoot(p: string): boolean {
    return this.configured.some((r) => isInside(r, p)) || this.resolved.some((r) => isInside(r, p));
  }

  /**
   * The real directory a path's parent resolves to, checked to be inside a root; the name is kept.
   * @param create make missing directories of the parent (inside a root) first
   * @returns the real path of the entry (realpath(parent) + basename)
   * @throws FileRefusal bad_path, outside_roots (also through a symlink), not_found (no parent)
   */
  async entry(p: string, opts: { create?: boolean } = {}): Promise<string> {
    const n = checkPathText(p);
    if (!this.lexicalRoot(n)) throw this.outside(n);
    const parent = path.dirname(n);
    const base = path.basename(n);
    let realParent: string;
    try {
      realParent = await realpath(parent);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !opts.create)
        throw new FileRefusal('not_found', `${parent}: no such directory`);
      // The deepest existing ancestor must already be inside a root, then the rest is made.
      let anc = path.dirname(parent);
      for (;;) {
        try {
          const real = await realpath(anc);
          if (!this.rootOf(real)) throw this.outside(n);
          break;
        } catch (e) {
          if (e instanceof FileRefusal) throw e;
          if (anc === '/') throw this.outside(n);
          anc = path.dirname(anc);
        }
      }
      try {
        await mkdir(parent, { recursive: true, mode: 0o755 });
        realParent = await realpath(parent);
      } catch (e) {
        throw new FileRefusal('not_found', `${parent}: cannot make the directory: ${(e as Error).message}`);
      }
    }
    if (!this.rootOf(realParent))
      throw new FileRefusal(
        'outside_roots',
        `${n}: its directory resolves to ${realParent}, outside the allowed roots`,
      );
    return path.join(realParent, base);
  }

  /**
   * A path to write (or delete) as a file: {@link entry}, refused when it is a root itself.
   * @throws FileRefusal as entry, bad_path for a root
   */
  async writable(p: string, opts: { create?: boolean } = {}): Promise<string> {
    const n = checkPathText(p);
    if (this.resolved.includes(n) || this.configured.includes(n))
      throw new FileRefusal('bad_path', `${p} is an allowed root itself`);
    const real = await this.entry(n, opts);
    if (this.resolved.includes(real)) throw new FileRefusal('bad_path', `${p} is an allowed root itself`);
    return real;
  }

  /**
   * A path to read (a file or a directory): its full realpath must be inside a root, so a symlink
   * inside a root that points out of it is refused.
   * @throws FileRefusal bad_path, outside_roots, not_found
   */
  async readable(p: string): Promise<string> {
    const n = checkPathText(p);
    if (!this.lexicalRoot(n)) throw this.outside(n);
    let real: string;
    try {
      real = await realpath(n);
    } catch {
      throw new FileRefusal('not_found', `${n}: no such file or directory`);
    }
    if (!this.rootOf(real))
      throw new FileRefusal('outside_roots', `${n} resolves to ${real}, outside the allowed roots`);
    return real;
  }
}

/** lstat or null when the entry does not exist. */
export async function lstatOrNull(p: string) {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
