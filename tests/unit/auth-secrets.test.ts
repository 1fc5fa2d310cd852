/**
 * Passwords and tokens (manager/auth/passwords.ts, secrets.ts; docs/operations.md "Users and
 * access"): argon2id PHC strings with a random salt that verify only the right password, refuse a
 * corrupt or over-costly string, a dummy verify as long as a real one; tokens of 53 characters
 * whose prefix finds them and whose sha256 alone is kept; roles ordered.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRole, minRole, roleAtLeast } from '../../common/api/auth.js';
import { ARGON2_PARAMS, dummyVerify, hashPassword, verifyPassword } from '../../manager/auth/passwords.js';
import { hashToken, newToken, parseToken, tokenMatches } from '../../manager/auth/secrets.js';

describe('passwords', () => {
  it('hashes to an argon2id PHC string with the documented parameters and a new salt each time', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    const { memory, passes, parallelism } = ARGON2_PARAMS;
    assert.match(
      a,
      new RegExp(
        `^\\$argon2id\\$v=19\\$m=${memory},t=${passes},p=${parallelism}\\$[A-Za-z0-9+/]{22}\\$[A-Za-z0-9+/]{43}$`,
      ),
    );
    assert.notEqual(a, b);
    assert.ok(!a.includes('correct horse'));
    assert.equal(await verifyPassword('correct horse', a), true);
    assert.equal(await verifyPassword('correct horse', b), true);
    assert.equal(await verifyPassword('correct hors', a), false);
    assert.equal(await verifyPassword('', a), false);
  });

  it('a corrupt or too costly stored string verifies nothing', async () => {
    const good = await hashPassword('pw-12345');
    assert.equal(await verifyPassword('pw-12345', good.replace('argon2id', 'argon2i')), false);
    assert.equal(await verifyPassword('pw-12345', good.replace(/m=\d+/, 'm=4194304')), false);
    assert.equal(await verifyPassword('pw-12345', 'plain'), false);
    assert.equal(await verifyPassword('pw-12345', good.slice(0, -4)), false);
  });

  it('a dummy verify costs about what a real one does (no user enumeration by timing)', async () => {
    const phc = await hashPassword('pw-12345');
    const time = async (fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    const real = Math.min(await time(() => verifyPassword('x', phc)), await time(() => verifyPassword('x', phc)));
    const dummy = Math.min(await time(() => dummyVerify('x')), await time(() => dummyVerify('x')));
    assert.ok(dummy > real * 0.5 && dummy < real * 2, `real ${real} ms, dummy ${dummy} ms`);
  });
});

describe('tokens', () => {
  it('are 56 characters of kind, id and secret; the prefix is kind_id; only the sha256 is compared', () => {
    const t = newToken('mst');
    assert.equal(t.token.length, 56);
    assert.match(t.token, /^mst_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    assert.equal(t.prefix, t.token.slice(0, 12));
    assert.equal(t.hash, hashToken(t.token));
    assert.match(t.hash, /^[0-9a-f]{64}$/);
    assert.deepEqual(parseToken(t.token), { kind: 'mst', prefix: t.prefix });
    assert.equal(tokenMatches(t.token, t.hash), true);
    const last = t.token.at(-1) === 'A' ? 'B' : 'A';
    assert.equal(tokenMatches(t.token.slice(0, -1) + last, t.hash), false);
    assert.equal(tokenMatches(t.token, 'abcd'), false);
    assert.notEqual(newToken('mst').token, t.token);
    assert.equal(parseToken(newToken('mss').token)?.kind, 'mss');
  });

  it('anything not shaped like a token is refused unread', () => {
    for (const s of [
      '',
      'Bearer',
      'mst_0000',
      `mst_00000000_${'a'.repeat(42)}`,
      `xxx_00000000_${'a'.repeat(43)}`,
      'm'.repeat(10_000),
    ])
      assert.equal(parseToken(s), null, s.slice(0, 20));
  });
});

describe('roles', () => {
  it('viewer < operator < admin', () => {
    assert.equal(roleAtLeast('admin', 'operator'), true);
    assert.equal(roleAtLeast('operator', 'operator'), true);
    assert.equal(roleAtLeast('viewer', 'operator'), false);
    assert.equal(roleAtLeast('operator', 'admin'), false);
    assert.equal(minRole('admin', 'viewer'), 'viewer');
    assert.equal(minRole('operator', 'admin'), 'operator');
    assert.equal(isRole('admin'), true);
    assert.equal(isRole('root'), false);
  });
});
