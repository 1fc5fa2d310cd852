/**
 * Images for air-gapped chassis (docs/protocol.md "docker: what url and file mean"): a `docker
 * save` tarball fetched over http(s) with the agent's bounded downloader (agent/net/download.ts)
 * and then `docker load`ed.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../../common/log.js';
import { fmtBytes } from '../../deploy/admission.js';
import { DeployError, RESULT } from '../../deploy/results.js';
import { type DownloadDispatcher, DownloadError, download } from '../../net/download.js';
import type { Progress } from '../driver.js';
import { type Engine, FetchTimeout, followJsonLines, PROGRESS_EVERY_MS, pct } from './engine.js';

/** Bounds of a tarball download. */
export interface TarballLimits {
  /** Largest tarball, bytes (deploy.max_bundle_bytes). */
  maxBytes: number;
  /** The fetch deadline's length, ms (deploy.fetch_timeout_ms), for messages. */
  timeoutMs: number;
  dispatcher: DownloadDispatcher;
}

/**
 * Downloads `url/file` into `workDir` and loads it into the engine; the tarball is removed after.
 * @param signal the fetch deadline, shared by the download and the load
 * @returns the image reference the tarball holds (its first tag, else its image id)
 * @throws DeployError FETCH_FAILED (HTTP status, too large, timed out, closed early, not an image)
 */
export async function fetchTarballImage(
  engine: Engine,
  limits: TarballLimits,
  spec: { url: string; file: string; workDir: string },
  progress: Progress,
  signal: AbortSignal,
  log: Logger,
): Promise<string> {
  const src = `${spec.url.replace(/\/+$/, '')}/${spec.file}`;
  const tarball = path.join(spec.workDir, `image-${process.pid}-${Date.now()}.tar`);
  try {
    await mkdir(spec.workDir, { recursive: true });
    await downloadTarball(engine, limits, src, spec.file, tarball, progress, signal);
    return await loadTarball(engine, tarball, spec.file, progress, signal, log);
  } finally {
    await rm(tarball, { force: true }).catch(() => undefined);
  }
}

async function downloadTarball(
  engine: Engine,
  limits: TarballLimits,
  src: string,
  file: string,
  dest: string,
  progress: Progress,
  signal: AbortSignal,
): Promise<void> {
  progress(`fetching ${src}`);
  const what = `image tarball ${src} could not be fetched`;
  try {
    const got = await download(src, {
      dest,
      maxBytes: limits.maxBytes,
      signal,
      timeoutMs: limits.timeoutMs,
      dispatcher: limits.dispatcher,
      progress,
      progressLabel: file,
      progressEveryMs: PROGRESS_EVERY_MS,
    });
    progress(`fetched ${file}: ${fmtBytes(got.status === 200 ? got.bytes : 0)}`);
  } catch (err) {
    if (err instanceof DownloadError && err.reason === 'timeout') throw engine.fetchError(what, new FetchTimeout());
    throw new DeployError(RESULT.FETCH_FAILED, `${what}: ${(err as Error).message}`);
  }
}

/** Loads a `docker save` tarball; returns the image reference it holds. */
async function loadTarball(
  engine: Engine,
  tarball: string,
  file: string,
  progress: Progress,
  signal: AbortSignal,
  log: Logger,
): Promise<string> {
  progress(`loading ${file}`);
  const what = `image tarball ${file} could not be loaded`;
  let events: Record<string, unknown>[];
  try {
    const stream = await (await engine.docker()).loadImage(tarball, { abortSignal: signal });
    let last = 0;
    events = await followJsonLines(stream, signal, (ev) => {
      const now = Date.now();
      if (typeof ev.stream === 'string' || now - last < PROGRESS_EVERY_MS) return;
      last = now;
      const d = ev.progressDetail as { current?: number; total?: number } | undefined;
      if (typeof ev.status === 'string' && d?.total) {
        progress(`loading ${file}: ${ev.status.toLowerCase()} ${pct(d.current ?? 0, d.total)}%`);
      }
    });
  } catch (err) {
    throw engine.fetchError(what, signal.aborted ? new FetchTimeout() : err);
  }
  const text = events.map((e) => (typeof e.stream === 'string' ? e.stream : '')).join('');
  const tagged = [...text.matchAll(/^Loaded image: (\S+)/gm)].map((m) => m[1] as string);
  const ids = [...text.matchAll(/^Loaded image ID: (\S+)/gm)].map((m) => m[1] as string);
  const ref = tagged[0] ?? ids[0];
  if (!ref) throw new DeployError(RESULT.FETCH_FAILED, `${what}: docker load reported no image`);
  if (tagged.length + ids.length > 1) {
    log.warn({ file, images: [...tagged, ...ids] }, 'tarball holds several images; running the first');
  }
  progress(`loaded ${ref}`);
  return ref;
}
