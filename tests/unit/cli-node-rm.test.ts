/**
 * `muster node rm <id>` in process against a real manager server on a socket: a bad id exits 2
 * before calling, an admin token removes the node (DELETE /api/v1/nodes/:id) and prints what was
 * resolved, an operator token is refused.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it, mock } from 'node:test';
import { CliError } from '../../cli/client.js';
import { program } from '../../cli/main.js';
import { buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fakeHeartbeatData, heartbeatBody } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

/** Runs `muster <args>` in this process with MUSTER_MANAGER_URL and MUSTER_TOKEN; returns the exit code and output. */
async function muster(args: string[], manager: string, token: string): Promise<{ code: number; out: string }> {
  let out = '';
  const log = mock.method(console, 'log', (...a: unknown[]) => {
    out += `${a.join(' ')}\n`;
  });
  const saved = { ...process.env };
  Object.assign(process.env, { MUSTER_MANAGER_URL: manager, MUSTER_CLI_CONFIG: '/nonexistent', MUSTER_TOKEN: token });
  try {
    await program().parseAsync(['node', 'muster', ...args]);
    return { code: 0, out };
  } catch (err) {
    if (err instanceof CliError) return { code: err.exitCode, out: err.message };
    throw err;
  } finally {
    log.mock.restore();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

describe('muster node rm', () => {
  it('checks the id, removes as admin, is refused as operator', async () => {
    const d = serverDeps();
    const app = buildServer(d);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const admin = (await tokenHeaders(d.access, 'root', 'admin')).authorization.replace(/^Bearer /, '');
    const operator = (await tokenHeaders(d.access, 'op', 'operator')).authorization.replace(/^Bearer /, '');
    const r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    assert.equal(r.statusCode, 200);

    let run = await muster(['node', 'rm', 'x!'], base, admin);
    assert.equal(run.code, 2);
    assert.match(run.out, /expected box-slot-cpu/);
    run = await muster(['node', 'rm', '1-3-0'], base, operator);
    assert.notEqual(run.code, 0);
    assert.equal(d.registry.nodes.has('1-3-0'), true);
    run = await muster(['node', 'rm', '1-3-0'], base, admin);
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /node 1-3-0 removed; 0 open alert\(s\) resolved/);
    assert.equal(d.registry.nodes.has('1-3-0'), false);
    run = await muster(['node', 'rm', '1-3-0'], base, admin);
    assert.notEqual(run.code, 0);
    await app.close();
    d.close();
  });
});
