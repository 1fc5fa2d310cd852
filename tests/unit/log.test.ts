/**
 * RateLimitedLog (common/log.ts): once per key per interval, bounded in keys (least recently
 * logged forgotten first, never a wipe) and in lines per interval over all keys.
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import type { Logger } from '../../common/log.js';
import { RateLimitedLog } from '../../common/log.js';

function recorder(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: { warn: (f: Record<string, unknown>) => lines.push(f) } as unknown as Logger, lines };
}

describe('RateLimitedLog', () => {
  it('logs a key once per interval, then says how many were suppressed', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const { log, lines } = recorder();
      const rl = new RateLimitedLog(log, 10_000);
      for (let i = 0; i < 5; i++) rl.warn('a', { i }, 'bad');
      assert.equal(lines.length, 1);
      mock.timers.tick(10_000);
      rl.warn('a', { i: 9 }, 'bad');
      assert.equal(lines.length, 2);
      assert.equal(lines[1]?.suppressed, 4);
      assert.equal(rl.suppressedTotal, 4);
    } finally {
      mock.timers.reset();
    }
  });

  it('many senders cannot flood the log: keys are forgotten one at a time and lines are budgeted', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const { log, lines } = recorder();
      const rl = new RateLimitedLog(log, 10_000, { maxKeys: 100, maxLinesPerInterval: 20 });
      // A known key logged first, then a flood of 5,000 distinct keys within one interval.
      rl.warn('known', {}, 'x');
      for (let i = 0; i < 5000; i++) rl.warn(`k${i}`, {}, 'x');
      assert.equal(lines.length, 20, 'at most the budget per interval');
      assert.equal(rl.suppressedTotal, 4981);
      // The known key was not wiped by the flood: still suppressed within its interval.
      rl.warn('known', {}, 'x');
      assert.equal(lines.length, 20);
      // Next interval: the first line carries what the budget held back.
      mock.timers.tick(10_000);
      rl.warn('k1', {}, 'x');
      assert.equal(lines.length, 21);
      assert.equal(lines[20]?.suppressed_other, 4981);
    } finally {
      mock.timers.reset();
    }
  });

  it('remembers at most maxKeys keys, least recently logged forgotten first', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const { log, lines } = recorder();
      const rl = new RateLimitedLog(log, 10_000, { maxKeys: 3, maxLinesPerInterval: 1000 });
      for (const k of ['a', 'b', 'c', 'd']) rl.warn(k, {}, 'x'); // 'a' forgotten
      assert.equal(lines.length, 4);
      rl.warn('b', {}, 'x'); // still remembered: suppressed
      assert.equal(lines.length, 4);
      rl.warn('a', {}, 'x'); // forgotten: logged again
      assert.equal(lines.length, 5);
    } finally {
      mock.timers.reset();
    }
  });
});
