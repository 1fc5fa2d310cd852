/**
 * GET /api/v1/nodes?target= (manager/routes/nodes.ts): the nodes a target selects, for the
 * dashboard's preview of a task's or a push's boards (docs/dashboard.md "Exec"); a bad target is 400.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fleetHeartbeat } from '../../testkit/fleet.js';
import { serverDeps } from '../../testkit/server.js';

describe('GET /api/v1/nodes?target=', () => {
  let d: ReturnType<typeof serverDeps>;
  let app: FastifyInstance;
  let viewer: { authorization: string };
  before(async () => {
    d = serverDeps();
    app = buildServer(d);
    await app.ready();
    viewer = await tokenHeaders(d.access, 'vera', 'viewer');
    for (const i of [0, 1, 2]) assert.equal(d.ingest.heartbeat(fleetHeartbeat(i).data), null);
  });
  after(async () => {
    await app.close();
    d.close();
  });
  const list = (q: string) => app.inject({ url: `/api/v1/nodes${q}`, headers: viewer });

  it('keeps the selected nodes; no target keeps all; a bad target is 400', async () => {
    const ids = [...d.registry.nodes.keys()].sort();
    assert.equal((await list('')).json().nodes.length, 3);
    const one = await list(`?target=${encodeURIComponent(ids[1]!)}`);
    assert.deepEqual(
      one.json().nodes.map((n: { id: string }) => n.id),
      [ids[1]],
    );
    const two = await list(`?target=${encodeURIComponent(`${ids[0]},${ids[2]}`)}`);
    assert.equal(two.json().nodes.length, 2);
    assert.deepEqual((await list('?target=9-9-9')).json().nodes, []);
    assert.equal((await list('?target=all')).json().nodes.length, 3);
    const bad = await list(`?target=${encodeURIComponent('box=')}`);
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, '/target');
    assert.equal((await list(`?target=${'x'.repeat(5000)}`)).statusCode, 400);
    assert.equal((await list('?other=1')).statusCode, 400);
    assert.equal((await app.inject({ url: '/api/v1/nodes?target=all' })).statusCode, 401);
  });
});
