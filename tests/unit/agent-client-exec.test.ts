/**
 * The manager's HTTP AgentClient exec methods (manager/agents/http.ts; docs/exec.md "Agent
 * commands") against a real fake agent socket, as a hostile or broken peer would answer: a valid
 * exec_status reply is read and typed; a reply over exec.max_reply_bytes is aborted (-3 naming the
 * key, counted too_large); a body that is not the command's reply is -3 (counted not_a_reply); the
 * agent's own refusal (result 6 unauthorized in the deploy-shaped envelope) keeps its result and
 * message; the bearer token is sent; a long poll's time limit is wait_ms plus exec.call_timeout_ms;
 * an agent that does not answer is -2, one that is not there -1.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { MANAGER_RESULT } from '../../common/api/deploy.js';
import { HttpAgentClient } from '../../manager/agents/http.js';
import { freePort } from '../../testkit/process.js';

let answer: (path: string, body: string) => { status?: number; text?: string; hang?: number } = () => ({});
let lastAuth = '';
let server: Server;
let port = 0;

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      lastAuth = String(req.headers.authorization ?? '');
      const a = answer(req.url ?? '', body);
      const send = () => {
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json' });
        res.end(a.text ?? '');
      };
      if (a.hang) setTimeout(send, a.hang);
      else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const metrics = new Registry();
const client = new HttpAgentClient(
  {
    timeout_ms: 1000,
    progress_timeout_ms: 1000,
    max_reply_bytes: 65536,
    exec: { call_timeout_ms: 300, max_reply_bytes: 4096, max_file_bytes: 1024 },
  },
  { tokenFor: (n) => `tok-${n}` },
  metrics,
);
const target = () => ({ node: '1-1-0', host_ip: '127.0.0.1', port });
const refused = async (reason: string) =>
  (await metrics.getSingleMetric('muster_manager_agent_replies_refused_total')?.get())?.values.find(
    (v) => v.labels.reason === reason,
  )?.value ?? 0;
const status = {
  task_id: 't1',
  result: 0,
  message: '',
  state: 'running',
  begin: '2026-01-01T00:00:00+08:00',
  end: null,
  steps: [],
  output: [{ seq: 1, step: 0, stream: 'stdout', at: 1, line: 'hi' }],
  next: 1,
  lines_dropped: 0,
};

test('a valid exec_status reply is read, with the node token, posted to /exec_status in the envelope', async () => {
  let seen = '';
  answer = (path, body) => {
    seen = `${path} ${body}`;
    return { text: JSON.stringify({ api_version: 1, data: status }) };
  };
  const out = await client.execStatus(target(), { task_id: 't1', since: 0, wait_ms: 100 });
  assert.ok(out.ok);
  assert.equal(out.reply.output[0]?.line, 'hi');
  assert.equal(lastAuth, 'Bearer tok-1-1-0');
  assert.equal(seen, '/exec_status {"api_version":1,"data":{"task_id":"t1","since":0,"wait_ms":100}}');
});

test('a reply over exec.max_reply_bytes is aborted and counted', async () => {
  answer = () => ({ text: JSON.stringify({ api_version: 1, data: { ...status, message: 'x'.repeat(10_000) } }) });
  const before = await refused('too_large');
  const out = await client.execStatus(target(), { task_id: 't1' });
  assert.ok(!out.ok);
  assert.equal(out.result, MANAGER_RESULT.BAD_REPLY);
  assert.match(out.message, /exec\.max_reply_bytes/);
  assert.equal(await refused('too_large'), before + 1);
});

test('a body that is not the reply is refused; the agent’s own refusal keeps its result', async () => {
  answer = () => ({ text: JSON.stringify({ api_version: 1, data: { state: 'weird' } }) });
  let out = await client.execStatus(target(), { task_id: 't1' });
  assert.ok(!out.ok);
  assert.equal(out.result, MANAGER_RESULT.BAD_REPLY);
  assert.ok((await refused('not_a_reply')) >= 1);
  answer = () => ({ text: 'not json' });
  out = await client.execStatus(target(), { task_id: 't1' });
  assert.ok(!out.ok && out.result === MANAGER_RESULT.BAD_REPLY);
  answer = () => ({
    status: 401,
    text: JSON.stringify({
      api_version: 1,
      data: { mode: '', type: '', uuid: '', result: 6, message: 'unauthorized: wrong token' },
    }),
  });
  const ex = await client.exec(target(), { task_id: 't1', steps: [{ command_content: 'true' }] });
  assert.deepEqual(ex, { ok: false, result: 6, message: 'unauthorized: wrong token' });
});

test('time limits: a long poll may take wait_ms + call_timeout_ms; beyond is -2; nobody there is -1', async () => {
  answer = () => ({ hang: 500, text: JSON.stringify({ api_version: 1, data: status }) });
  const ok = await client.execStatus(target(), { task_id: 't1', wait_ms: 400 });
  assert.ok(ok.ok, 'a 500 ms answer fits 400 + 300 ms');
  const late = await client.execKill(target(), { task_id: 't1' });
  assert.ok(!late.ok);
  assert.equal(late.result, MANAGER_RESULT.TIMEOUT);
  const gone = await client.exec(
    { node: '1-1-0', host_ip: '127.0.0.1', port: await freePort() },
    { task_id: 't1', steps: [{ command_content: 'true' }] },
  );
  assert.ok(!gone.ok);
  assert.equal(gone.result, MANAGER_RESULT.UNREACHABLE);
});

test('exec_file: the bound grows by the file (base64); command_set replies are typed', async () => {
  const content = Buffer.alloc(1000, 1).toString('base64');
  answer = () => ({
    text: JSON.stringify({
      api_version: 1,
      data: { task_id: 't1', step: 0, result: 0, message: '', content_b64: content },
    }),
  });
  const f = await client.execFile(target(), { task_id: 't1', step: 0 });
  assert.ok(f.ok);
  answer = () => ({
    text: JSON.stringify({ api_version: 1, data: { result: 0, message: '', entries: [{ name: 'x' }] } }),
  });
  const c = await client.commandSet(target(), { action: 'list' });
  assert.ok(!c.ok, 'an entry without its fields is not a command_set reply');
});
