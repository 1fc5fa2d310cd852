/**
 * The manager's file side (manager/files/: staging.ts, push.ts; manager/routes/files.ts, screen.ts;
 * docs/files.md "Pushing files", "Resume protocol", "REST API"): uploads streamed to disk with
 * their sha256 and bounds; a push whose transfer to one board breaks mid-file resumes from the
 * offset the board holds (a real agent upload store behind an in-process AgentClient) and ends
 * with the right file; a board's refusal fails it at once; every board and the push are in the
 * history; roles: viewers may list and watch, never write or pull.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { type FileRefusal, Roots } from '../../agent/files/paths.js';
import { Uploads } from '../../agent/files/uploads.js';
import type { PushRecord } from '../../common/api/files.js';
import type { AgentFileCalls, FileCall } from '../../manager/agents/client.js';
import { Pusher, type PushMetrics, transient } from '../../manager/files/push.js';
import { Staging, type UploadRefused } from '../../manager/files/staging.js';
import { createMetricsRegistry } from '../../manager/metrics.js';
import { NodeRegistry } from '../../manager/registry.js';
import { buildServer } from '../../manager/server.js';
import { Store } from '../../manager/store/store.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fakeHeartbeatData } from '../../testkit/bodies.js';
import { serverDeps, TEST_STORE_CONFIG } from '../../testkit/server.js';

const log = pino({ level: 'silent' });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const STAGING = { max_upload_bytes: 1 << 20, max_stored_bytes: 1_400_000, upload_ttl_ms: 60_000 };

describe('manager files: staging', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'muster-staging-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('streams an upload to disk with its sha256; refuses too large (declared or grown) and a full store', async () => {
    const s = new Staging(path.join(dir, 'files'), STAGING, log);
    await s.start();
    const data = Buffer.alloc(700_000, 7);
    const u = await s.receive('a.bin', Readable.from([data]), data.length);
    assert.equal(u.sha256, sha(data));
    assert.equal(u.size, data.length);
    assert.deepEqual(readFileSync(s.get(u.id)?.file as string), data);
    await assert.rejects(
      s.receive('big', Readable.from([Buffer.alloc(1)]), (1 << 20) + 1),
      (e: UploadRefused) => e.status === 413,
    );
    await assert.rejects(
      s.receive('grows', Readable.from([Buffer.alloc(600_000), Buffer.alloc(600_000)])),
      (e: UploadRefused) => e.status === 413 && /max_upload_bytes/.test(e.message),
    );
    await assert.rejects(
      s.receive('full', Readable.from([data]), data.length + 100_000),
      (e: UploadRefused) => e.status === 507,
    );
    assert.equal(s.bytes, data.length, 'refused uploads hold nothing');
    await assert.rejects(
      s.receive('short', Readable.from([Buffer.alloc(10)]), 20),
      (e: UploadRefused) => e.status === 400,
    );
    s.stop();
  });

  it('drops an upload body that stops sending for files.stall_timeout_ms (408 stalled), holding nothing', async () => {
    const s = new Staging(path.join(dir, 'files-stall'), { ...STAGING, stall_timeout_ms: 200 }, log);
    await s.start();
    const body = new PassThrough();
    body.write(Buffer.alloc(1000, 1));
    const t0 = Date.now();
    await assert.rejects(
      s.receive('slow.bin', body, 5000),
      (e: UploadRefused) => e.status === 408 && e.code === 'stalled' && /stall_timeout_ms/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(s.bytes, 0, 'the reservation is given back');
    s.stop();
  });
});

describe('manager files: push with resume', () => {
  let dir: string;
  let store: Store;
  let staging: Staging;
  let registry: NodeRegistry;
  let agentRoot: string;
  let uploads: Uploads;
  const counted = { bytes: 0, resumed: 0, done: 0, failed: 0 };
  const metrics: PushMetrics = {
    bytes: (n) => {
      counted.bytes += n;
    },
    resumed: () => {
      counted.resumed++;
    },
    board: (r) => {
      counted[r]++;
    },
  };
  /** Breaks the next PUT to `cut` after this many bytes, as a link cut mid-transfer would. */
  const cutAfter = new Map<string, number>();

  /** An AgentClient whose boards all write into one real agent upload store (paths per node). */
  function agents(): AgentFileCalls {
    const fail = (e: unknown): FileCall<never> => {
      const r = e as FileRefusal;
      return {
        ok: false,
        status: 400,
        error: r.code,
        message: r.message,
        ...(r.offset !== undefined ? { offset: r.offset } : {}),
      };
    };
    const lost = async () => ({ ok: false as const, status: 0, error: 'unreachable' as const, message: 'no' });
    return {
      fileOffset: async (_t, spec) => uploads.offset(spec).then((value) => ({ ok: true as const, value }), fail),
      filePut: async (t, spec, body) => {
        const cut = cutAfter.get(t.node);
        if (cut === undefined) {
          return uploads
            .put({ path: spec.path, sha256: spec.sha256, size: spec.size, offset: spec.offset, mode: 0o644 }, body)
            .then((value) => ({ ok: true as const, value }), fail);
        }
        cutAfter.delete(t.node);
        // The link goes down after `cut` bytes: the agent keeps them, the manager sees a stall.
        const wire = new PassThrough();
        let sent = 0;
        body.on('data', (c: Buffer) => {
          if (sent >= cut) return;
          const part = c.subarray(0, cut - sent);
          sent += part.length;
          wire.write(part);
          if (sent >= cut) {
            body.destroy();
            setTimeout(() => wire.destroy(new Error('link down')), 10);
          }
        });
        await uploads
          .put({ path: spec.path, sha256: spec.sha256, size: spec.size, offset: spec.offset }, wire)
          .catch(() => undefined);
        return { ok: false, status: 0, error: 'stalled', message: 'the transfer stalled' };
      },
      fileList: lost,
      fileGet: lost,
      fileDelete: async (_t, p, recursive) => ({ ok: true, value: { path: p, removed: recursive ? 'dir' : 'file' } }),
      screen: lost,
    };
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'muster-push-'));
    store = Store.open(dir, TEST_STORE_CONFIG, log, createMetricsRegistry());
    staging = new Staging(path.join(dir, 'files'), STAGING, log);
    await staging.start();
    registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 });
    registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.1', 1, 1));
    registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.2', 1, 2));
    agentRoot = path.join(dir, 'board');
    uploads = new Uploads(
      (await Roots.open([agentRoot])).roots,
      {
        max_bytes: 1 << 20,
        max_concurrent_uploads: 4,
        min_free_bytes: 0,
        partial_ttl_ms: 60_000,
        idle_timeout_ms: 5000,
      },
      log,
    );
  });
  after(() => {
    staging.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const waitDone = async (p: Pusher, id: string): Promise<PushRecord> => {
    for (let i = 0; i < 200; i++) {
      const r = p.get(id) as PushRecord;
      if (r.finished_at) return r;
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.fail('push did not finish');
  };

  it('a board whose transfer breaks mid-file resumes from its offset and ends with the same sha256', async () => {
    const data = Buffer.alloc(600_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 256;
    const u = await staging.receive('fw.bin', Readable.from([data]), data.length);
    const limits = { push_concurrency: 2, retries: 3, retry_backoff_ms: 1, retry_backoff_max_ms: 5, pushes_kept: 10 };
    const p = new Pusher(limits, registry, agents(), staging, store, metrics, log);
    cutAfter.set('1-2-0', 250_000);
    const rec = p.push({ target: '1-2-0', files: [{ upload: u.id }], to: path.join(agentRoot, 'n2') }, 'otto');
    const done = await waitDone(p, rec.id);
    const n = done.nodes[0];
    assert.equal(n?.state, 'done', n?.message ?? '');
    assert.equal(n?.attempts, 2);
    assert.deepEqual(n?.resumed_from, [250_000]);
    assert.equal(sha(readFileSync(path.join(agentRoot, 'n2', 'fw.bin'))), u.sha256);
    assert.equal(counted.resumed, 1);
    assert.equal(counted.done, 1);
    // Only the rest was sent again: 250 000 before the cut (at most a read chunk more), then 350 000.
    assert.ok(counted.bytes < data.length + (1 << 20), `${counted.bytes} bytes read`);

    const h = store.listHistory({ limit: 10 }).items;
    const board = h.find((e) => e.node === '1-2-0' && e.operation === 'files.push');
    assert.equal(board?.result, 0);
    assert.equal(board?.who, 'otto');
    assert.deepEqual((board?.args?.files as { sha256: string }[] | undefined)?.[0]?.sha256, u.sha256);
    const summary = h.find((e) => e.node === null && e.operation === 'files.push');
    assert.equal(summary?.result, 0);
    assert.deepEqual(summary?.args?.boards, ['1-2-0']);
  });

  it('a refusal fails the board at once; a bad target or unknown upload is refused before anything is sent', async () => {
    const data = Buffer.alloc(1000, 1);
    const u = await staging.receive('x.bin', Readable.from([data]), data.length);
    const limits = { push_concurrency: 2, retries: 3, retry_backoff_ms: 1, retry_backoff_max_ms: 5, pushes_kept: 10 };
    const p = new Pusher(limits, registry, agents(), staging, store, metrics, log);
    const rec = p.push({ target: 'all', files: [{ upload: u.id }], to: '/etc' }, 'otto');
    const done = await waitDone(p, rec.id);
    assert.deepEqual(
      done.nodes.map((n) => [n.node, n.state, n.attempts]),
      [
        ['1-1-0', 'failed', 1],
        ['1-2-0', 'failed', 1],
      ],
    );
    assert.match(done.nodes[0]?.message ?? '', /outside_roots/);
    assert.throws(() => p.push({ target: '9-9-*', files: [{ upload: u.id }], to: '/x' }, 'o'), /selects no node/);
    assert.throws(() => p.push({ target: 'a=b=c&&', files: [{ upload: 'nope' }], to: '/x' }, 'o'), /no upload nope/);
    assert.throws(() => p.push({ target: 'all', files: [{ upload: u.id }], to: '/x/../etc' }, 'o'), /\.\. segment/);
  });

  it('classifies failures: unreachable, stalled, busy and 5xx are retried; refusals are not', () => {
    const f = (status: number, error: string, message = '') =>
      ({ ok: false, status, error, message }) as Extract<FileCall<unknown>, { ok: false }>;
    assert.equal(transient(f(0, 'unreachable')), true);
    assert.equal(transient(f(0, 'stalled')), true);
    assert.equal(transient(f(503, 'busy')), true);
    assert.equal(transient(f(409, 'offset_mismatch')), true);
    assert.equal(transient(f(500, 'internal')), true);
    assert.equal(transient(f(403, 'outside_roots')), false);
    assert.equal(transient(f(413, 'too_large')), false);
    assert.equal(transient(f(507, 'no_space')), false);
    assert.equal(transient(f(400, 'bad_path')), false);
  });
});

describe('manager files: routes and roles', () => {
  it('viewers list and watch but never upload, push, remove or pull; uploads are streamed and bounded', async () => {
    const d = serverDeps();
    const app = buildServer(d);
    await app.ready();
    try {
      const viewer = await tokenHeaders(d.access, 'vera', 'viewer');
      const operator = await tokenHeaders(d.access, 'otto', 'operator');
      const forbidden = [
        ['POST', '/api/v1/files/uploads?name=a'],
        ['POST', '/api/v1/files/pushes'],
        ['POST', '/api/v1/files/remove'],
        ['GET', '/api/v1/nodes/1-1-0/files/content?path=/x'],
      ] as const;
      for (const [method, url] of forbidden) {
        const r = await app.inject({ method, url, headers: viewer, payload: 'x' });
        assert.equal(r.statusCode, 403, `${method} ${url}`);
      }
      for (const url of ['/api/v1/nodes/1-1-0/files?path=/x', '/api/v1/nodes/1-1-0/screen']) {
        const r = await app.inject({ url, headers: viewer });
        assert.equal(r.statusCode, 404, url); // past the access check: no such node
        assert.match(r.json().message, /no node 1-1-0/);
      }
      const body = Buffer.alloc(300_000, 3);
      let r = await app.inject({
        method: 'POST',
        url: '/api/v1/files/uploads?name=fw.bin',
        headers: { ...operator, 'content-type': 'application/octet-stream' },
        payload: body,
      });
      assert.equal(r.statusCode, 201, r.body);
      assert.equal(r.json().upload.sha256, sha(body));
      r = await app.inject({
        method: 'POST',
        url: '/api/v1/files/uploads?name=big',
        headers: { ...operator, 'content-type': 'application/octet-stream' },
        payload: Buffer.alloc((1 << 20) + 1),
      });
      assert.equal(r.statusCode, 413);
      r = await app.inject({
        method: 'POST',
        url: '/api/v1/files/uploads?name=a/b',
        headers: { ...operator, 'content-type': 'application/octet-stream' },
        payload: 'x',
      });
      assert.equal(r.statusCode, 400);
      r = await app.inject({
        method: 'POST',
        url: '/api/v1/files/pushes',
        headers: operator,
        payload: { target: 'all', files: [{ upload: 'nope' }], to: '/srv' },
      });
      assert.equal(r.statusCode, 400);
      assert.match(r.json().message, /no upload nope/);
      r = await app.inject({
        method: 'POST',
        url: '/api/v1/files/pushes',
        headers: operator,
        payload: { target: 'all', files: [{ upload: 'x' }], to: 'relative' },
      });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().field, '/to');
    } finally {
      await app.close();
      d.close();
    }
  });
});
