/**
 * Pushing files to boards and removing them (docs/files.md "Pushing files", "Resume protocol"):
 * a push resolves its target once (manager/targets.ts), then sends every file to every board,
 * files.push_concurrency boards at a time, each file in attempts: ask the agent's offset, send the
 * rest from there, and on a transient failure (unreachable, stalled, busy, a 5xx) wait
 * files.retry_backoff_ms (doubling up to files.retry_backoff_max_ms) and try again, up to
 * files.retries more times, resuming from whatever the board holds. A refusal (outside the roots,
 * too large, no space, ...) fails that board at once. Progress is kept per board; every board's
 * result and the push as a whole go to the history (who, boards, files, sha256, result).
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import type { PushNode, PushRecord, RemoveReply } from '../../common/api/files.js';
import type { Logger } from '../../common/log.js';
import type { AgentClient, AgentTarget, FileCall } from '../agents/client.js';
import { Refused } from '../refused.js';
import type { NodeRegistry } from '../registry.js';
import type { Store } from '../store/store.js';
import { resolveTarget } from '../targets.js';
import type { Staging } from './staging.js';

/** The push settings (manager `files.*`). */
export interface PushLimits {
  push_concurrency: number;
  retries: number;
  retry_backoff_ms: number;
  retry_backoff_max_ms: number;
  pushes_kept: number;
}

/** A request the manager refuses: HTTP status, code, message, the field at fault. */
export class FilesRefused extends Refused {}

/** What the pusher counts (prom-client counters, see manager/files/metrics in routes). */
export interface PushMetrics {
  /** Bytes read from uploads towards boards. */
  bytes(n: number): void;
  /** A transfer resumed from a non-zero offset. */
  resumed(): void;
  /** A board finished a push: `done` or `failed`. */
  board(result: 'done' | 'failed'): void;
}

/** Which errors of an agent call are worth another attempt. */
export function transient(r: Extract<FileCall<unknown>, { ok: false }>): boolean {
  if (r.status === 0) return true; // unreachable, timeout, stalled
  if (r.error === 'busy' || r.error === 'offset_mismatch' || r.error === 'hash_mismatch') return true;
  if (r.error === 'bad_request' && /body (ended|broke off)|no data for/.test(r.message)) return true;
  return r.status >= 500 && r.error !== 'no_space' && r.error !== 'capture_failed' && r.error !== 'not_supported';
}

/**
 * The agent address of `node`.
 * @throws FilesRefused 404 for an unknown node, 409 node_offline for an offline one
 */
