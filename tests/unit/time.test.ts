/** parseSince and parseDuration (common/time.ts): the times an operator types for `--since` and `--for`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration, parseSince } from '../../common/time.js';

const NOW = Date.parse('2026-11-21T09:00:00.000Z');
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('parseSince', () => {
  it('reads a duration back from now in s, m, h, d, w, fractions and spaces allowed', () => {
    assert.equal(parseSince('90s', 'since', NOW), NOW - 90 * S);
    assert.equal(parseSince('15m', 'since', NOW), NOW - 15 * M);
    assert.equal(parseSince('2h', 'since', NOW), NOW - 2 * H);
    assert.equal(parseSince('7d', 'since', NOW), NOW - 7 * D);
    assert.equal(parseSince('1w', 'since', NOW), NOW - 7 * D);
    assert.equal(parseSince('1.5h', 'since', NOW), NOW - 90 * M);
    assert.equal(parseSince(' 2 h ', 'since', NOW), NOW - 2 * H);
    assert.equal(parseSince('0s', 'since', NOW), NOW);
  });

  it('reads an ISO date (UTC midnight) and an ISO date-time with a zone', () => {
    assert.equal(parseSince('2026-11-21', 'since', NOW), Date.parse('2026-11-21T00:00:00Z'));
    assert.equal(parseSince('2026-11-21T08:00:00Z', 'since', NOW), Date.parse('2026-11-21T08:00:00Z'));
    assert.equal(parseSince('2026-11-21T08:00:00.250Z', 'since', NOW), Date.parse('2026-11-21T08:00:00.250Z'));
    assert.equal(parseSince('2026-11-21T16:00:00+08:00', 'since', NOW), Date.parse('2026-11-21T08:00:00Z'));
  });

  it('reads seconds (10 digits, as date +%s prints) or ms (13 digits) since the epoch', () => {
    assert.equal(parseSince('1795251600000', 'since', NOW), 1795251600000);
    assert.equal(parseSince('1700000000', 'since', NOW), 1700000000000);
  });

  it('refuses a day the month does not have', () => {
    assert.throws(() => parseSince('2026-02-30', '--since', NOW), /--since: cannot read/);
    assert.equal(parseSince('2028-02-29', '--since', NOW), Date.parse('2028-02-29T00:00:00Z'));
  });

  it('refuses anything else, naming the field and saying what is accepted', () => {
    for (const bad of ['', 'yesterday', '2H', '-2h', '2', '123456789', '500ms', '2026-11-21x', '2026-13-01', 'h']) {
      assert.throws(
        () => parseSince(bad, '--since', NOW),
        (e: Error) =>
          e.message.startsWith('--since: cannot read') &&
          e.message.includes(JSON.stringify(bad)) &&
          e.message.includes('30m, 2h, 7d'),
        bad,
      );
    }
    assert.throws(() => parseSince('nope'), /^Error: since: /);
  });

  it('uses the clock when no now is given', () => {
    const before = Date.now();
    const t = parseSince('1h');
    assert.ok(t >= before - H && t <= Date.now() - H);
  });

  // A time no Date can hold would make a caller's new Date(t).toISOString() throw.
  it('refuses a number too large for a date', () => {
    for (const bad of ['9'.repeat(400), '99999999999999999999', `${'1'.repeat(400)}s`, '999999999999w']) {
      assert.throws(() => parseSince(bad, '--since', NOW), /--since: cannot read/, bad.slice(0, 24));
    }
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m, h, d, w and a bare number of ms', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30 * S);
    assert.equal(parseDuration('5m'), 5 * M);
    assert.equal(parseDuration('1h'), H);
    assert.equal(parseDuration('2d'), 2 * D);
    assert.equal(parseDuration('1w'), 7 * D);
    assert.equal(parseDuration('250'), 250);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration(' 30 s '), 30 * S);
  });

  it('rounds fractions to whole ms', () => {
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('0.4'), 0);
    assert.equal(parseDuration('0.0015s'), 2);
  });

  it('refuses anything else, naming the field', () => {
    for (const bad of ['', 'forever', '-5s', '5 minutes', '5S', '1e3', 's', '5sec']) {
      assert.throws(
        () => parseDuration(bad, '--for'),
        (e: Error) => e.message.startsWith('--for: cannot read') && e.message.includes('30s'),
        bad,
      );
    }
    assert.throws(() => parseDuration('x'), /^Error: duration: /);
  });

  it('refuses a number too large to be a duration', () => {
    assert.throws(() => parseDuration('9'.repeat(400), '--for'), /--for: .* too long a duration/);
  });
});
