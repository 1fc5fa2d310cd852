/**
 * The lean report path (manager/routes/reports-lean.ts) against the fastify routes it stands in
 * for (manager/routes/reports.ts): the same request, good or bad, sent over real HTTP to a
 * listening server (lean path) and through `inject` to a twin (fastify's path, which `inject`
 * always takes) gets the same status, body, content type and connection handling, and the same
 * counters move (reports ingested and refused by reason, bodies too deep). Also: other methods
 * and urls still reach fastify, a query string is ignored, bodies without a content-length are
 * bounded, keep-alive connections carry several reports, and a report of a registry at
 * registry.max_nodes gets 503.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { buildServer } from '../../manager/server.js';
import { fakeHeartbeatData, fakeResourceData, heartbeatBody, resourceBody } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

type Deps = ReturnType<typeof serverDeps>;
const closers: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** A server on its own deps with the report source check on (require_source_match). */
function twin(bodyLimit: number, maxNodes?: number): { app: FastifyInstance; d: Deps } {
  const d = serverDeps({
    reports: { require_source_match: true },
    ...(maxNodes === undefined ? {} : { maxNodes }),
  });
  const app = buildServer({ ...d, bodyLimit, maxJsonDepth: 8 });
  closers.push(async () => {
    await app.close();
    d.close();
  });
  return { app, d };
}

interface Answer {
  status: number;
  body: string;
  type: string | undefined;
  close: boolean;
}

/** One raw HTTP/1.1 request on a new connection; the answer as the server wrote it. */
function raw(port: number, request: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => {
      text += c;
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(parse(text)));
    sock.write(request);
    // Half-close after the request unless the body is still to come (the caller sends it all).
    sock.end();
  });
}

function parse(text: string): Answer {
  const [head = '', ...rest] = text.split('\r\n\r\n');
  const lines = head.split('\r\n');
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
  }
  return {
    status: Number(lines[0]?.split(' ')[1]),
    body: rest.join('\r\n\r\n'),
    type: headers.get('content-type'),
    close: headers.get('connection') === 'close',
  };
}

const request = (method: string, url: string, body: string, headers: Record<string, string> = {}) =>
  [
    `${method} ${url} HTTP/1.1`,
    'host: 127.0.0.1',
    ...(body === '' && method !== 'POST' ? [] : [`content-length: ${Buffer.byteLength(body)}`]),
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    '',
    body,
  ].join('\r\n');

async function counters(m: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of [
    'muster_manager_reports_ingested_total',
    'muster_manager_reports_rejected_total',
    'muster_manager_bodies_too_deep_total',
    'muster_manager_reports_source_mismatch_total',
    'muster_manager_nodes_refused_total',
  ]) {
    for (const v of (await m.getSingleMetric(name)?.get())?.values ?? [])
      out[`${name}${JSON.stringify(v.labels)}`] = v.value;
  }
  return out;
}

