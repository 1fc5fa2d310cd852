/**
 * The dashboard's files and the live event stream (manager/routes/dashboard.ts,
 * manager/routes/events.ts, manager/events.ts; docs/dashboard.md): files public with a CSP,
 * gzip-compressed when accepted, 304 on a matching ETag, 404 for anything not built, 503 when the
 * dashboard is not built; GET /api/v1/events behind the login, a full snapshot first, then only
 * what changed, the max_clients bound (503, counted) and a stalled reader dropped (counted).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { NodesEvent } from '../../common/api/events.js';
import { EventHub, type EventSink } from '../../manager/events.js';
import { findDashboardDir } from '../../manager/routes/dashboard.js';
import { buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fleetHeartbeat, fleetResource } from '../../testkit/fleet.js';
import { metric } from '../../testkit/process.js';
import { serverDeps } from '../../testkit/server.js';

const EVENTS = { interval_ms: 100, ping_ms: 60_000, max_clients: 2, max_buffer_bytes: 65_536 };

describe('dashboard files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'muster-dash-'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>muster</title>');
    writeFileSync(path.join(dir, 'app.js'), `console.log(${JSON.stringify('x'.repeat(5000))});`);
    writeFileSync(path.join(dir, 'app.css'), 'body{}');
    writeFileSync(path.join(dir, 'secret.txt'), 'not served');
    mkdirSync(path.join(dir, 'sub'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const build = (over: Partial<{ enabled: boolean; dir: string; console: boolean }> = {}) => {
    const d = serverDeps();
    const app = buildServer({ ...d, dashboard: { enabled: true, dir, console: true, events: EVENTS, ...over } });
    return { d, app };
  };

  it('serves index.html and the assets without a login, with a CSP, gzip and ETags', async () => {
    const { d, app } = build();
    const index = await app.inject({ method: 'GET', url: '/' });
    assert.equal(index.statusCode, 200);
    assert.match(String(index.headers['content-type']), /text\/html/);
    assert.match(String(index.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
    assert.equal(index.headers['cache-control'], 'no-cache');
    const js = await app.inject({ method: 'GET', url: '/assets/app.js', headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(js.statusCode, 200);
    assert.equal(js.headers['content-encoding'], 'gzip');
    assert.ok(js.rawPayload.length < 500);
    assert.match(gunzipSync(js.rawPayload).toString(), /^console\.log/);
    const plain = await app.inject({ method: 'GET', url: '/assets/app.js' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body.length, 'console.log("");'.length + 5000);
    const again = await app.inject({
      method: 'GET',
      url: '/assets/app.js',
      headers: { 'if-none-match': String(js.headers.etag) },
    });
    assert.equal(again.statusCode, 304);
    for (const url of [
      '/assets/secret.txt',
      '/assets/index.html',
      '/assets/..%2Fapp.js',
      '/assets/sub',
      '/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/index.html',
    ]) {
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 404, url);
    }
    await app.close();
    d.close();
  });

  it('answers 503 when not built, and serves nothing when disabled; the API works either way', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'muster-dash-empty-'));
    let { d, app } = build({ dir: empty });
    const r = await app.inject({ method: 'GET', url: '/' });
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /make build/);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/nodes' })).statusCode, 401);
    await app.close();
    d.close();
    ({ d, app } = build({ enabled: false, console: false }));
    assert.equal((await app.inject({ method: 'GET', url: '/' })).statusCode, 404);
    assert.equal((await app.inject({ method: 'GET', url: '/console/status' })).statusCode, 404);
    await app.close();
    d.close();
    rmSync(empty, { recursive: true, force: true });
  });

  it('finds dist/dashboard above a module directory', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'muster-find-'));
    mkdirSync(path.join(root, 'dist', 'dashboard'), { recursive: true });
    mkdirSync(path.join(root, 'manager', 'routes'), { recursive: true });
    assert.equal(findDashboardDir(path.join(root, 'manager', 'routes')), null, 'no index.html: not built');
    writeFileSync(path.join(root, 'dist', 'dashboard', 'index.html'), 'x');
    assert.equal(findDashboardDir(path.join(root, 'manager', 'routes')), path.join(root, 'dist', 'dashboard'));
    rmSync(root, { recursive: true, force: true });
  });
});

/** Reads SSE frames from a fetch body until `until` says stop or `ms` pass. */
async function readEvents(res: Response, until: (events: { name: string; data: unknown }[]) => boolean, ms = 5000) {
  const events: { name: string; data: unknown }[] = [];
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const end = Date.now() + ms;
  while (!until(events) && Date.now() < end) {
    const r = await Promise.race([
      reader.read(),
      new Promise<null>((ok) => setTimeout(() => ok(null), end - Date.now())),
    ]);
    if (!r || r.done) break;
    buf += dec.decode(r.value);
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const name = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (name && data) events.push({ name, data: JSON.parse(data) });
      i = buf.indexOf('\n\n');
    }
  }
  await reader.cancel().catch(() => undefined);
  return events;
}

