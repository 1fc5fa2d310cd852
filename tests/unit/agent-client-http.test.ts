/**
 * The manager's HTTP AgentClient against a real fake agent socket: a normal deploy reply is read;
 * a 256 MB reply (chunked, no length) and one declaring a huge content-length are refused at
 * deploy.max_reply_bytes with result -3 naming the key, read in chunks (the manager's RSS does not
 * grow with the reply, the fake agent's writes stop early) and counted in
 * muster_manager_agent_replies_refused_total{reason}; a huge progress reply is no progress.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { MANAGER_RESULT } from '../../common/api/deploy.js';
import type { DeployRequestData } from '../../common/protocol.js';
import { HttpAgentClient } from '../../manager/agents/http.js';

const MAX = 64 * 1024;
const HUGE = 256 * 1024 * 1024;
const request: DeployRequestData = { mode: 'start', type: 'docker', uuid: 'u-1', url: 'reg:5000', file: 'img' };

let mode: 'ok' | 'huge' | 'declared' = 'ok';
/** Bytes the fake agent managed to write of its last huge reply. */
let written = 0;

/** Writes `total` bytes of '[' in 1 MiB chunks, honouring backpressure, until the client goes away. */
function flood(res: ServerResponse, total: number): void {
  const chunk = Buffer.alloc(1024 * 1024, '[');
  written = 0;
  const pump = (): void => {
    while (written < total && !res.destroyed) {
      written += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  res.on('error', () => {});
  pump();
}

let server: Server;
let port = 0;
before(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (mode === 'ok') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ api_version: 1, data: { ...request, result: 0, message: 'started' } }));
      } else if (mode === 'huge') {
        res.writeHead(200, { 'content-type': 'application/json' });
        flood(res, HUGE);
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(HUGE) });
        flood(res, HUGE);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

function client(metrics: Registry): HttpAgentClient {
  return new HttpAgentClient(
    { timeout_ms: 30_000, progress_timeout_ms: 30_000, max_reply_bytes: MAX },
    { tokenFor: () => 'tok' },
    metrics,
  );
}

async function refusedCount(metrics: Registry, reason: string): Promise<number> {
  const m = await metrics.getSingleMetric('muster_manager_agent_replies_refused_total')?.get();
  return m?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

test('a deploy reply within the bound is read and checked', async () => {
  mode = 'ok';
  const metrics = new Registry();
  const out = await client(metrics).deploy({ node: '1-1-0', host_ip: '127.0.0.1', port }, request);
  assert.equal(out.ok, true);
  assert.equal(await refusedCount(metrics, 'too_large'), 0);
});

test('a 256 MB chunked deploy reply is aborted at deploy.max_reply_bytes, memory flat', async () => {
  mode = 'huge';
  const metrics = new Registry();
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const out = await client(metrics).deploy({ node: '1-1-0', host_ip: '127.0.0.1', port }, request);
  const grown = process.memoryUsage().rss - rss0;
  assert.equal(out.ok, false);
  assert.ok(!out.ok);
  assert.equal(out.result, MANAGER_RESULT.BAD_REPLY);
  assert.match(out.message, /deploy\.max_reply_bytes/);
  assert.equal(await refusedCount(metrics, 'too_large'), 1);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(written < 64 * 1024 * 1024, `the fake agent wrote ${written} bytes before the manager hung up`);
  assert.ok(grown < 48 * 1024 * 1024, `RSS grew by ${grown} bytes`);
});

test('a declared content-length over the bound is refused before reading', async () => {
  mode = 'declared';
  const metrics = new Registry();
  const out = await client(metrics).deploy({ node: '1-1-0', host_ip: '127.0.0.1', port }, request);
  assert.ok(!out.ok);
  assert.equal(out.result, MANAGER_RESULT.BAD_REPLY);
  assert.match(out.message, new RegExp(`over ${MAX} bytes`));
  assert.equal(await refusedCount(metrics, 'too_large'), 1);
});

test('a huge progress reply is no progress, counted', async () => {
  mode = 'huge';
  const metrics = new Registry();
  const out = await client(metrics).progress({ node: '1-1-0', host_ip: '127.0.0.1', port }, 'u-1');
  assert.equal(out, null);
  assert.equal(await refusedCount(metrics, 'too_large'), 1);
});
