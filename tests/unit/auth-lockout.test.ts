/**
 * The failed-login limiter (manager/auth/lockout.ts, docs/operations.md "Users and access") on a
 * fake clock: an address locked after its failures with a doubling backoff capped at max_ms; a
 * user locked only for the addresses that failed for it (a flood from one address never blocks
 * the user from another); locks end, idle entries are forgotten, a correct login clears them;
 * memory stays bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Lockout, type LockoutConfig } from '../../manager/auth/lockout.js';

const cfg: LockoutConfig = { address_failures: 3, user_failures: 2, base_ms: 1000, max_ms: 8000, window_ms: 60_000 };

function clocked(c = cfg, maxEntries?: number) {
  let now = 1_000_000;
  const l = new Lockout(c, () => now, maxEntries);
  return { l, tick: (ms: number) => (now += ms) };
}

describe('lockout', () => {
  it('locks an address after address_failures, doubling up to max_ms, and releases', () => {
    const { l, tick } = clocked({ ...cfg, user_failures: 1000 });
    for (let i = 0; i < 2; i++) {
      assert.equal(l.check('10.0.0.9', `u${i}`), null);
      l.fail('10.0.0.9', `u${i}`);
    }
    assert.equal(l.check('10.0.0.9', 'x'), null);
    l.fail('10.0.0.9', 'x'); // third: locked 1 s
    assert.deepEqual(l.check('10.0.0.9', 'anyone'), { scope: 'address', retryAfterMs: 1000 });
    assert.equal(l.check('10.0.0.8', 'anyone'), null, 'another address is not locked');
    tick(1000);
    assert.equal(l.check('10.0.0.9', 'x'), null, 'released after base_ms');
    l.fail('10.0.0.9', 'x');
    assert.equal(l.check('10.0.0.9', 'x')?.retryAfterMs, 2000);
    tick(2000);
    l.fail('10.0.0.9', 'x');
    assert.equal(l.check('10.0.0.9', 'x')?.retryAfterMs, 4000);
    tick(4000);
    l.fail('10.0.0.9', 'x');
    l.fail('10.0.0.9', 'x');
    l.fail('10.0.0.9', 'x');
    assert.equal(l.check('10.0.0.9', 'x')?.retryAfterMs, 8000, 'capped at max_ms');
    tick(8000);
    assert.equal(l.check('10.0.0.9', 'x'), null, 'never locked for longer than max_ms');
  });

  it('a user lock blocks only the addresses that failed for it: the admin still logs in from elsewhere', () => {
    const { l, tick } = clocked({ ...cfg, address_failures: 1000 });
    l.fail('10.0.0.66', 'admin');
    l.fail('10.0.0.66', 'admin');
    for (let i = 0; i < 50; i++) l.fail('10.0.0.66', 'admin'); // a flood from one address
    assert.equal(l.check('10.0.0.66', 'admin')?.scope, 'user');
    assert.equal(l.check('10.0.0.1', 'admin'), null, 'the admin from another address is not blocked');
    assert.equal(
      l.check('10.0.0.66', 'bob'),
      null,
      'another user from the flooding address is not blocked by the user lock',
    );
    assert.ok((l.check('10.0.0.66', 'admin')?.retryAfterMs ?? 0) <= cfg.max_ms);
    // The admin logs in from 10.0.0.1: the user's entry is cleared for every address.
    l.succeed('10.0.0.1', 'admin');
    assert.equal(l.check('10.0.0.66', 'admin'), null);
    tick(1);
  });

  it('a second address that fails joins the user lock; a distributed guesser gets one try per fresh address', () => {
    const { l } = clocked({ ...cfg, address_failures: 1000 });
    l.fail('a', 'admin');
    l.fail('b', 'admin');
    assert.equal(l.check('a', 'admin')?.scope, 'user');
    assert.equal(l.check('b', 'admin')?.scope, 'user');
    assert.equal(l.check('c', 'admin'), null);
    l.fail('c', 'admin');
    assert.equal(l.check('c', 'admin')?.scope, 'user');
  });

  it('failures older than window_ms are forgotten: the backoff starts again', () => {
    const { l, tick } = clocked();
    l.fail('a', 'u');
    l.fail('a', 'v');
    tick(cfg.window_ms + 1);
    l.fail('a', 'w');
    assert.equal(l.check('a', 'z'), null, 'two old failures forgotten, one new: not locked');
    assert.deepEqual(l.size, { addresses: 1, users: 1 });
  });

  it('a correct login clears its address too', () => {
    const { l } = clocked();
    l.fail('a', 'u');
    l.fail('a', 'v');
    l.succeed('a', 'u');
    l.fail('a', 'w');
    assert.equal(l.check('a', 'z'), null);
  });

  it('keeps at most max_entries of each kind, dropping the least recently failed', () => {
    const { l } = clocked(cfg, 100);
    for (let i = 0; i < 1000; i++) l.fail(`10.0.${i >> 8}.${i & 255}`, `user${i}`);
    assert.deepEqual(l.size, { addresses: 100, users: 100 });
  });
});