async function listening(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

const hb = (ip: string, slot: number) => JSON.stringify(heartbeatBody(fakeHeartbeatData(ip, 1, slot)));
const res = (ip: string) => JSON.stringify(resourceBody(fakeResourceData(ip, 7)));

describe('lean report path', () => {
  it('answers every case as the fastify routes do, counters included', async () => {
    const limit = 8192;
    const lean = twin(limit);
    const ref = twin(limit);
    const port = await listening(lean.app);
    const badType = JSON.parse(hb('127.0.0.5', 3)) as { data: Record<string, unknown> };
    badType.data.box_id = 'one';
    const missing = JSON.parse(res('127.0.0.5')) as { data: Record<string, unknown> };
    delete missing.data.resource;
    const extra = JSON.parse(hb('127.0.0.5', 3)) as { data: Record<string, unknown> };
    extra.data.surprise = 1;
    const cases: [string, string, string, Record<string, string>?][] = [
      ['POST', '/heartbeat', hb('127.0.0.5', 3)],
      ['POST', '/resource', res('127.0.0.5')],
      ['POST', '/resource?x=1', res('127.0.0.5')],
      ['POST', '/resource', res('127.0.0.99')], // no heartbeat named it: stored as unmatched
      ['POST', '/heartbeat', hb('10.9.9.9', 4)], // host_ip is not the sender
      ['POST', '/heartbeat', JSON.stringify(badType)],
      ['POST', '/resource', JSON.stringify(missing)],
      ['POST', '/heartbeat', JSON.stringify(extra)],
      ['POST', '/heartbeat', '{"api_version":', { 'content-type': 'text/plain' }],
      ['POST', '/heartbeat', ''],
      ['POST', '/resource', 'null'],
      ['POST', '/resource', `${'['.repeat(9)}${']'.repeat(9)}`],
      ['POST', '/resource', `{"a":"${'['.repeat(20)}"}`], // brackets in a string do not count
      ['POST', '/heartbeat', 'x'.repeat(limit + 1)],
      ['GET', '/heartbeat', ''],
      ['POST', '/heartbeat/', hb('127.0.0.5', 3)],
      ['PUT', '/resource', res('127.0.0.5')],
    ];
    for (const [method, url, body, headers] of cases) {
      const got = await raw(port, request(method, url, body, headers));
      const want = await ref.app.inject({
        method: method as 'POST',
        url,
        payload: body,
        headers: { ...(headers ?? {}) },
        remoteAddress: '127.0.0.1',
      });
      const what = `${method} ${url} ${body.slice(0, 60)}`;
      assert.equal(got.status, want.statusCode, what);
      assert.equal(got.body, want.body, what);
      assert.equal(got.type, want.headers['content-type'], what);
      assert.equal(got.close, want.headers.connection === 'close', what);
    }
    assert.deepEqual(await counters(lean.d.metrics), await counters(ref.d.metrics));
    assert.equal(lean.d.registry.nodes.size, 1);
    assert.equal(
      lean.d.registry.boardOf(lean.d.registry.nodes.get('1-3-0') as never)?.resource?.resource.cpu.usage_percent,
      7,
    );
  });

  it('bounds a body without a content-length (chunked) and serves several reports per connection', {
    timeout: 20_000,
  }, async () => {
    const { app, d } = twin(4096);
    const port = await listening(app);
    const chunk = 'x'.repeat(3000);
    const chunked = [
      'POST /resource HTTP/1.1',
      'host: 127.0.0.1',
      'transfer-encoding: chunked',
      '',
      `${chunk.length.toString(16)}\r\n${chunk}\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
    ].join('\r\n');
    const big = await raw(port, chunked);
    assert.equal(big.status, 413);
    assert.deepEqual(JSON.parse(big.body), { error: 'payload_too_large', message: 'body larger than 4096 bytes' });
    assert.ok(big.close);
    // Keep-alive: three reports on one connection, all answered 200 and stored.
    const text = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let got = '';
      sock.setEncoding('latin1');
      sock.on('data', (c: string) => {
        got += c;
        if ((got.match(/HTTP\/1\.1 200/g) ?? []).length === 3) {
          sock.end();
          resolve(got);
        }
      });
      sock.on('error', reject);
      sock.write(request('POST', '/heartbeat', hb('127.0.0.6', 5)));
      sock.write(request('POST', '/heartbeat', hb('127.0.0.7', 6)));
      sock.write(request('POST', '/resource', res('127.0.0.6')));
    });
    assert.doesNotMatch(text, /connection: close/i);
    assert.equal(d.registry.nodes.size, 2);
    assert.ok(d.registry.boardOf(d.registry.nodes.get('1-5-0') as never)?.resource);
  });

  it('503 registry_full beyond registry.max_nodes, as the fastify route answers', async () => {
    const lean = twin(8192, 1);
    const ref = twin(8192, 1);
    const port = await listening(lean.app);
    for (const [ip, slot] of [
      ['127.0.0.5', 3],
      ['127.0.0.6', 4],
    ] as const) {
      const got = await raw(port, request('POST', '/heartbeat', hb(ip, slot)));
      const want = await ref.app.inject({
        method: 'POST',
        url: '/heartbeat',
        payload: hb(ip, slot),
        remoteAddress: '127.0.0.1',
      });
      assert.equal(got.status, want.statusCode);
      assert.equal(got.body, want.body);
    }
    assert.equal(lean.d.registry.nodes.size, 1);
    assert.deepEqual(await counters(lean.d.metrics), await counters(ref.d.metrics));
  });
});
