/**
 * parseQuery (agent/link/listener.ts): what the agent accepts as a multicast query
 * (docs/protocol.md "1. Query (manager查询)") and why it refuses everything else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseQuery, type RejectReason } from '../../agent/link/listener.js';
import { MAX_QUERY_BYTES } from '../../common/constants.js';

const good = { api_version: 1, data: { manager_ip: '192.168.10.254', manager_port: 3926, url: '/heartbeat' } };
const withData = (patch: Record<string, unknown>) => ({ ...good, data: { ...good.data, ...patch } });
const buf = (doc: unknown) => Buffer.from(JSON.stringify(doc));

function rejects(input: Buffer, reason: RejectReason, detail?: RegExp): void {
  const r = parseQuery(input);
  assert.equal(r.ok, false, `accepted ${input.toString().slice(0, 200)}`);
  if (r.ok) return;
  assert.equal(r.reason, reason, r.detail);
  assert.ok(r.detail.length > 0);
  if (detail) assert.match(r.detail, detail);
}

describe('parseQuery accepts', () => {
  it('the spec query for each url', () => {
    for (const url of ['/heartbeat', '/resource']) {
      const r = parseQuery(buf(withData({ url })));
      assert.ok(r.ok);
      assert.deepEqual(r.query, withData({ url }));
    }
  });

  it('ports 1 and 65535', () => {
    assert.ok(parseQuery(buf(withData({ manager_port: 1 }))).ok);
    assert.ok(parseQuery(buf(withData({ manager_port: 65535 }))).ok);
  });

  it("muster's optional jitter_ms extension, and fields it does not know", () => {
    const r = parseQuery(buf({ ...withData({ jitter_ms: 250, future: 'x' }), extra: true }));
    assert.ok(r.ok);
    assert.equal(r.query.data.jitter_ms, 250);
  });

  it('whitespace and pretty-printing, as in the spec text', () => {
    assert.ok(parseQuery(Buffer.from(JSON.stringify(good, null, 4))).ok);
  });

  it(`a datagram of exactly ${MAX_QUERY_BYTES} bytes`, () => {
    const text = JSON.stringify(good);
    const b = Buffer.from(text + ' '.repeat(MAX_QUERY_BYTES - text.length));
    assert.equal(b.length, MAX_QUERY_BYTES);
    assert.ok(parseQuery(b).ok);
  });
});

describe('parseQuery refuses, with the reason', () => {
  it('oversize: more than MAX_QUERY_BYTES, even when otherwise valid', () => {
    const text = JSON.stringify(good);
    rejects(Buffer.from(text + ' '.repeat(MAX_QUERY_BYTES + 1 - text.length)), 'oversize', /4097 bytes/);
    rejects(Buffer.alloc(65_000, 'x'), 'oversize');
  });

  it('json: not JSON', () => {
    rejects(Buffer.from('{"api_version": 1, "data": '), 'json');
    rejects(Buffer.from('hello'), 'json');
    rejects(Buffer.alloc(0), 'json');
    rejects(Buffer.from([0xff, 0xfe, 0x00]), 'json');
  });

  it('api_version: not 1', () => {
    rejects(buf({ ...good, api_version: 2 }), 'api_version', /\/api_version/);
    rejects(buf({ ...good, api_version: '1' }), 'api_version');
    rejects(buf({ ...good, api_version: 1.5 }), 'api_version');
    rejects(buf({ data: good.data }), 'api_version', /required/);
  });

  it('url: not /heartbeat or /resource, or both at once', () => {
    rejects(buf(withData({ url: '/foo' })), 'url', /\/data\/url/);
    rejects(buf(withData({ url: '/heartbeat,/resource' })), 'url');
    rejects(buf(withData({ url: ['/heartbeat', '/resource'] })), 'url');
    rejects(buf(withData({ url: 'heartbeat' })), 'url');
    rejects(buf({ api_version: 1, data: { manager_ip: '192.168.10.254', manager_port: 3926 } }), 'url', /required/);
  });

  it('manager_ip: not dotted-decimal IPv4', () => {
    for (const ip of ['300.1.2.3', 'localhost', '192.168.10', '::1', '', 3232238334])
      rejects(buf(withData({ manager_ip: ip })), 'manager_ip', /\/data\/manager_ip/);
    rejects(buf({ api_version: 1, data: { manager_port: 3926, url: '/heartbeat' } }), 'manager_ip');
  });

  it('manager_port: not an integer in 1..65535', () => {
    for (const port of [0, 70000, -1, 3926.5, '3926', null])
      rejects(buf(withData({ manager_port: port })), 'manager_port', /\/data\/manager_port/);
    rejects(buf({ api_version: 1, data: { manager_ip: '192.168.10.254', url: '/heartbeat' } }), 'manager_port');
  });

  it('schema: anything else wrong with the shape', () => {
    rejects(buf({ api_version: 1 }), 'schema', /\/data/);
    rejects(buf({ api_version: 1, data: 'x' }), 'schema');
    rejects(buf([good]), 'schema');
    rejects(buf(null), 'schema');
    rejects(buf(42), 'schema');
    rejects(buf(withData({ jitter_ms: -1 })), 'schema', /jitter_ms/);
    rejects(buf(withData({ jitter_ms: 60_001 })), 'schema', /jitter_ms/);
  });
});

it('manager_ip that cannot be a manager: unspecified, multicast, broadcast, class E', () => {
  for (const ip of ['0.0.0.0', '239.192.168.80', '224.0.0.1', '255.255.255.255', '240.0.0.1']) {
    const r = parseQuery(
      Buffer.from(JSON.stringify({ api_version: 1, data: { manager_ip: ip, manager_port: 3926, url: '/heartbeat' } })),
    );
    assert.equal(r.ok, false, ip);
    if (!r.ok) assert.equal(r.reason, 'manager_ip', ip);
  }
});
