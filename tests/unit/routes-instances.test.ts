/**
 * The instance routes and placed deploys on the real server (docs/scheduling.md, docs/operations.md
 * "REST API"): roles (operator applies, stops and removes; viewer reads), bad and hostile specs
 * refused with 400 naming the field, 404s, the plan, the history, and POST /deployments without a
 * node answering 409 `placement_failed` with the explanation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceSpec } from '../../common/api/instances.js';
import { buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { heartbeatData, resourceData } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

const SPEC: InstanceSpec = {
  instance_id: 'radar-1',
  groups: {
    track: {
      count: 2,
      type: 'bar',
      url: 'http://files/b',
      file: 'track-1.bar',
      require: { cpu: 1, memory: 67108864, gpu: 0 },
      constraints: ['board_type = GPU'],
      distinct: 'node',
    },
  },
};

async function server() {
  const d = serverDeps();
  for (const slot of [1, 2]) {
    const ip = `10.0.0.${slot}`;
    d.registry.ingestHeartbeat(heartbeatData({ box_id: 1, slot_id: slot, host_ip: ip, board_type: 'CPU' }));
    d.registry.ingestResource(resourceData({ host_ip: ip, cpu: { core_count: 4, core_allocated: 0 } }));
  }
  const app = buildServer(d);
  await app.ready();
  const viewer = await tokenHeaders(d.access, 'vic', 'viewer');
  const operator = await tokenHeaders(d.access, 'olga', 'operator');
  return {
    d,
    app,
    viewer,
    operator,
    close: async () => {
      d.instances.stop();
      await app.close();
      d.close();
    },
  };
}

describe('instance routes', () => {
  it('operator applies, plans, stops and removes; viewer reads and is refused the rest', async () => {
    const { app, viewer, operator, close } = await server();
    const url = '/api/v1/instances/radar-1';
    let r = await app.inject({ method: 'PUT', url, headers: viewer, payload: SPEC });
    assert.equal(r.statusCode, 403);
    r = await app.inject({ method: 'POST', url: `${url}/plan`, headers: operator, payload: SPEC });
    assert.equal(r.statusCode, 200);
    const plan = r.json().plan;
    assert.equal(plan.changed, true);
    assert.deepEqual(
      plan.steps.map((s: { action: string }) => s.action),
      ['create', 'start', 'start'],
    );
    assert.match(plan.steps[1].message, /cannot be placed: 2 nodes: 2 filtered by board_type = GPU/);
    r = await app.inject({ method: 'PUT', url, headers: operator, payload: SPEC });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().instance.version, 1);
    assert.match(r.json().instance.who, /^olga\//);
    r = await app.inject({ method: 'PUT', url, headers: operator, payload: SPEC });
    assert.equal(r.json().instance.version, 1, 'the same spec again: unchanged');
    assert.equal(r.json().plan.changed, false);
    r = await app.inject({ url: '/api/v1/instances', headers: viewer });
    assert.deepEqual(
      r.json().instances.map((i: { instance_id: string }) => i.instance_id),
      ['radar-1'],
    );
    r = await app.inject({ url, headers: viewer });
    assert.equal(r.json().instance.groups.track.count, 2);
    r = await app.inject({ url: `${url}/history`, headers: viewer });
    const actions = r.json().events.map((e: { action: string }) => e.action);
    assert.ok(actions.includes('apply') && actions.includes('placement-failed'), actions.join(','));
    r = await app.inject({ method: 'POST', url: `${url}/stop`, headers: viewer, payload: {} });
    assert.equal(r.statusCode, 403);
    r = await app.inject({ method: 'POST', url: `${url}/stop`, headers: operator, payload: {} });
    assert.equal(r.json().instance.status, 'stopped');
    r = await app.inject({ method: 'DELETE', url, headers: viewer });
    assert.equal(r.statusCode, 403);
    r = await app.inject({ method: 'DELETE', url, headers: operator });
    assert.equal(r.statusCode, 202);
    r = await app.inject({ url, headers: viewer });
    assert.equal(r.statusCode, 404, 'nothing ran: forgotten at once');
    r = await app.inject({ url: `${url}/history`, headers: viewer });
    assert.equal(r.statusCode, 200, 'its history stays');
    await close();
  });

  it('bad and hostile specs get 400 naming the field; unknown instances 404', async () => {
    const { app, operator, viewer, close } = await server();
    const put = (id: string, payload: unknown) =>
      app.inject({ method: 'PUT', url: `/api/v1/instances/${id}`, headers: operator, payload: payload as object });
    const g = SPEC.groups.track as InstanceSpec['groups'][string];
    const cases: [string, unknown, RegExp][] = [
      ['radar-1', { ...SPEC, instance_id: 'other' }, /differs from the path/],
      ['radar-1', { ...SPEC, extra: 1 }, /\/extra is not a known key/],
      ['radar-1', { ...SPEC, groups: {} }, /fewer than 1|minProperties|must NOT have fewer/],
      ['radar-1', { ...SPEC, groups: { track: { ...g, count: 100000 } } }, /count/],
      [
        'radar-1',
        {
          ...SPEC,
          groups: {
            track: { ...g, count: 200 },
            t2: { ...g, count: 200 },
            t3: { ...g, count: 200 },
            t4: { ...g, count: 200 },
            t5: { ...g, count: 250 },
            t6: { ...g, count: 250 },
          },
        },
        /instances.max_components/,
      ],
      ['radar-1', { ...SPEC, groups: { track: { ...g, constraints: ['colour = red'] } } }, /unknown attribute/],
      ['radar-1', { ...SPEC, groups: { track: { ...g, constraints: ['hostname =~ (a+)+$'] } } }, /nests quantifiers/],
      ['radar-1', { ...SPEC, groups: { 'bad name!': g } }, /groups|pattern|property/],
      ['radar-1', { ...SPEC, groups: { track: { ...g, require: { cpu: -1, memory: 1, gpu: 0 } } } }, /cpu/],
      ['radar-1', { ...SPEC, groups: { track: { ...g, restart: { attempts: 1, surprise: true } } } }, /surprise/],
    ];
    for (const [id, body, re] of cases) {
      const r = await put(id, body);
      assert.equal(r.statusCode, 400, `${JSON.stringify(body).slice(0, 80)} → ${r.body}`);
      assert.match(`${r.json().field ?? ''} ${r.json().message}`, re, r.body);
    }
    let r = await put('../etc', SPEC);
    assert.ok([400, 404].includes(r.statusCode));
    r = await put('x'.repeat(49), { ...SPEC, instance_id: 'x'.repeat(49) });
    assert.equal(r.statusCode, 400);
    for (const url of ['/api/v1/instances/nope', '/api/v1/instances/nope/history']) {
      r = await app.inject({ url, headers: viewer });
      assert.equal(r.statusCode, 404, url);
    }
    r = await app.inject({ method: 'POST', url: '/api/v1/instances/nope/stop', headers: operator, payload: {} });
    assert.equal(r.statusCode, 404);
    r = await app.inject({ url: '/api/v1/instances/radar-1/history?limit=0', headers: viewer });
    assert.equal(r.statusCode, 400);
    await close();
  });
});

describe('POST /api/v1/deployments without a node', () => {
  it('places it, or answers 409 placement_failed with the explanation; bad constraints 400', async () => {
    const { app, operator, close } = await server();
    const start = {
      mode: 'start',
      type: 'bar',
      url: 'http://f/b',
      file: 'a.bar',
      require: { cpu: 1, memory: 1024, gpu: 0 },
    };
    let r = await app.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      headers: operator,
      payload: { ...start, constraints: ['board_type = GPU'] },
    });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error, 'placement_failed');
    assert.equal(r.json().message, 'no node fits: 2 nodes: 2 filtered by board_type = GPU');
    r = await app.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      headers: operator,
      payload: { ...start, constraints: ['slot = 2'] },
    });
    assert.equal(r.statusCode, 202);
    assert.equal(r.json().deployment.node, '1-2-0');
    assert.equal(r.json().deployment.placement.feasible, 1);
    r = await app.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      headers: operator,
      payload: { ...start, constraints: ['slot ~ 2'] },
    });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().field, '/constraints');
    r = await app.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      headers: operator,
      payload: { ...start, node: '1-1-0', constraints: ['slot = 2'] },
    });
    assert.equal(r.statusCode, 400);
    r = await app.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      headers: operator,
      payload: { mode: 'stop', uuid: 'x' },
    });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().field, '/node');
    await close();
  });
});
