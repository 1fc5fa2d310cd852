/**
 * The deployment and component routes (manager/routes/deploy.ts) in process, on a real
 * NodeRegistry and Deployer with an in-memory AgentClient (the seam the HTTP client and the
 * coming WebSocket link implement): 202 at once, the record with the agent's reply as sent, 400
 * naming the missing field, 404 for an unknown node, 409 for an offline one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { DeploymentRecord } from '../../common/api/deploy.js';
import { createHttpServer } from '../../common/http.js';
import type { DeployRequestData } from '../../common/protocol.js';
import type { AgentClient, AgentTarget, DeployOutcome } from '../../manager/agents/client.js';
import { Deployer } from '../../manager/deploy.js';
import { NodeRegistry } from '../../manager/registry.js';
import { deployRoutes } from '../../manager/routes/deploy.js';
import { installErrorHandlers } from '../../manager/routes/shared.js';
import { listComponents } from '../../manager/views.js';
import { actAs } from '../../testkit/auth.js';
import { fakeHeartbeatData, fakeResourceData } from '../../testkit/bodies.js';

const log = pino({ level: 'silent' });

/** An agent that answers every deploy with result 0 (and an extension field), with no progress record. */
class MemoryAgent implements Pick<AgentClient, 'deploy' | 'progress'> {
  calls: { target: AgentTarget; request: DeployRequestData }[] = [];
  async deploy(target: AgentTarget, request: DeployRequestData): Promise<DeployOutcome> {
    this.calls.push({ target, request });
    return { ok: true, reply: { ...request, id: 4242, result: 0, message: 'started', x_ext: 'kept' } as never };
  }
  async progress() {
    return null;
  }
}

async function server() {
  const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 });
  registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.5', 1, 3));
  registry.ingestResource(fakeResourceData('10.0.0.5', 1));
  const agent = new MemoryAgent();
  const deployer = new Deployer({ progress_poll_ms: 50 }, registry, agent, log);
  const app = createHttpServer(log, 1 << 20);
  installErrorHandlers(app, { bodyLimit: 1 << 20, log });
  actAs(app, 'ops', 'operator');
  await app.register(deployRoutes, { prefix: '/api/v1', deployer, registry });
  await app.ready();
  return { app, registry, agent, deployer };
}

const START = {
  node: '1-3-0',
  mode: 'start',
  type: 'bar',
  uuid: 'radar-1',
  url: 'http://127.0.0.1:8765',
  file: 'app-1.0.tgz',
  require: { cpu: 1, memory: 33554432, gpu: 0 },
};

describe('deploy routes', () => {
  it('POST /api/v1/deployments answers 202 at once; the record gets the reply as the agent sent it', async () => {
    const { app, agent } = await server();
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      payload: START,
    });
    assert.equal(r.statusCode, 202);
    const d = (r.json() as { deployment: DeploymentRecord }).deployment;
    assert.equal(d.node, '1-3-0');
    assert.equal(d.who, 'ops');
    assert.equal(d.type, 'bar');
    assert.deepEqual(agent.calls[0]?.target, { node: '1-3-0', host_ip: '10.0.0.5', port: 23980 });
    let done: DeploymentRecord | undefined;
    for (let i = 0; i < 50 && done?.result !== 0; i++) {
      await new Promise((res) => setTimeout(res, 20));
      done = ((await app.inject({ url: `/api/v1/deployments/${d.id}` })).json() as { deployment: DeploymentRecord })
        .deployment;
    }
    assert.equal(done?.result, 0);
    assert.equal(done?.message, 'started');
    assert.equal((done?.reply as Record<string, unknown> | undefined)?.x_ext, 'kept');
    assert.deepEqual(done?.request.require, START.require);
    const list = await app.inject({ url: '/api/v1/deployments?node=1-3-0&limit=5' });
    assert.deepEqual(
      (list.json() as { deployments: DeploymentRecord[] }).deployments.map((x) => x.id),
      [d.id],
    );
    await app.close();
  });

  it('a stop takes type and id from the latest report', async () => {
    const { app, agent } = await server();
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      payload: { node: '1-3-0', mode: 'stop', uuid: 'u-10.0.0.5' },
    });
    assert.equal(r.statusCode, 202);
    assert.deepEqual(agent.calls[0]?.request, { mode: 'stop', type: 'docker', uuid: 'u-10.0.0.5', id: 'abc123' });
    await app.close();
  });

  it('400 naming the missing or bad field, 404 for an unknown node or deployment, 409 for an offline node', async () => {
    const { app, registry } = await server();
    const post = (payload: object) => app.inject({ method: 'POST', url: '/api/v1/deployments', payload });
    for (const k of ['type', 'url', 'file', 'require'] as const) {
      const { [k]: _gone, ...rest } = START;
      const r = await post(rest);
      assert.equal(r.statusCode, 400, k);
      assert.deepEqual(r.json(), { error: 'bad_request', field: `/${k}`, message: `/${k} is required for a start` });
    }
    let r = await post({ node: '1-3-0', mode: 'stop' });
    assert.equal((r.json() as { field: string }).field, '/uuid');
    r = await post({ ...START, type: 'vm' });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { field: string }).field, '/type');
    r = await post({ ...START, colour: 'red' });
    assert.equal((r.json() as { field: string }).field, '/colour');
    r = await post({ ...START, node: '9-9-9' });
    assert.equal(r.statusCode, 404);
    assert.equal((r.json() as { error: string }).error, 'not_found');
    r = await post({ node: '1-3-0', mode: 'stop', uuid: 'never-seen' });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { field: string }).field, '/type');
    for (let i = 0; i < 4; i++) registry.endRound();
    r = await post(START);
    assert.equal(r.statusCode, 409);
    assert.equal((r.json() as { error: string }).error, 'node_offline');
    r = await app.inject({ url: '/api/v1/deployments/nope' });
    assert.equal(r.statusCode, 404);
    await app.close();
  });

  it('GET /api/v1/components is every component of the latest reports, as reported', async () => {
    const { app, registry } = await server();
    let r = await app.inject({ url: '/api/v1/components' });
    assert.deepEqual(r.json(), JSON.parse(JSON.stringify({ components: listComponents(registry) })));
    assert.equal((r.json() as { components: { node: string }[] }).components[0]?.node, '1-3-0');
    r = await app.inject({ url: '/api/v1/components?node=2-2-2' });
    assert.deepEqual(r.json(), { components: [] });
    r = await app.inject({ url: '/api/v1/components?node=x' });
    assert.equal(r.statusCode, 400);
    await app.close();
  });
});
