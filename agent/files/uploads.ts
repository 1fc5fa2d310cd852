/**
 * Resumable, atomic uploads into the allowed roots (docs/files.md "Resume protocol", "Limits").
 *
 * An upload of `size` bytes with hash `sha256` to `path` is written to a partial file in the same
 * directory, `.<name>.muster-part-<key>` (key = the first 16 hex digits of sha256(real path, NUL,
 * sha256, NUL, size)), so the same upload always finds its own partial file again. The client
 * asks {@link Uploads.offset} how many bytes are already there and sends the rest from that
 * offset; the bytes already there are hashed again, the new ones as they arrive, and only when
 * the whole file has `sha256` is it fsynced, given its mode and owner, and renamed onto `path`
 * (then the directory is fsynced): a reader of `path` sees the old file or the new one, never part
 * of one. A wrong hash deletes the partial file; an interrupted body keeps it for a resume.
 *
 * Bounds: files.max_bytes (413), free space from statfs minus files.min_free_bytes (507, checked
 * before writing, and ENOSPC while writing deletes the partial file), files.max_concurrent_uploads
 * (503), files.idle_timeout_ms (a body with no byte for that long is dropped, the partial kept),
 * files.partial_ttl_ms (a partial file untouched that long is deleted). A second request for the
 * same upload (same key) supersedes the first: the first's body is dropped before the second runs.
 */

