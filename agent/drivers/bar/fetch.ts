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
 *
 * Bounds and hygiene (docs/configuration.md `bar.cache_max_bytes`, issue 12 "Left-overs"):
 * - the blobs' total size is bounded: past `cacheMaxBytes` the least recently fetched blobs are
 *   deleted (LRU by bytes), never one a start holds (pinned) or a running component uses;
 * - a blob whose bundle was refused is deleted ({@link BundleCache.discard});
 * - at start ({@link BundleCache.sweep}) `.tmp-*` downloads left by a crash, index temp files,
 *   blobs no index entry names and entries whose blob is gone are removed;
 * - index.json is written with mode 0600 and keyed by the URL with its credentials redacted
 *   (common/redact.ts): no secret of a URL is ever written here.
 */

import { access, chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../../common/log.js';
import { nodeCrypto } from '../../../common/node-crypto.js';
import { redactText, redactUrl } from '../../../common/redact.js';
import { fmtBytes } from '../../deploy/admission.js';
import { DeployError, RESULT } from '../../deploy/results.js';
import {
  createDownloadDispatcher,
  type DownloadDispatcher,
  DownloadError,
  type Downloaded,
  download,
  headerValue,
} from '../../net/download.js';
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
  /** Largest total size of the cached blobs, bytes (bar.cache_max_bytes); default: unbounded. */
  cacheMaxBytes?: number;
  /** sha256s of the blobs that running components were started from: never evicted. */
  inUse?: () => Iterable<string>;
}

