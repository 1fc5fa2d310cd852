/**
 * http.max_json_depth on the manager (common/http.ts, manager/server.ts): a report or API body
 * nested deeper than the bound is refused with 400 naming the key before it is parsed, counted in
 * muster_manager_bodies_too_deep_total (and, for reports, muster_manager_reports_rejected_total
 * {reason="too_deep"}); a normal report still passes; the depth scan itself ignores brackets in
 * strings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonDepthExceeds } from '../../common/http.js';
import { API_PREFIX, buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fakeHeartbeatData, heartbeatBody } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

/** A 1 MB body: half a million '[' then as many ']'. */
const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('jsonDepthExceeds', () => {
  it('counts objects and arrays, not brackets in strings', () => {
    assert.equal(jsonDepthExceeds('{"a":[1,{"b":2}]}', 3), false);
    assert.equal(jsonDepthExceeds('{"a":[1,{"b":2}]}', 2), true);
    assert.equal(jsonDepthExceeds(JSON.stringify({ s: '[[[[[[\\"[[[' }), 1), false);
  });
});

describe('manager http.max_json_depth', () => {
  it('refuses deep report and API bodies with 400 before parsing, counted', async () => {
    const d = serverDeps();
    const app = buildServer(d);
    const headers = await tokenHeaders(d.access);
    let r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    assert.equal(r.statusCode, 200);

    const t0 = performance.now();
    r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      headers: { 'content-type': 'application/json' },
      payload: nested(500_000),
    });
    const ms = performance.now() - t0;
    assert.equal(r.statusCode, 400);
    assert.match(r.json().message, /nested too deep: more than 32 levels \(http\.max_json_depth\)/);
    assert.ok(ms < 1000, `took ${ms} ms`);

    r = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/deployments`,
      headers: { ...headers, 'content-type': 'application/json' },
      payload: `{"node":${nested(40)}}`,
    });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().message, /http\.max_json_depth/);

    r = await app.inject({ url: '/metrics' });
    assert.match(r.body, /muster_manager_bodies_too_deep_total 2/);
    assert.match(r.body, /muster_manager_reports_rejected_total\{url="\/heartbeat",reason="too_deep"\} 1/);
    await app.close();
  });

  it('takes the bound from maxJsonDepth', async () => {
    const d = serverDeps();
    const app = buildServer({ ...d, maxJsonDepth: 2 });
    const r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().message, /more than 2 levels/);
    await app.close();
  });
});
