/**
 * Prompt release of streamed chunk buffers (docs/files.md "Memory while streaming").
 *
 * Every chunk a file stream reads, and every body chunk node:http hands over, is a fresh
 * ArrayBuffer outside the V8 heap. V8 frees such buffers only when a garbage collection visits
 * them, and a stream of large chunks makes almost no heap garbage, so no collection comes until
 * V8's external-memory limit (~64 MiB above the last collection) is passed; then it marks the
 * whole heap. Streaming a large file therefore grew a process's RSS by up to ~64 MiB per file in
 * flight and cost a full marking of the manager's heap every 64 MiB moved (measured in
 * bench/files-push.ts). A minor collection (a scavenge of the young generation, where the dead
 * chunks are) every few MiB frees them at a cost of well under a millisecond.
 *
 * `gc` is not exposed to a process started without `--expose-gc`; it is fetched once through
 * `v8.setFlagsFromString('--expose-gc')` in a fresh context. When that is not possible the
 * releaser does nothing (V8's own limits then apply).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFn = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let gcFn: GcFn | null | undefined;

function gcOrNull(): GcFn | null {
  if (gcFn !== undefined) return gcFn;
  const global = (globalThis as { gc?: GcFn }).gc;
  if (typeof global === 'function') {
    gcFn = global;
    return gcFn;
  }
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    gcFn = typeof fn === 'function' ? (fn as GcFn) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** Bytes streamed between two minor collections. */
export const RELEASE_EVERY_BYTES = 8 << 20;

/**
 * Counts bytes streamed through a process and runs a minor garbage collection every
 * `every` bytes (default {@link RELEASE_EVERY_BYTES}), summed over all streams of the process,
 * so chunk buffers already written are freed promptly (see the module comment).
 */
export class ChunkReleaser {
  private pending = 0;
  /** Minor collections run. */
  collections = 0;

  constructor(private readonly every = RELEASE_EVERY_BYTES) {}

  /** Adds `n` bytes; collects when `every` bytes have passed since the last collection. */
  add(n: number): void {
    this.pending += n;
    if (this.pending < this.every) return;
    this.pending = 0;
    const gc = gcOrNull();
    if (!gc) return;
    gc({ type: 'minor' });
    this.collections++;
  }
}

/** The releaser shared by every stream of this process. */
export const chunkReleaser = new ChunkReleaser();
