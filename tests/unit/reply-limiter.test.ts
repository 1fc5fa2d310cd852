/**
 * The agent's reply rate limit per destination (agent/link/limiter.ts, docs/configuration.md
 * `report.rate_per_destination`) on a fake clock: the normal rounds never bite, a flood to one
 * destination is held to burst + rate × time, the table is bounded and cannot be reset by naming
 * ever new destinations, and the known manager keeps its bucket whatever the others do.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DestinationLimiter } from '../../agent/link/limiter.js';

const DEFAULTS = { ratePerSec: 5, burst: 20, maxDestinations: 256 }; // config/agent.yaml

function limiter(o: Partial<typeof DEFAULTS> = {}) {
  const clock = { t: 0 };
  const l = new DestinationLimiter({ ...DEFAULTS, ...o, now: () => clock.t });
  return { l, clock };
}

describe('DestinationLimiter', () => {
  it('the normal rounds (heartbeat 2 s, resource 5 s) plus a query every second never bite, nor 400/800 ms test rounds', () => {
    const { l, clock } = limiter();
    // Ten minutes of events merged in time order, 100 ms steps.
    for (let ms = 0; ms <= 600_000; ms += 100) {
      clock.t = ms;
      if (ms % 2000 === 0) assert.equal(l.take('10.0.0.254:3926'), null, `heartbeat at ${ms}`);
      if (ms % 5000 === 1000) assert.equal(l.take('10.0.0.254:3926'), null, `resource at ${ms}`);
      if (ms % 1000 === 500) assert.equal(l.take('10.0.0.254:3926'), null, `muster query at ${ms}`);
    }
    for (let ms = 0; ms <= 600_000; ms += 100) {
      clock.t = 700_000 + ms;
      if (ms % 400 === 0) assert.equal(l.take('10.0.0.253:3926'), null, `fast heartbeat at ${ms}`);
      if (ms % 800 === 200) assert.equal(l.take('10.0.0.253:3926'), null, `fast resource at ${ms}`);
    }
  });

  it('2,000 queries in one second naming one third party: at most burst + rate × 1 s allowed', () => {
    const { l, clock } = limiter();
    let allowed = 0;
    const reasons = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      clock.t = i * 0.5; // 2,000 in 1,000 ms
      const r = l.take('203.0.113.9:80');
      if (r === null) allowed++;
      else reasons.set(r, (reasons.get(r) ?? 0) + 1);
    }
    assert.ok(allowed <= 20 + 5, `allowed ${allowed}`);
    assert.ok(allowed >= 20, `the burst is allowed (${allowed})`);
    assert.equal(reasons.get('rate'), 2000 - allowed);
  });

  it('the table is bounded; a full table refuses new destinations until a bucket is full again', () => {
    const { l, clock } = limiter({ maxDestinations: 4 });
    for (let i = 0; i < 4; i++) assert.equal(l.take(`198.51.100.${i}:80`), null);
    assert.equal(l.size, 4);
    assert.equal(l.take('198.51.100.99:80'), 'destinations', 'no bucket is full again yet');
    assert.equal(l.size, 4);
    // 0.2 s later every bucket has refilled its one token: the least recently used one is forgotten.
    clock.t = 200;
    assert.equal(l.take('198.51.100.99:80'), null);
    assert.equal(l.size, 4);
  });

  it('naming ever new destinations cannot reset a bucket that is still refilling', () => {
    const { l, clock } = limiter({ maxDestinations: 8 });
    let toVictim = 0;
    for (let i = 0; i < 10_000; i++) {
      clock.t = i * 0.1; // 10,000 queries in 1 s, every other one naming the victim
      if (i % 2 === 0) {
        if (l.take('203.0.113.9:80') === null) toVictim++;
      } else l.take(`198.51.${(i >> 8) & 255}.${i & 255}:80`);
      assert.ok(l.size <= 8);
    }
    assert.ok(toVictim <= 25, `victim got ${toVictim}`);
  });

  it('the known manager keeps its own bucket while floods fill the table', () => {
    const { l, clock } = limiter({ maxDestinations: 4 });
    l.setKnown('10.0.0.254:3926');
    assert.equal(l.knownDestination, '10.0.0.254:3926');
    let managerRefused = 0;
    for (let i = 0; i < 20_000; i++) {
      clock.t = i; // 20 s, a query per ms naming new destinations
      l.take(`198.51.100.${i % 200}:${1 + (i % 7)}`);
      if (i % 2000 === 0 && l.take('10.0.0.254:3926') !== null) managerRefused++;
    }
    assert.equal(managerRefused, 0);
    assert.ok(l.size <= 4);
    // A previous known manager becomes an ordinary destination.
    l.setKnown('10.0.0.253:3926');
    assert.equal(l.knownDestination, '10.0.0.253:3926');
  });

  it('switching the known manager back and forth never hands out a fresh burst', () => {
    const { l, clock } = limiter({ maxDestinations: 4 });
    let allowed = 0;
    for (let i = 0; i < 1000; i++) {
      clock.t = i; // one second
      l.setKnown(i % 2 ? '10.0.0.254:3926' : '203.0.113.9:80');
      if (l.take('203.0.113.9:80') === null) allowed++;
    }
    assert.ok(allowed <= 25, `allowed ${allowed}`);
    assert.ok(l.size <= 4);
  });
});
