/**
 * Fetches bar bundles over HTTP(S) into a content-addressed cache: `<cacheDir>/<sha256>`.
 *
 * The body is hashed while it streams into a temp file that is renamed once complete, so a blob
 * under its hash is always whole. The download is agent/net/download.ts, bounded by a time limit
 * (the whole fetch, body included) and a size limit (docs/configuration.md `deploy.*`).
 * `<cacheDir>/index.json` maps each fetched URL to its blob and validators (ETag, Last-Modified):
 * a repeated fetch is a conditional GET and a 304 reuses the blob; a 200 with identical content
 * reuses it as well. A blob no URL refers to any more (the server's file changed) is deleted
 * unless a start is still unpacking it, so the cache holds at most one blob per URL.
 */
import { randomUUID } from 'node:crypto';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { Logger } from '../../../common/log.js';
import { fmtBytes } from '../../deploy/admission.js';
import { DeployError, RESULT } from '../../deploy/results.js';
import { createDownloadDispatcher, DownloadError, type Downloaded, download, headerValue } from '../../net/download.js';
import type { Progress } from '../driver.js';

/** Cache settings. */
export interface BundleCacheOptions {
  cacheDir: string;
  /** Time limit of one fetch, body included, ms. */
  timeoutMs: number;
  /** Largest bundle accepted, bytes. */
  maxBytes: number;
  log: Logger;
  /** Least time between two progress lines, ms (default 500). */
  progressEveryMs?: number;
}

/** A fetched bundle in the cache; `release()` once it has been unpacked. */
export interface CachedBlob {
  path: string;
  sha256: string;
  /** bytes */
  size: number;
  /** True when no body was downloaded (304) or the downloaded body was already cached. */
  reused: boolean;
  release(): void;
}

interface IndexEntry {
  sha256: string;
  size: number;
  etag?: string | undefined;
  lastModified?: string | undefined;
  /** ISO time of the last fetch. */
  fetchedAt: string;
}

interface IndexFile {
  version: 1;
  entries: Record<string, IndexEntry>;
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/** The bundle cache of one agent. */
export class BundleCache {
  private index: IndexFile | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly pins = new Map<string, number>();
  private readonly dispatcher: Dispatcher;
  private readonly indexFile: string;

  constructor(private readonly opts: BundleCacheOptions) {
    this.indexFile = path.join(opts.cacheDir, 'index.json');
    this.dispatcher = createDownloadDispatcher(opts.timeoutMs);
  }

  /** Runs `fn` after every earlier index operation (index reads and writes never interleave). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.catch(() => undefined).then(fn);
    this.chain = next;
    return next;
  }

  private async loadIndex(): Promise<IndexFile> {
    if (this.index) return this.index;
    try {
      const parsed = JSON.parse(await readFile(this.indexFile, 'utf8')) as IndexFile;
      if (parsed?.version !== 1 || typeof parsed.entries !== 'object' || parsed.entries === null)
        throw new Error('bad');
      this.index = parsed;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.opts.log.warn({ file: this.indexFile }, 'bundle cache index unreadable; starting a new one');
      }
      this.index = { version: 1, entries: {} };
    }
    return this.index;
  }

  private async saveIndex(idx: IndexFile): Promise<void> {
    const tmp = `${this.indexFile}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(idx, null, 2)}\n`);
    await rename(tmp, this.indexFile);
  }

  private pin(sha: string): CachedBlob['release'] {
    this.pins.set(sha, (this.pins.get(sha) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.pins.get(sha) ?? 1) - 1;
      if (n <= 0) this.pins.delete(sha);
      else this.pins.set(sha, n);
    };
  }

  /** Records `url → entry` and deletes the blob the URL had before when nothing else uses it. */
  private record(url: string, entry: IndexEntry): Promise<void> {
    return this.serial(async () => {
      const idx = await this.loadIndex();
      const old = idx.entries[url]?.sha256;
      idx.entries[url] = entry;
      await this.saveIndex(idx);
      if (old && old !== entry.sha256 && !this.pins.has(old)) {
        const used = Object.values(idx.entries).some((e) => e.sha256 === old);
        if (!used) await rm(path.join(this.opts.cacheDir, old), { force: true });
      }
    });
  }

  /**
   * Fetches `url` (a conditional GET when it was fetched before) and returns its cached blob,
   * pinned until `release()`. The download itself is agent/net/download.ts.
   * @throws DeployError FETCH_FAILED (unreachable, HTTP status other than 200/304, too large,
   *   timed out, closed early), naming the URL
   */
  async fetch(url: string, progress: Progress): Promise<CachedBlob> {
    const { cacheDir, maxBytes, timeoutMs } = this.opts;
    await mkdir(cacheDir, { recursive: true });
    const prev = await this.serial(async () => (await this.loadIndex()).entries[url]);
    const prevPath = prev ? path.join(cacheDir, prev.sha256) : '';
    const conditional = prev && (prev.etag || prev.lastModified) && (await exists(prevPath)) ? prev : undefined;
    const headers: Record<string, string> = {};
    if (conditional?.etag) headers['if-none-match'] = conditional.etag;
    if (conditional?.lastModified) headers['if-modified-since'] = conditional.lastModified;
    const failed = (why: string): DeployError => new DeployError(RESULT.FETCH_FAILED, `fetching ${url}: ${why}`);

    progress(`fetching ${url}`);
    const tmp = path.join(cacheDir, `.tmp-${randomUUID()}`);
    let got: Downloaded;
    try {
      got = await download(url, {
        dest: tmp,
        maxBytes,
        signal: AbortSignal.timeout(timeoutMs),
        timeoutMs,
        dispatcher: this.dispatcher,
        headers,
        accept304: conditional !== undefined,
        sha256: true,
        progress,
        progressLabel: url,
        progressEveryMs: this.opts.progressEveryMs ?? 500,
      });
    } catch (err) {
      await rm(tmp, { force: true });
      throw failed(err instanceof DownloadError ? err.message : (err as Error).message);
    }
    if (got.status === 304 && conditional) {
      const release = this.pin(conditional.sha256);
      // Pinned; the blob may have been pruned in between by a concurrent fetch of changed content.
      if (await exists(prevPath)) {
        progress(`${url}: not modified, using the cached bundle (sha256 ${conditional.sha256})`);
        await this.record(url, { ...conditional, fetchedAt: new Date().toISOString() });
        return { path: prevPath, sha256: conditional.sha256, size: conditional.size, reused: true, release };
      }
      release();
      throw failed('server says not modified but the cached copy is gone; retry');
    }
    if (got.status !== 200 || got.sha256 === undefined) throw failed('no body');
    const { sha256, bytes } = got;
    const final = path.join(cacheDir, sha256);
    const release = this.pin(sha256);
    let reused = false;
    try {
      if (await exists(final)) {
        reused = true;
        await rm(tmp, { force: true });
      } else {
        await rename(tmp, final);
      }
      await this.record(url, {
        sha256,
        size: bytes,
        etag: headerValue(got.headers.etag),
        lastModified: headerValue(got.headers['last-modified']),
        fetchedAt: new Date().toISOString(),
      });
    } catch (err) {
      release();
      await rm(tmp, { force: true });
      throw new DeployError(RESULT.FETCH_FAILED, `caching ${url}: ${(err as Error).message}`);
    }
    progress(`fetched ${url}: ${fmtBytes(bytes)}, sha256 ${sha256}${reused ? ' (identical to the cached copy)' : ''}`);
    return { path: final, sha256, size: bytes, reused, release };
  }
}