export function agentTargetOf(registry: NodeRegistry, node: string): AgentTarget {
  const n = registry.nodes.get(node);
  const hb = n ? registry.boardOf(n)?.heartbeat : undefined;
  if (!n || !hb) throw new FilesRefused(404, 'not_found', `no node ${node}`);
  if (n.state === 'offline') throw new FilesRefused(409, 'node_offline', `node ${node} is offline`);
  return { node, host_ip: hb.host_ip, port: hb.service_port };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** The boards of a target, with their agents; offline or unknown ones with the reason. */
function targets(registry: NodeRegistry, target: string): { node: string; t: AgentTarget | null; why: string }[] {
  let nodes: ReturnType<typeof resolveTarget>;
  try {
    nodes = resolveTarget(registry, target);
  } catch (err) {
    throw new FilesRefused(400, 'bad_request', `target: ${(err as Error).message}`, '/target');
  }
  if (nodes.length === 0) throw new FilesRefused(404, 'not_found', `target ${JSON.stringify(target)} selects no node`);
  return nodes.map((n) => {
    try {
      return { node: n.id, t: agentTargetOf(registry, n.id), why: '' };
    } catch (err) {
      return { node: n.id, t: null, why: (err as Error).message };
    }
  });
}

/** Pushes and removals. */
export class Pusher {
  private readonly records: PushRecord[] = [];

  constructor(
    private readonly limits: PushLimits,
    private readonly registry: NodeRegistry,
    private readonly agents: Pick<AgentClient, 'fileOffset' | 'filePut' | 'fileDelete'>,
    private readonly staging: Staging,
    private readonly store: Pick<Store, 'addHistory' | 'finishHistory'>,
    private readonly metrics: PushMetrics,
    private readonly log: Logger,
  ) {}

  /** A push by id. */
  get(id: string): PushRecord | undefined {
    return this.records.find((r) => r.id === id);
  }

  /**
   * Starts a push; returns its record at once (the transfers go on in the background).
   * @throws FilesRefused 400 (bad target, an unknown upload, two files with one name), 404 (no node)
   */
  push(
    input: {
      target: string;
      files: { upload: string; name?: string | undefined }[];
      to: string;
      mode?: string | undefined;
      owner?: string | undefined;
    },
    who: string,
  ): PushRecord {
    const to = path.posix.normalize(input.to);
    if (input.to.split('/').includes('..'))
      throw new FilesRefused(400, 'bad_request', 'to: a path with a .. segment is refused', '/to');
    const files = input.files.map((f, i) => {
      const u = this.staging.get(f.upload);
      if (!u)
        throw new FilesRefused(
          400,
          'bad_request',
          `files/${i}/upload: no upload ${f.upload} (expired?)`,
          `/files/${i}/upload`,
        );
      const name = f.name ?? u.name;
      return { upload: u, name, path: path.posix.join(to, name) };
    });
    if (new Set(files.map((f) => f.path)).size !== files.length)
      throw new FilesRefused(400, 'bad_request', 'two files would go to the same path', '/files');
    const boards = targets(this.registry, input.target);
    const total = files.reduce((a, f) => a + f.upload.size, 0);
    const rec: PushRecord = {
      id: randomUUID(),
      who,
      target: input.target,
      to,
      mode: input.mode ?? '0644',
      owner: input.owner ?? null,
      files: files.map((f) => ({ name: f.name, path: f.path, size: f.upload.size, sha256: f.upload.sha256 })),
      nodes: boards.map((b) => ({
        node: b.node,
        host_ip: b.t?.host_ip ?? '',
        state: b.t ? 'queued' : 'failed',
        bytes: 0,
        total,
        file: null,
        attempts: 0,
        resumed_from: [],
        message: b.t ? null : b.why,
      })),
      at: new Date().toISOString(),
      finished_at: null,
      done: 0,
      failed: boards.filter((b) => !b.t).length,
    };
    this.records.push(rec);
    while (this.records.length > this.limits.pushes_kept) this.records.shift();
    this.store.addHistory({
      at: Date.now(),
      node: null,
      kind: 'operation',
      operation: 'files.push',
      args: { target: rec.target, to, boards: rec.nodes.map((n) => n.node), files: rec.files },
      who,
      ref: rec.id,
    });
    const releases = files.map((f) => this.staging.pin(f.upload.id));
    const work = boards.filter((b) => b.t).map((b) => ({ b, n: rec.nodes.find((x) => x.node === b.node) as PushNode }));
    for (const n of rec.nodes) if (n.state === 'failed') this.finishBoard(rec, n);
    void pool(work, this.limits.push_concurrency, async ({ b, n }) => {
      await this.board(rec, n, b.t as AgentTarget, files);
    })
      .catch((err) => this.log.error({ err: (err as Error).message, push: rec.id }, 'push failed'))
      .finally(() => {
        for (const r of releases) r();
        rec.finished_at = new Date().toISOString();
        this.store.finishHistory(
          rec.id,
          rec.failed === 0 ? 0 : -1,
          `${rec.done} of ${rec.nodes.length} board(s) done, ${rec.failed} failed`,
        );
        this.log.info({ push: rec.id, done: rec.done, failed: rec.failed }, 'push finished');
      });
    return rec;
  }

  private finishBoard(rec: PushRecord, n: PushNode): void {
    this.metrics.board(n.state === 'done' ? 'done' : 'failed');
    this.store.addHistory({
      at: Date.now(),
      node: n.node,
      kind: 'operation',
      operation: 'files.push',
      args: { push: rec.id, to: rec.to, files: rec.files, attempts: n.attempts, resumed_from: n.resumed_from },
      result: n.state === 'done' ? 0 : -1,
      message: n.message ?? (n.state === 'done' ? `${rec.files.length} file(s) in place` : 'failed'),
      who: rec.who,
      ref: `${rec.id}/${n.node}`,
    });
  }

  /** Sends every file to one board. */
  private async board(
    rec: PushRecord,
    n: PushNode,
    t: AgentTarget,
    files: { upload: { file: string; size: number; sha256: string }; path: string }[],
  ): Promise<void> {
    let before = 0;
    for (const f of files) {
      n.file = f.path;
      const err = await this.transfer(rec, n, t, f, before);
      if (err) {
        n.state = 'failed';
        n.message = `${f.path}: ${err}`;
        rec.failed++;
        this.finishBoard(rec, n);
        return;
      }
      before += f.upload.size;
      n.bytes = before;
    }
    n.file = null;
    n.state = 'done';
    n.message = `${files.length} file(s) in place`;
    rec.done++;
    this.finishBoard(rec, n);
  }

  /** One file to one board, with retries. @returns null when in place, else why it failed */
  private async transfer(
    rec: PushRecord,
    n: PushNode,
    t: AgentTarget,
    f: { upload: { file: string; size: number; sha256: string }; path: string },
    before: number,
  ): Promise<string | null> {
    const spec = { path: f.path, sha256: f.upload.sha256, size: f.upload.size };
    let wait = this.limits.retry_backoff_ms;
    let last = '';
    for (let attempt = 0; attempt <= this.limits.retries; attempt++) {
      if (attempt > 0) {
        n.state = 'retrying';
        await sleep(wait);
        wait = Math.min(this.limits.retry_backoff_max_ms, Math.max(1, wait * 2));
      }
      n.state = 'sending';
      n.attempts++;
      const off = await this.agents.fileOffset(t, spec);
      if (!off.ok) {
        last = `${off.error}: ${off.message}`;
        if (!transient(off)) return last;
        continue;
      }
      const offset = off.value.offset;
      if (offset > 0) {
        n.resumed_from.push(offset);
        this.metrics.resumed();
      }
      n.bytes = before + offset;
      // Counted as the agent client takes the bytes (a transform: the file is not read ahead).
      const metrics = this.metrics;
      const body = createReadStream(f.upload.file, { start: offset, highWaterMark: 1 << 20 }).pipe(
        new Transform({
          transform(c: Buffer, _e, cb) {
            n.bytes += c.length;
            metrics.bytes(c.length);
            cb(null, c);
          },
        }),
      );
      const put = await this.agents.filePut(
        t,
        { ...spec, offset, mode: rec.mode, owner: rec.owner ?? undefined },
        body,
      );
      if (put.ok) {
        n.bytes = before + f.upload.size;
        return null;
      }
      last = `${put.error}: ${put.message}`;
      this.log.warn({ push: rec.id, node: n.node, path: f.path, attempt, why: last }, 'push attempt failed');
      if (!transient(put)) return last;
    }
    return `gave up after ${this.limits.retries + 1} attempts (files.retries): ${last}`;
  }

  /**
   * Deletes `paths` on every board of `target` (files.push_concurrency boards at a time), each
   * board's result in the history.
   * @throws FilesRefused 400 (bad target), 404 (no node)
   */
  async remove(
    input: { target: string; paths: string[]; recursive?: boolean | undefined },
    who: string,
  ): Promise<RemoveReply> {
    for (const [i, p] of input.paths.entries())
      if (p.split('/').includes('..'))
        throw new FilesRefused(400, 'bad_request', `paths/${i}: a path with a .. segment is refused`, `/paths/${i}`);
    const boards = targets(this.registry, input.target);
    const results: RemoveReply['results'] = [];
    await pool(boards, this.limits.push_concurrency, async (b) => {
      const mine: RemoveReply['results'] = [];
      for (const p of input.paths) {
        if (!b.t) {
          mine.push({ node: b.node, path: p, ok: false, removed: null, error: 'node_offline', message: b.why });
          continue;
        }
        const r = await this.agents.fileDelete(b.t, p, input.recursive === true);
        mine.push(
          r.ok
            ? {
                node: b.node,
                path: p,
                ok: true,
                removed: r.value.removed,
                error: null,
                message: `removed: ${r.value.removed}`,
              }
            : { node: b.node, path: p, ok: false, removed: null, error: r.error, message: r.message },
        );
      }
      const failed = mine.filter((m) => !m.ok);
      this.store.addHistory({
        at: Date.now(),
        node: b.node,
        kind: 'operation',
        operation: 'files.rm',
        args: { target: input.target, paths: input.paths, recursive: input.recursive === true },
        result: failed.length === 0 ? 0 : -1,
        message:
          failed.length === 0
            ? `${mine.length} path(s) removed`
            : failed.map((m) => `${m.path}: ${m.message}`).join('; '),
        who,
      });
      results.push(...mine);
    });
    results.sort((a, b) => a.node.localeCompare(b.node) || input.paths.indexOf(a.path) - input.paths.indexOf(b.path));
    return { results };
  }
}
