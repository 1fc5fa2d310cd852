/**
 * Signed queries (common/signing.ts, docs/protocol.md "1a. Signed queries"): the canonical form,
 * a good signature, a forged one, a stale one, a replay, a rotated key, the key file checks, and
 * the manager's query body carrying the fields (manager/querier.ts).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseQuery } from '../../agent/link/listener.js';
import { canonicalQuery, QueryVerifier, querySignature, readKeyFile, signQuery } from '../../common/signing.js';
import { queryBody } from '../../manager/querier.js';

const KEY = Buffer.from('0123456789abcdef-current-key');
const OLD = Buffer.from('0123456789abcdef-previous-key');
const DATA = { manager_ip: '192.168.10.254', manager_port: 3926, url: '/heartbeat', jitter_ms: 200 };
const T0 = 1_790_000_000_000;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function verifier(now: { t: number }, keys = [KEY], replayCacheSize = 1024) {
  return new QueryVerifier({ keys, maxSkewMs: 30_000, replayCacheSize, now: () => now.t });
}

describe('signed queries', () => {
  it('canonical form: fixed order, newline-separated, empty jitter when absent', () => {
    assert.equal(canonicalQuery(DATA, T0), `muster-query-v1\n192.168.10.254\n3926\n/heartbeat\n200\n${T0}`);
    const { jitter_ms: _, ...noJitter } = DATA;
    assert.equal(canonicalQuery(noJitter, 5), 'muster-query-v1\n192.168.10.254\n3926\n/heartbeat\n\n5');
    // A known vector (computed with Python's hmac), also in docs/protocol.md "1a".
    assert.equal(
      querySignature(Buffer.from('muster-test-key-0123'), DATA, T0),
      'e281c535af0dfeeb76461bd56c4cbbab091321ef367f816de8e344b6c7f0a87b',
    );
    assert.match(querySignature(KEY, DATA, T0), /^[0-9a-f]{64}$/);
  });

  it('a good signature is accepted once; the same datagram again is a replay', () => {
    const now = { t: T0 + 1000 };
    const v = verifier(now);
    const signed = signQuery(KEY, DATA, T0);
    assert.equal(v.verify(signed), null);
    assert.equal(v.verify({ ...signed }), 'replay');
    // A fresh signature of the same fields at another ts is a new query.
    assert.equal(v.verify(signQuery(KEY, DATA, T0 + 2000)), null);
  });

  it('unsigned, forged, tampered and wrong-key queries are refused with their reason', () => {
    const v = verifier({ t: T0 });
    assert.equal(v.verify(DATA), 'unsigned');
    assert.equal(v.verify({ ...DATA, ts: T0 }), 'unsigned');
    assert.equal(v.verify({ ...DATA, ts: T0, sig: 'ab'.repeat(32) }), 'bad_signature');
    assert.equal(v.verify({ ...DATA, ts: T0, sig: 'not hex' }), 'bad_signature');
    const signed = signQuery(KEY, DATA, T0);
    assert.equal(v.verify({ ...signed, manager_ip: '10.6.6.6' }), 'bad_signature', 'manager_ip changed');
    assert.equal(v.verify({ ...signed, manager_port: 80 }), 'bad_signature', 'port changed');
    assert.equal(v.verify({ ...signed, url: '/resource' }), 'bad_signature', 'url changed');
    assert.equal(v.verify({ ...signed, jitter_ms: 0 }), 'bad_signature', 'jitter changed');
    assert.equal(v.verify({ ...signed, ts: T0 + 1 }), 'bad_signature', 'ts changed');
    assert.equal(v.verify(signQuery(Buffer.from('another-key-0123456'), DATA, T0)), 'bad_signature');
    assert.equal(v.cached, 0, 'nothing refused enters the replay cache');
  });

  it('a ts outside the window either way is stale', () => {
    const now = { t: T0 };
    const v = verifier(now);
    assert.equal(v.verify(signQuery(KEY, DATA, T0 - 30_001)), 'stale');
    assert.equal(v.verify(signQuery(KEY, DATA, T0 + 30_001)), 'stale');
    assert.equal(v.verify(signQuery(KEY, DATA, T0 - 30_000)), null);
    // A replay after the window has passed is stale, not accepted.
    const s = signQuery(KEY, DATA, T0);
    assert.equal(v.verify(s), null);
    now.t = T0 + 31_000;
    assert.equal(v.verify(s), 'stale');
  });

  it('the replay cache is bounded in count and forgets what left the window', () => {
    const now = { t: T0 };
    const v = verifier(now, [KEY], 16);
    for (let i = 0; i < 100; i++) assert.equal(v.verify(signQuery(KEY, DATA, T0 + i)), null);
    assert.equal(v.cached, 16);
    now.t = T0 + 200_000;
    assert.equal(v.verify(signQuery(KEY, DATA, now.t)), null);
    assert.equal(v.cached, 1);
  });

  it('a rotated key: both keys accepted during the rollover, the old one refused after', () => {
    const during = verifier({ t: T0 }, [KEY, OLD]);
    assert.equal(during.verify(signQuery(OLD, DATA, T0)), null);
    assert.equal(during.verify(signQuery(KEY, DATA, T0)), null);
    const afterRollover = verifier({ t: T0 }, [KEY]);
    assert.equal(afterRollover.verify(signQuery(OLD, DATA, T0 + 1)), 'bad_signature');
  });

  it('key files: 0600 required, at least 16 bytes, trailing newline dropped', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-key-'));
    dirs.push(dir);
    const f = path.join(dir, 'query.key');
    writeFileSync(f, `${KEY.toString()}\n`);
    chmodSync(f, 0o644);
    assert.throws(
      () => readKeyFile(f, 'query.signing.key_file'),
      /query\.signing\.key_file: .* mode 644; it must be 0600/,
    );
    chmodSync(f, 0o600);
    assert.deepEqual(readKeyFile(f, 'k'), KEY);
    writeFileSync(f, 'short\n');
    assert.throws(() => readKeyFile(f, 'k'), /holds 5 bytes; a key needs at least 16/);
    assert.throws(() => readKeyFile(path.join(dir, 'missing'), 'k'), /cannot read .*ENOENT/);
  });

  it("the manager's signed query is valid for any agent, and verifies on an agent with the key", () => {
    const body = queryBody('192.168.10.254', 3926, '/resource', 300, { key: KEY, now: () => T0 });
    const d = body.data as typeof body.data & { ts: number; sig: string };
    assert.equal(d.ts, T0);
    assert.equal(d.sig, querySignature(KEY, { ...DATA, url: '/resource', jitter_ms: 300 }, T0));
    // An agent without a key parses it like any query (the extra fields are allowed).
    const parsed = parseQuery(Buffer.from(JSON.stringify(body)));
    assert.equal(parsed.ok, true);
    assert.equal(verifier({ t: T0 }).verify(d), null);
    // Unsigned when no key is configured.
    assert.deepEqual(Object.keys(queryBody('10.0.0.1', 3926, '/heartbeat').data).sort(), [
      'manager_ip',
      'manager_port',
      'url',
    ]);
  });
});
