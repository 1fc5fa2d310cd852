/**
 * Uploads held by the manager for pushes (docs/files.md "Pushing files"): each file is streamed to
 * `<data_dir>/files/<id>` (through `<id>.part`, renamed when whole) with its sha256 computed on the
 * way, never held in memory. Bounds: files.max_upload_bytes per file (a larger declared
 * content-length is refused before a byte is read, a body that grows past it is cut off),
 * files.max_stored_bytes for all of them together (507), files.upload_ttl_ms (an upload no push
 * is using is deleted after it). The directory is emptied at start: uploads do not survive a
 * restart.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Upload } from '../../common/api/files.js';
import type { Logger } from '../../common/log.js';
import { Refused } from '../refused.js';

/** The staging limits (manager `files.*`). */
export interface StagingLimits {
  max_upload_bytes: number;
  max_stored_bytes: number;
  upload_ttl_ms: number;
}

/** A refused upload: HTTP status, error code, message. */
export class UploadRefused extends Refused {}

interface Held extends Upload {
  file: string;
  expires: number;
  pins: number;
}

/** The uploads held for pushes. */
export class Staging {
  private readonly held = new Map<string, Held>();
  /** Bytes held and bytes being received (reserved by their declared or running size). */
  private stored = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly limits: StagingLimits,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Empties the directory (a previous run's uploads) and starts the expiry sweep. */
  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const f of await readdir(this.dir)) await rm(path.join(this.dir, f), { force: true, recursive: true });
    this.sweeper = setInterval(
      () => void this.sweep(),
      Math.max(1000, Math.min(60_000, this.limits.upload_ttl_ms / 4)),
    );
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  /** Deletes expired uploads that no push is using. @returns how many */
  async sweep(): Promise<number> {
    let n = 0;
    for (const [id, h] of this.held) {
      if (h.pins > 0 || h.expires > this.now()) continue;
      this.held.delete(id);
      this.stored -= h.size;
      await unlink(h.file).catch(() => {});
      n++;
    }
    return n;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.stored;
  }

  /**
   * Streams `body` to a new upload named `name`.
   * @param declared the request's content-length, when it sent one
   * @throws UploadRefused 413 too_large, 507 no_space (files.max_stored_bytes), 400 bad_request
   *   (the body broke off)
   */
  async receive(name: string, body: Readable, declared?: number): Promise<Upload> {
    const max = this.limits.max_upload_bytes;
    if (declared !== undefined && declared > max)
      throw new UploadRefused(413, 'too_large', `${name}: ${declared} bytes is over files.max_upload_bytes (${max})`);
    const reserve = declared ?? 0;
    if (this.stored + reserve > this.limits.max_stored_bytes)
      throw new UploadRefused(
        507,
        'no_space',
        `the manager holds ${this.stored} bytes of uploads; ${reserve} more is over files.max_stored_bytes (${this.limits.max_stored_bytes})`,
      );
    this.stored += reserve;
    const id = randomUUID();
    const file = path.join(this.dir, id);
    const part = `${file}.part`;
    const hash = createHash('sha256');
    let size = 0;
    let counted = reserve;
    const limits = this.limits;
    const self = this;
    const count = new Transform({
      transform(chunk: Buffer, _e, cb) {
        size += chunk.length;
        if (size > max)
          return cb(new UploadRefused(413, 'too_large', `${name}: more than files.max_upload_bytes (${max}) bytes`));
        if (size > counted) {
          self.stored += size - counted;
          counted = size;
          if (self.stored > limits.max_stored_bytes)
            return cb(
              new UploadRefused(
                507,
                'no_space',
                `uploads held would pass files.max_stored_bytes (${limits.max_stored_bytes})`,
              ),
            );
        }
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(body, count, createWriteStream(part, { mode: 0o600 }));
      if (declared !== undefined && size !== declared)
        throw new UploadRefused(400, 'bad_request', `${name}: the body ended after ${size} of ${declared} bytes`);
      await rename(part, file);
    } catch (err) {
      this.stored -= counted;
      await unlink(part).catch(() => {});
      if (err instanceof UploadRefused) throw err;
      throw new UploadRefused(
        400,
        'bad_request',
        `${name}: the upload broke off after ${size} bytes: ${(err as Error).message}`,
      );
    }
    // The reservation becomes the real size.
    this.stored += size - counted;
    const at = this.now();
    const h: Held = {
      id,
      name,
      size,
      sha256: hash.digest('hex'),
      created_at: new Date(at).toISOString(),
      expires_at: new Date(at + this.limits.upload_ttl_ms).toISOString(),
      file,
      expires: at + this.limits.upload_ttl_ms,
      pins: 0,
    };
    this.held.set(id, h);
    this.log.info({ upload: id, name, size, sha256: h.sha256 }, 'upload received');
    return this.view(h);
  }

  private view(h: Held): Upload {
    const { file: _f, expires: _e, pins: _p, ...u } = h;
    return u;
  }

  /** An upload and its file, or undefined. */
  get(id: string): (Upload & { file: string }) | undefined {
    const h = this.held.get(id);
    return h ? { ...this.view(h), file: h.file } : undefined;
  }

  /** Keeps an upload from expiring while a push uses it; returns the release. */
  pin(id: string): () => void {
    const h = this.held.get(id);
    if (!h) return () => {};
    h.pins++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      h.pins--;
      // An upload stays at least upload_ttl_ms after its last push.
      h.expires = Math.max(h.expires, this.now() + this.limits.upload_ttl_ms);
    };
  }
}
