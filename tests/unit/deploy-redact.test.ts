/**
 * Redaction on the manager (issue 12 "Secrets in clear"): a start whose url carries credentials
 * (`http://user:pass@host/...`) goes to the agent with them, but the API answers, the history,
 * the deployment rows in the SQLite file and the manager's log hold the url without them, even
 * when the agent's reply and message quote it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { DeploymentRecord } from '../../common/api/deploy.js';
import type { DeployRequestData } from '../../common/protocol.js';
import type { AgentClient, DeployOutcome } from '../../manager/agents/client.js';
import { Deployer } from '../../manager/deploy.js';
import { API_PREFIX, buildServer } from '../../manager/server.js';
import { wireEvents } from '../../manager/wiring.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fakeHeartbeatData, heartbeatBody } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

const SECRET = 'hunter2pass';
const URL = `http://deployer:${SECRET}@10.0.0.9:8765/bundles?token=${SECRET}`;

/** An agent that records what it got and echoes the url in its reply and message. */
class EchoAgent implements Pick<AgentClient, 'deploy' | 'progress'> {
  got: DeployRequestData[] = [];
  async deploy(_t: unknown, request: DeployRequestData): Promise<DeployOutcome> {
    this.got.push(request);
    return {
      ok: true,
      reply: { ...request, id: 7, result: 0, message: `fetched ${request.url}/app.tgz` },
    };
  }
  async progress() {
    return { progress: [`downloading ${URL}/app.tgz`] };
  }
}

describe('manager redaction of urls', () => {
  it('keeps credentials only for the request sent to the agent', async () => {
    const d = serverDeps();
    let logged = '';
    const log = pino(
      { level: 'debug' },
      new Writable({
        write(chunk, _e, cb) {
          logged += chunk.toString();
          cb();
        },
      }),
    );
    const agent = new EchoAgent();
    const deployer = new Deployer({ progress_poll_ms: 20 }, d.registry, agent, log);
    wireEvents({
      registry: d.registry,
      deployer,
      store: d.store,
      alerts: d.alerts,
      telemetry: d.telemetry,
      severities: () => ({ node_offline: 'critical', identity_conflict: 'critical', component_failed: 'warning' }),
      log,
    });
    const app = buildServer({ ...d, deployer });
    const headers = await tokenHeaders(d.access);
    await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    let r = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/deployments`,
      headers,
      payload: {
        node: '1-3-0',
        mode: 'start',
        type: 'bar',
        uuid: 'radar-1',
        url: URL,
        file: 'app.tgz',
        require: { cpu: 1, memory: 1024, gpu: 0 },
      },
    });
    assert.equal(r.statusCode, 202, r.body);
    assert.ok(!r.body.includes(SECRET), r.body);
    const id = (r.json() as { deployment: DeploymentRecord }).deployment.id;
    let done: DeploymentRecord | undefined;
    for (let i = 0; i < 100 && done?.result !== 0; i++) {
      await new Promise((res) => setTimeout(res, 20));
      r = await app.inject({ url: `${API_PREFIX}/deployments/${id}`, headers });
      done = (r.json() as { deployment: DeploymentRecord }).deployment;
    }
    assert.equal(done?.result, 0);
    assert.equal(agent.got[0]?.url, URL, 'the agent got the real url');
    assert.ok(!r.body.includes(SECRET), r.body);
    assert.match(done?.request.url ?? '', /^http:\/\/\*\*\*@10\.0\.0\.9:8765\/bundles\?token=\*\*\*$/);
    r = await app.inject({ url: `${API_PREFIX}/history`, headers });
    assert.equal(r.statusCode, 200);
    assert.ok(r.body.includes('radar-1'), 'the history has the deploy');
    assert.ok(!r.body.includes(SECRET), r.body);
    d.store.flush();
    for (const f of [d.database, `${d.database}-wal`]) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(f);
      } catch {
        continue;
      }
      assert.ok(!bytes.includes(SECRET), `${f} holds the password`);
    }
    assert.ok(logged.includes('deploy done'));
    assert.ok(!logged.includes(SECRET), logged);
    await app.close();
    d.close();
  });
});