describe('GET /api/v1/events', () => {
  it('needs a login; sends a full snapshot, then patches of the changed nodes only; max_clients bites with 503', async () => {
    const d = serverDeps();
    const app = buildServer({ ...d, dashboard: { enabled: false, dir: '', console: false, events: EVENTS } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const viewer = await tokenHeaders(d.access, 'vera', 'viewer');
    for (const i of [0, 1]) {
      d.ingest.heartbeat(fleetHeartbeat(i).data);
      d.ingest.resource(fleetResource(i).data);
    }
    assert.equal((await fetch(`${base}/api/v1/events`)).status, 401);

    const c = new AbortController();
    const res = await fetch(`${base}/api/v1/events`, { headers: viewer, signal: c.signal });
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /text\/event-stream/);
    // Change one node after the snapshot: the next nodes event names only it.
    setTimeout(() => d.ingest.resource(fleetResource(1, 7).data), 300);
    const events = await readEvents(res, (ev) => ev.filter((e) => e.name === 'nodes').length >= 2);
    const nodes = events.filter((e) => e.name === 'nodes').map((e) => e.data as NodesEvent);
    assert.equal(nodes[0]!.full, true);
    assert.equal(nodes[0]!.changed.length, 2);
    assert.ok(events.some((e) => e.name === 'alerts'));
    assert.equal(nodes[1]!.full, false);
    assert.equal(nodes[1]!.changed.length, 0);
    assert.deepEqual(
      nodes[1]!.patched.map((n) => n.id),
      [`${fleetHeartbeat(1).data.box_id}-${fleetHeartbeat(1).data.slot_id}-${fleetHeartbeat(1).data.cpu_id}`],
    );
    c.abort();

    // Two streams at most.
    const a1 = new AbortController();
    const a2 = new AbortController();
    await new Promise((r) => setTimeout(r, 100));
    const s1 = await fetch(`${base}/api/v1/events`, { headers: viewer, signal: a1.signal });
    const s2 = await fetch(`${base}/api/v1/events`, { headers: viewer, signal: a2.signal });
    assert.equal(s1.status, 200);
    assert.equal(s2.status, 200);
    const third = await fetch(`${base}/api/v1/events`, { headers: viewer });
    assert.equal(third.status, 503);
    assert.match(((await third.json()) as { message: string }).message, /dashboard\.events\.max_clients/);
    a1.abort();
    a2.abort();
    assert.equal(metric(await d.metrics.metrics(), 'muster_manager_events_refused_total', { reason: 'too_many' }), 1);
    await app.close();
    d.close();
  });

  it('drops a subscriber that does not drain (counted as slow), and stops its timer with none left', () => {
    const d = serverDeps();
    const hub = new EventHub(d.registry, d.alerts, { ...EVENTS, interval_ms: 60_000 }, d.metrics);
    const frames: string[] = [];
    let ended = false;
    const stalled: EventSink = {
      write: (c) => {
        frames.push(c);
        return false;
      },
      writableLength: 1 << 20,
      end: () => {
        ended = true;
      },
    };
    assert.equal(hub.subscribe(stalled), true);
    assert.ok(frames[0]?.startsWith('event: nodes'));
    d.ingest.heartbeat(fleetHeartbeat(3).data);
    hub.refresh(true);
    assert.equal(ended, true);
    assert.equal(hub.size, 0);
    hub.close();
    d.close();
  });
});