/** A blob file name: a lowercase hex sha256. */
const BLOB_RE = /^[0-9a-f]{64}$/;

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
  /** ISO time of the last fetch (the blob's last use, for LRU eviction). */
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
  /** Blobs to delete once their last pin is released (refused while another start held them). */
  private readonly doomed = new Set<string>();
  private swept: Promise<void> | undefined;
  private readonly dispatcher: DownloadDispatcher;
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
    await writeFile(tmp, `${JSON.stringify(idx, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.indexFile);
  }

  /**
   * Cleans the cache once per agent start (later calls return the same promise): removes
   * `.tmp-*` downloads and index temp files a crash left, entries whose blob is gone, blobs no
   * entry names (a refused or partial blob of an older agent), makes index.json mode 0600, then
   * evicts down to cacheMaxBytes. Never throws (problems are logged).
   */
  sweep(): Promise<void> {
    this.swept ??= this.serial(async () => {
      const { cacheDir } = this.opts;
      let names: string[];
      try {
        await mkdir(cacheDir, { recursive: true, mode: 0o700 });
        names = await readdir(cacheDir);
      } catch (err) {
        this.opts.log.warn({ dir: cacheDir, err: (err as Error).message }, 'cannot read the bundle cache');
        return;
      }
      const idx = await this.loadIndex();
      const removed: string[] = [];
      const present = new Set(names.filter((n) => BLOB_RE.test(n)));
      for (const n of names) {
        if (n.startsWith('.tmp-') || (n.startsWith('index.json.') && n.endsWith('.tmp'))) removed.push(n);
      }
      const named = new Set(Object.values(idx.entries).map((e) => e.sha256));
      for (const n of present) if (!named.has(n) && !this.pins.has(n)) removed.push(n);
      let changed = false;
      for (const [url, e] of Object.entries(idx.entries)) {
        // Also re-keys an index written by an older agent with credentials in its URLs.
        if (!present.has(e.sha256) || redactUrl(url) !== url) {
          delete idx.entries[url];
          if (present.has(e.sha256)) idx.entries[redactUrl(url)] = e;
          changed = true;
        }
      }
      for (const n of removed) await rm(path.join(cacheDir, n), { force: true }).catch(() => undefined);
      if (removed.length > 0) this.opts.log.info({ dir: cacheDir, removed }, 'bundle cache: removed left-overs');
      if (changed || names.includes('index.json')) await this.saveIndex(idx).catch(() => undefined);
      await this.evict(idx);
    }).catch((err: Error) => this.opts.log.warn({ err: err.message }, 'bundle cache sweep failed'));
    return this.swept;
  }

  /** Total bytes of the distinct blobs the index names. */
  private static total(idx: IndexFile): number {
    const sizes = new Map<string, number>();
    for (const e of Object.values(idx.entries)) sizes.set(e.sha256, e.size);
    return [...sizes.values()].reduce((a, b) => a + b, 0);
  }

  /**
   * Deletes least recently fetched blobs until the cache holds at most cacheMaxBytes; pinned
   * blobs and blobs of running components are kept even when that leaves it above the bound.
   * Runs inside `serial`.
   */
  private async evict(idx: IndexFile): Promise<void> {
    const max = this.opts.cacheMaxBytes;
    if (max === undefined) return;
    let total = BundleCache.total(idx);
    if (total <= max) return;
    const used = new Set(this.opts.inUse?.() ?? []);
    const lastUse = new Map<string, { at: number; size: number }>();
    for (const e of Object.values(idx.entries)) {
      const at = Date.parse(e.fetchedAt) || 0;
      const cur = lastUse.get(e.sha256);
      if (!cur || at > cur.at) lastUse.set(e.sha256, { at, size: e.size });
    }
    const order = [...lastUse].sort((a, b) => a[1].at - b[1].at);
    for (const [sha, { size }] of order) {
      if (total <= max) break;
      if (this.pins.has(sha) || used.has(sha)) continue;
      for (const [url, e] of Object.entries(idx.entries)) if (e.sha256 === sha) delete idx.entries[url];
      await this.saveIndex(idx);
      await rm(path.join(this.opts.cacheDir, sha), { force: true });
      total -= size;
      this.opts.log.info({ sha256: sha, bytes: size, cache_bytes: total, max_bytes: max }, 'bundle cache: evicted');
    }
    if (total > max) {
      this.opts.log.warn(
        { cache_bytes: total, max_bytes: max },
        'bundle cache above bar.cache_max_bytes: the rest is in use by starts or running components',
      );
    }
  }

  /**
   * Removes a blob whose bundle was refused: its index entries at once, the file as soon as no
   * other start holds it. Never throws.
   */
  discard(sha256: string): Promise<void> {
    return this.serial(async () => {
      const idx = await this.loadIndex();
      let changed = false;
      for (const [url, e] of Object.entries(idx.entries)) {
        if (e.sha256 === sha256) {
          delete idx.entries[url];
          changed = true;
        }
      }
      if (changed) await this.saveIndex(idx);
      if (this.pins.has(sha256)) this.doomed.add(sha256);
      else await rm(path.join(this.opts.cacheDir, sha256), { force: true });
    }).catch((err: Error) => this.opts.log.warn({ sha256, err: err.message }, 'cannot remove a refused bundle'));
  }

  /** Total bytes of the blobs the index names (after {@link sweep}). */
  async bytes(): Promise<number> {
    return this.serial(async () => BundleCache.total(await this.loadIndex()));
  }

  private pin(sha: string): CachedBlob['release'] {
    this.pins.set(sha, (this.pins.get(sha) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.pins.get(sha) ?? 1) - 1;
      if (n > 0) {
        this.pins.set(sha, n);
        return;
      }
      this.pins.delete(sha);
      if (this.doomed.delete(sha)) {
        void this.serial(() => rm(path.join(this.opts.cacheDir, sha), { force: true })).catch(() => undefined);
      }
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
      await this.evict(idx);
    });
  }

  /**
   * Fetches `url` (a conditional GET when it was fetched before) and returns its cached blob,
   * pinned until `release()`. The download itself is agent/net/download.ts. `url` may carry
   * credentials: they go into the request only; progress lines, messages and the index name the
   * URL redacted (common/redact.ts).
   * @throws DeployError FETCH_FAILED (unreachable, HTTP status other than 200/304, too large,
   *   timed out, closed early), naming the URL
   */
  async fetch(url: string, progress: Progress): Promise<CachedBlob> {
    const { cacheDir, maxBytes, timeoutMs } = this.opts;
    await this.sweep();
    await mkdir(cacheDir, { recursive: true, mode: 0o700 });
    const shown = redactUrl(url);
    const key = shown;
    const prev = await this.serial(async () => (await this.loadIndex()).entries[key]);
    const prevPath = prev ? path.join(cacheDir, prev.sha256) : '';
    const conditional = prev && (prev.etag || prev.lastModified) && (await exists(prevPath)) ? prev : undefined;
    const headers: Record<string, string> = {};
    if (conditional?.etag) headers['if-none-match'] = conditional.etag;
    if (conditional?.lastModified) headers['if-modified-since'] = conditional.lastModified;
    const failed = (why: string): DeployError =>
      new DeployError(RESULT.FETCH_FAILED, `fetching ${shown}: ${redactText(why)}`);

    progress(`fetching ${shown}`);
    const tmp = path.join(cacheDir, `.tmp-${nodeCrypto().randomUUID()}`);
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
        progressLabel: shown,
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
        progress(`${shown}: not modified, using the cached bundle (sha256 ${conditional.sha256})`);
        await this.record(key, { ...conditional, fetchedAt: new Date().toISOString() });
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
      await this.record(key, {
        sha256,
        size: bytes,
        etag: headerValue(got.headers.etag),
        lastModified: headerValue(got.headers['last-modified']),
        fetchedAt: new Date().toISOString(),
      });
    } catch (err) {
      release();
      await rm(tmp, { force: true });
      throw new DeployError(RESULT.FETCH_FAILED, `caching ${shown}: ${(err as Error).message}`);
    }
    progress(
      `fetched ${shown}: ${fmtBytes(bytes)}, sha256 ${sha256}${reused ? ' (identical to the cached copy)' : ''}`,
    );
    return { path: final, sha256, size: bytes, reused, release };
  }
}
