/** parseSize (common/units.ts): the sizes an operator types for `muster deploy start --memory`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSize } from '../../common/units.js';

const Ki = 1024;
const Mi = 1024 ** 2;
const Gi = 1024 ** 3;
const Ti = 1024 ** 4;

describe('parseSize', () => {
  it('reads a plain number as bytes', () => {
    assert.equal(parseSize('0'), 0);
    assert.equal(parseSize('67108864'), 67108864);
    assert.equal(parseSize('512B'), 512);
    assert.equal(parseSize(' 4096 '), 4096);
  });

  it('reads K, M, G, T as 1024-based units, any case', () => {
    assert.equal(parseSize('1K'), Ki);
    assert.equal(parseSize('512M'), 512 * Mi);
    assert.equal(parseSize('512m'), 512 * Mi);
    assert.equal(parseSize('2G'), 2 * Gi);
    assert.equal(parseSize('1T'), Ti);
  });

  it('accepts the explicit binary forms Ki, KiB, MiB, GiB and the B suffix', () => {
    assert.equal(parseSize('64Mi'), 64 * Mi);
    assert.equal(parseSize('64MiB'), 64 * Mi);
    assert.equal(parseSize('64MB'), 64 * Mi);
    assert.equal(parseSize('100KiB'), 100 * Ki);
    assert.equal(parseSize('3 GiB'), 3 * Gi);
    assert.equal(parseSize('32mib'), 32 * Mi);
  });

  it('accepts fractions with a unit, rounded down to a whole byte', () => {
    assert.equal(parseSize('1.5G'), 1.5 * Gi);
    assert.equal(parseSize('0.5M'), 512 * Ki);
    assert.equal(parseSize('.5K'), 512);
    assert.equal(parseSize('1.1K'), 1126);
  });

  it('refuses anything else with a message naming the option and the accepted forms', () => {
    for (const bad of ['', ' ', 'abc', '-1', '-1G', '1.5', '1.5B', '12Q', '1 G B', '5i', '1e3', 'G', '1,5G', '0x10']) {
      assert.throws(
        () => parseSize(bad, '--memory'),
        (err: Error) => {
          assert.ok(err instanceof RangeError, `${bad}: ${err}`);
          assert.match(err.message, /^--memory /);
          assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
          assert.match(err.message, /512M/);
          return true;
        },
        `parseSize(${JSON.stringify(bad)}) should throw`,
      );
    }
  });

  it('refuses sizes beyond what a number holds exactly', () => {
    assert.throws(() => parseSize('99999999T', '--memory'), /--memory "99999999T": too large/);
  });
});
