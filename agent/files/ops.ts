/**
 * Listing, reading back and deleting files inside the allowed roots (docs/files.md "Agent
 * routes"). Reads resolve the whole path (a symlink out of a root is refused); deletes resolve the
 * parent and remove the entry itself (a symlink is removed, not followed), a directory only with
 * the explicit recursive flag; a root itself is never deleted.
 */
import { constants, type ReadStream } from 'node:fs';
import { type FileHandle, lstat, open, opendir, readlink, rm, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { DeleteReply, ListEntry, ListReply } from '../../common/files.js';
import { FileRefusal, lstatOrNull, type Roots } from './paths.js';

/** The permission bits of a mode as 4-digit octal text. */
export const modeText = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/**
 * Lists a directory: at most `max` entries (sorted by name), each with its type, size, mode and
 * mtime; `truncated` when there were more.
 * @throws FileRefusal bad_path, outside_roots, not_found, bad_request (not a directory)
 */
export async function listDir(roots: Roots, p: string, max: number): Promise<ListReply> {
  const real = await roots.readable(p);
  const st = await stat(real);
  if (!st.isDirectory()) throw new FileRefusal('bad_request', `${p} is not a directory`);
  const names: string[] = [];
  let truncated = false;
  const d = await opendir(real);
  for await (const e of d) {
    if (names.length >= max) {
      truncated = true;
      break;
    }
    names.push(e.name);
  }
  names.sort();
  const entries: ListEntry[] = [];
  for (const name of names) {
    let s: Awaited<ReturnType<typeof lstat>>;
    try {
      s = await lstat(path.join(real, name));
    } catch {
      continue;
    }
    entries.push({
      name,
      type: s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'other',
      size: s.size,
      mode: modeText(s.mode),
      mtime: new Date(s.mtimeMs).toISOString(),
    });
  }
  return { path: p, entries, truncated };
}

/**
 * Opens a regular file to send it back.
 * @throws FileRefusal bad_path, outside_roots, not_found, is_directory, bad_request (not a file)
 */
export async function openFile(roots: Roots, p: string): Promise<{ size: number; stream: ReadStream }> {
  const real = await roots.readable(p);
  // Opened without following a link at the last step (the path was resolved just before: a link
  // swapped in meanwhile is refused), then checked again through the descriptor itself.
  let fh: FileHandle;
  try {
    fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new FileRefusal('outside_roots', `${p} was replaced by a symlink while being opened; refused`);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new FileRefusal('is_directory', `${p} is a directory`);
    if (!st.isFile()) throw new FileRefusal('bad_request', `${p} is not a regular file`);
    const where = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => real);
    if (!roots.rootOf(where)) throw new FileRefusal('outside_roots', `${p} resolves outside the allowed roots`);
    return { size: st.size, stream: fh.createReadStream({ start: 0, end: Math.max(0, st.size - 1) }) };
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
}

/**
 * Deletes a file or symlink, or a directory: an empty one, or with `recursive` one with all it
 * holds. Nothing there is `absent`, not an error.
 * @throws FileRefusal bad_path, outside_roots, not_found (no parent), not_empty (a directory
 *   with entries and no recursive flag)
 */
export async function deletePath(roots: Roots, p: string, recursive: boolean): Promise<DeleteReply> {
  let real: string;
  try {
    real = await roots.writable(p);
  } catch (err) {
    if (err instanceof FileRefusal && err.code === 'not_found') return { path: p, removed: 'absent' };
    throw err;
  }
  const st = await lstatOrNull(real);
  if (!st) return { path: p, removed: 'absent' };
  if (!st.isDirectory()) {
    await unlink(real);
    return { path: p, removed: 'file' };
  }
  if (recursive) {
    // rm does not follow symlinks below: a link to elsewhere is removed, its target kept.
    await rm(real, { recursive: true, force: true });
    return { path: p, removed: 'dir' };
  }
  try {
    await rmdir(real);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new FileRefusal('not_empty', `${p} is a directory that is not empty: delete it with the recursive flag`);
    throw err;
  }
  return { path: p, removed: 'dir' };
}
