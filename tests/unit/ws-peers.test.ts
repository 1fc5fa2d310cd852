/**
 * The connection bounds the node link and the SSH relay share (manager/ws-peers.ts): the
 * message-rate token bucket and the ping round. The hubs' own tests (relay-hub, link e2e) drive
 * them over real sockets; these pin the arithmetic.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { MessageBucket, type Pinged, pingRound } from '../../manager/ws-peers.js';

describe('MessageBucket', () => {
  it('allows a burst of twice the rate, then refills at the rate', () => {
    let now = 1_000_000;
    const b = new MessageBucket(10, () => now);
    let taken = 0;
    while (b.take()) taken++;
    assert.equal(taken, 20, 'a full bucket holds 2 × rate');
    assert.equal(b.take(), false);
    now += 100; // 0.1 s at 10/s: one token
    assert.equal(b.take(), true);
    assert.equal(b.take(), false);
    now += 60_000; // a long pause refills only up to the burst
    taken = 0;
    while (b.take()) taken++;
    assert.equal(taken, 20);
  });

  it('holds a steady sender at the rate', () => {
    let now = 0;
    const b = new MessageBucket(5, () => now);
    let ok = 0;
    // 50 messages a second for 10 s against a rate of 5: the burst, then 5 a second.
    for (let i = 0; i < 500; i++) {
      now += 20;
      if (b.take()) ok++;
    }
    assert.ok(ok >= 10 + 49 && ok <= 10 + 51, `allowed ${ok}`);
  });
});

describe('pingRound', () => {
  const peer = () => {
    const calls: string[] = [];
    const p: Pinged = {
      alive: true,
      ws: { ping: () => calls.push('ping'), terminate: () => calls.push('terminate') } as unknown as WebSocket,
    };
    return { p, calls };
  };

  it('pings a peer that answered, terminates one that did not', () => {
    const a = peer();
    const b = peer();
    let dead = 0;
    pingRound([a.p, b.p], () => dead++);
    assert.deepEqual(a.calls, ['ping']);
    assert.equal(a.p.alive, false, 'waiting for its pong');
    a.p.alive = true; // its pong came
    pingRound([a.p, b.p], () => dead++);
    assert.deepEqual(a.calls, ['ping', 'ping']);
    assert.deepEqual(b.calls, ['ping', 'terminate']);
    assert.equal(dead, 1);
  });
});