import { constants, createWriteStream } from 'node:fs';
import { type FileHandle, open, opendir, readlink, rename, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { OffsetReply, PutReply } from '../../common/files.js';
import { chunkReleaser } from '../../common/gc.js';
import type { Logger } from '../../common/log.js';
import { nodeCrypto } from '../../common/node-crypto.js';
import { FileRefusal, lstatOrNull, type Roots } from './paths.js';

/** The limits of uploads (agent config `files.*`). */
export interface UploadLimits {
  /** Largest file, bytes. */
  max_bytes: number;
  /** Uploads written at once. */
  max_concurrent_uploads: number;
  /** Free space left on a file system after an upload, bytes. */
  min_free_bytes: number;
  /** A partial file untouched this long is deleted, ms. */
  partial_ttl_ms: number;
  /** A body that sends no byte for this long is dropped, ms. */
  idle_timeout_ms: number;
}

/** What an upload is: where to, how big, which hash. */
export interface UploadSpec {
  path: string;
  sha256: string;
  size: number;
}

/** A PUT: the spec, the offset its body starts at, and the mode and owner to give the file. */
export interface PutSpec extends UploadSpec {
  offset: number;
  /** Permission bits; default 0644. */
  mode?: number;
  /** Numeric owner; default the agent's user. */
  owner?: { uid: number; gid: number };
}

/** Bytes buffered between the socket and the partial file (a few socket chunks), bytes. */
const WRITE_HIGH_WATER = 1 << 20;

/** The marker of partial files in their names. */
export const PART_MARK = '.muster-part-';

/** The partial file of an upload of `real` (a real path) with `sha256` and `size`. */
export function partPath(real: string, sha256: string, size: number): string {
  const key = nodeCrypto().createHash('sha256').update(`${real}\0${sha256}\0${size}`).digest('hex').slice(0, 16);
  return path.join(path.dirname(real), `.${path.basename(real)}${PART_MARK}${key}`);
}

interface Active {
  abort(): void;
  done: Promise<void>;
}

/** The uploads of one agent. */
export class Uploads {
  private readonly active = new Map<string, Active>();
  /** Partial files known, by path → last time written (ms). */
  private readonly parts = new Map<string, number>();
  private running = 0;
  private sweeper: NodeJS.Timeout | undefined;

  /**
   * @param onBytes called with the byte count of each chunk written (a metric)
   */
  constructor(
    private readonly roots: Roots,
    private readonly limits: UploadLimits,
    private readonly log: Logger,
    private readonly onBytes: (n: number) => void = () => {},
  ) {}

  /** Uploads being written now. */
  get inFlight(): number {
    return this.running;
  }

  /**
   * Finds partial files a previous run left in the roots (at most 6 levels deep, 20000 entries
   * looked at) and starts the sweeper that deletes those untouched for files.partial_ttl_ms.
   */
  async start(): Promise<void> {
    let seen = 0;
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > 6 || seen > 20000) return;
      let d: Awaited<ReturnType<typeof opendir>>;
      try {
        d = await opendir(dir);
      } catch {
        return;
      }
      for await (const e of d) {
        if (++seen > 20000) break;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p, depth + 1);
        else if (e.isFile() && e.name.includes(PART_MARK)) {
          try {
            this.parts.set(p, (await stat(p)).mtimeMs);
          } catch {
            // gone meanwhile
          }
        }
      }
    };
    for (const r of this.roots.resolved) await walk(r, 0);
    const every = Math.max(1000, Math.min(60_000, Math.floor(this.limits.partial_ttl_ms / 4)));
    this.sweeper = setInterval(() => void this.sweep(), every);
    this.sweeper.unref();
    await this.sweep();
  }

  /** Stops the sweeper and drops the bodies being received (their partial files stay). */
  stop(): void {
    clearInterval(this.sweeper);
    for (const a of this.active.values()) a.abort();
  }

  /** Deletes partial files untouched for files.partial_ttl_ms. @returns how many */
  async sweep(now = Date.now()): Promise<number> {
    let n = 0;
    const busy = new Set([...this.active.keys()]);
    for (const [p, at] of this.parts) {
      if (busy.has(p) || now - at < this.limits.partial_ttl_ms) continue;
      this.parts.delete(p);
      try {
        await unlink(p);
        n++;
        this.log.info({ path: p }, 'expired partial upload deleted (files.partial_ttl_ms)');
      } catch {
        // already gone
      }
    }
    return n;
  }

  private checkSpec(s: UploadSpec): void {
    if (!Number.isSafeInteger(s.size) || s.size < 0)
      throw new FileRefusal('bad_request', 'size must be an integer ≥ 0');
    if (s.size > this.limits.max_bytes)
      throw new FileRefusal(
        'too_large',
        `${s.path}: ${s.size} bytes is over this agent's limit of ${this.limits.max_bytes} bytes (files.max_bytes)`,
      );
  }

  private async checkSpace(dir: string, need: number, p: string): Promise<void> {
    const fs = await statfs(dir);
    const avail = Number(fs.bavail) * Number(fs.bsize);
    if (avail - need < this.limits.min_free_bytes)
      throw new FileRefusal(
        'no_space',
        `${p}: ${need} more bytes do not fit: ${avail} bytes free on its file system, ${this.limits.min_free_bytes} kept free (files.min_free_bytes)`,
      );
  }

  /** Drops a running request of the same upload and waits until it has let go of the partial file. */
  private async supersede(part: string): Promise<void> {
    const a = this.active.get(part);
    if (!a) return;
    a.abort();
    await a.done;
  }

  /**
   * How many bytes of an upload the agent already holds (0 when none, or when the partial file
   * is larger than the upload: then it is deleted). Checks the path, the size limit and the free
   * space for the rest, so a client learns of a refusal before it sends anything.
   * @throws FileRefusal bad_path, outside_roots, too_large, no_space, is_directory
   */
  async offset(s: UploadSpec): Promise<OffsetReply> {
    this.checkSpec(s);
    // A directory still to be made is made now (inside a root): the PUT will need it.
    const real = await this.roots.writable(s.path, { create: true });
    if ((await lstatOrNull(real))?.isDirectory()) throw new FileRefusal('is_directory', `${s.path} is a directory`);
    const part = partPath(real, s.sha256, s.size);
    await this.supersede(part);
    let have = (await lstatOrNull(part))?.size ?? 0;
    if (have > s.size) {
      await unlink(part).catch(() => {});
      this.parts.delete(part);
      have = 0;
    }
    if (have > 0) this.parts.set(part, Date.now());
    await this.checkSpace(path.dirname(real), s.size - have, s.path);
    return { path: s.path, offset: have, size: s.size };
  }

  /**
   * Receives bytes [offset, size) of an upload from `body` and, once the file is whole and has
   * its hash, puts it in place atomically (see the module comment).
   * @throws FileRefusal bad_path, outside_roots, not_found, too_large, no_space, busy,
   *   offset_mismatch (with the offset held), hash_mismatch, is_directory, bad_request (a body
   *   longer or shorter than announced, or idle too long)
   */
  async put(s: PutSpec, body: Readable): Promise<PutReply> {
    // A body that breaks before the pipeline below takes it is seen there (as errored), not thrown.
    body.on('error', () => {});
    this.checkSpec(s);
    if (!Number.isSafeInteger(s.offset) || s.offset < 0 || s.offset > s.size)
      throw new FileRefusal('bad_request', `offset ${s.offset} is not within 0..${s.size}`);
    const real = await this.roots.writable(s.path, { create: true });
    if ((await lstatOrNull(real))?.isDirectory()) throw new FileRefusal('is_directory', `${s.path} is a directory`);
    const part = partPath(real, s.sha256, s.size);
    await this.supersede(part);
    if (this.running >= this.limits.max_concurrent_uploads)
      throw new FileRefusal(
        'busy',
        `${this.running} uploads are being written (files.max_concurrent_uploads = ${this.limits.max_concurrent_uploads}); try again`,
      );
    let finished!: () => void;
    const done = new Promise<void>((r) => {
      finished = r;
    });
    const superseded = new FileRefusal('busy', 'superseded by a newer request for the same upload');
    this.active.set(part, { abort: () => body.destroy(superseded), done });
    this.running++;
    this.parts.set(part, Date.now());
    try {
      return await this.receive(s, real, part, body);
    } finally {
      this.running--;
      this.active.delete(part);
      if (this.parts.has(part)) this.parts.set(part, Date.now());
      finished();
    }
  }

  private async receive(s: PutSpec, real: string, part: string, body: Readable): Promise<PutReply> {
    // The partial file is opened once, without following a symlink at its name (O_NOFOLLOW), and
    // everything after (truncate, hash of the bytes held, writes, fsync, mode, owner) goes through
    // that descriptor: a link planted at the predictable name, or a directory swapped for a link
    // after the path check, cannot make the agent write, chmod or chown anything outside a root.
    let fh: FileHandle;
    try {
      fh = await open(part, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP')
        throw new FileRefusal('outside_roots', `${s.path}: a symlink stands where its partial file goes; refused`);
      throw err;
    }
    try {
      return await this.receiveInto(fh, s, real, part, body);
    } finally {
      await fh.close().catch(() => {});
    }
  }

  private async receiveInto(fh: FileHandle, s: PutSpec, real: string, part: string, body: Readable): Promise<PutReply> {
    const st = await fh.stat();
    const where = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => part);
    if (!st.isFile() || st.nlink > 1 || !this.roots.rootOf(where))
      throw new FileRefusal('outside_roots', `${s.path}: its partial file is not a plain file inside a root; refused`);
    const have = st.size;
    if (s.offset > have)
      throw new FileRefusal('offset_mismatch', `${s.path}: the agent holds ${have} bytes, not ${s.offset}`, have);
    if (s.offset < have) await fh.truncate(s.offset);
    await this.checkSpace(path.dirname(real), s.size - s.offset, s.path);

    const hash = nodeCrypto().createHash('sha256');
    if (s.offset > 0) {
      const buf = Buffer.allocUnsafe(Math.min(s.offset, 1 << 20));
      for (let pos = 0; pos < s.offset; ) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, s.offset - pos), pos);
        if (bytesRead === 0) throw new FileRefusal('offset_mismatch', `${s.path}: the partial file shrank`, pos);
        hash.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    }
    let received = 0;
    const want = s.size - s.offset;
    // One timer for the idle bound, not one per chunk: it checks when the last byte came and
    // sleeps again for the rest of the bound.
    const idleMs = this.limits.idle_timeout_ms;
    let lastByte = performance.now();
    let idle: NodeJS.Timeout | undefined;
    const check = () => {
      const quiet = performance.now() - lastByte;
      if (quiet >= idleMs)
        body.destroy(new FileRefusal('bad_request', `no data for ${idleMs} ms (files.idle_timeout_ms)`));
      else idle = setTimeout(check, idleMs - quiet + 1);
    };
    idle = setTimeout(check, idleMs);
    const onBytes = this.onBytes;
    const count = new Transform({
      // Room for a few socket chunks, so reading and writing overlap.
      highWaterMark: WRITE_HIGH_WATER,
      transform(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        if (received > want) return cb(new FileRefusal('bad_request', `the body is longer than ${want} bytes`));
        hash.update(chunk);
        onBytes(chunk.length);
        lastByte = performance.now();
        chunkReleaser.add(chunk.length);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(
        body,
        count,
        // A large high-water mark lets the chunks that came during one write go out in one writev.
        createWriteStream('', { fd: fh.fd, autoClose: false, start: s.offset, highWaterMark: WRITE_HIGH_WATER }),
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
        await unlink(part).catch(() => {});
        this.parts.delete(part);
        throw new FileRefusal('no_space', `${s.path}: the file system filled up while writing (ENOSPC)`);
      }
      if (err instanceof FileRefusal) throw err;
      throw new FileRefusal('bad_request', `the body broke off after ${received} bytes: ${(err as Error).message}`);
    } finally {
      clearTimeout(idle);
    }
    if (received !== want)
      throw new FileRefusal('bad_request', `the body ended after ${received} of ${want} bytes; resume from the offset`);
    const sum = hash.digest('hex');
    if (sum !== s.sha256) {
      await unlink(part).catch(() => {});
      this.parts.delete(part);
      throw new FileRefusal('hash_mismatch', `${s.path}: the bytes have sha256 ${sum}, not ${s.sha256}; discarded`);
    }
    await fh.sync();
    await fh.chmod(s.mode ?? 0o644);
    if (s.owner) await fh.chown(s.owner.uid, s.owner.gid);
    await rename(part, real);
    this.parts.delete(part);
    const dir = await open(path.dirname(real), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return { path: s.path, size: s.size, sha256: sum, received, offset: s.offset };
  }
}
