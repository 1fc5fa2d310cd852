/**
 * Signed queries (docs/protocol.md "1a. Signed queries (muster extension)"): the manager adds `ts`
 * and `sig` to a query's `data`; an agent holding the same shared key verifies them and ignores a
 * query that is unsigned, badly signed, outside the replay window or already seen.
 *
 * Canonical form (what is signed), UTF-8, fields joined by `\n`, no trailing newline:
 *
 *     muster-query-v1
 *     <manager_ip>
 *     <manager_port in decimal>
 *     <url>
 *     <jitter_ms in decimal, or the empty string when the field is absent>
 *     <ts in decimal>
 *
 * `sig` is the HMAC-SHA256 of that text under the key, as 64 lowercase hex digits. The key is the
 * content of the key file with trailing whitespace removed (at least 16 bytes).
 */

import { readFileSync, statSync } from 'node:fs';
import { nodeCrypto } from './node-crypto.js';

/** First line of the canonical form: names the scheme and its version. */
export const SIGNING_SCHEME = 'muster-query-v1';

/** Shortest key accepted, bytes. */
export const MIN_KEY_BYTES = 16;

/** The query fields covered by the signature (the `data` of a query, docs/protocol.md §1). */
export interface SignedFields {
  manager_ip: string;
  manager_port: number;
  url: string;
  jitter_ms?: number | undefined;
}

/** Why a query was not accepted as signed; also the `reason` label of the agent's rejection counter. */
export type SignatureReject = 'unsigned' | 'bad_signature' | 'stale' | 'replay';

/** The canonical text signed for `d` at `ts` (ms since the epoch); see the module comment. */
export function canonicalQuery(d: SignedFields, ts: number): string {
  return [
    SIGNING_SCHEME,
    d.manager_ip,
    String(d.manager_port),
    d.url,
    d.jitter_ms === undefined ? '' : String(d.jitter_ms),
    String(ts),
  ].join('\n');
}

/** HMAC-SHA256 of the canonical form of `d` at `ts` under `key`, 64 lowercase hex digits. */
export function querySignature(key: Buffer, d: SignedFields, ts: number): string {
  return nodeCrypto().createHmac('sha256', key).update(canonicalQuery(d, ts), 'utf8').digest('hex');
}

/** `d` with `ts` and `sig` added: what a signing manager sends. */
export function signQuery<T extends SignedFields>(key: Buffer, d: T, ts: number): T & { ts: number; sig: string } {
  return { ...d, ts, sig: querySignature(key, d, ts) };
}

/**
 * Reads a shared key file (docs/configuration.md `query.signing.key_file`). The key is never logged.
 * @param what the config key, for error messages
 * @throws Error when the file cannot be read, is readable or writable by group or others (it must
 *   be 0600 or 0400), or holds fewer than {@link MIN_KEY_BYTES} bytes
 */
export function readKeyFile(file: string, what: string): Buffer {
  let mode: number;
  let text: Buffer;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file);
  } catch (err) {
    throw new Error(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((mode & 0o077) !== 0)
    throw new Error(
      `${what}: ${file} has mode ${(mode & 0o777).toString(8)}; it must be 0600 (no group or other access)`,
    );
  let end = text.length;
  while (
    end > 0 &&
    (text[end - 1] === 0x0a || text[end - 1] === 0x0d || text[end - 1] === 0x20 || text[end - 1] === 0x09)
  )
    end--;
  const key = text.subarray(0, end);
  if (key.length < MIN_KEY_BYTES)
    throw new Error(`${what}: ${file} holds ${key.length} bytes; a key needs at least ${MIN_KEY_BYTES}`);
  return Buffer.from(key);
}

/** Options of a {@link QueryVerifier}. */
export interface VerifierOptions {
  /** Keys a signature may be made with: the current one first, then a previous one during a rollover. */
  keys: readonly Buffer[];
  /** Largest difference between `ts` and the agent's clock, either way, ms (`query.signing.max_skew_ms`). */
  maxSkewMs: number;
  /** Most signatures remembered for replay detection (`query.signing.replay_cache_size`). */
  replayCacheSize: number;
  /** The clock, ms since the epoch; Date.now by default (tests pass a fake one). */
  now?: () => number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Checks signed queries: signature (constant-time, against each key), then the window, then the
 * replay cache. Only a query with a good signature enters the cache, so a flood of forged
 * datagrams cannot evict the signatures of genuine ones. The cache holds the signatures seen
 * within the window, at most `replayCacheSize` (the oldest goes first when it is full).
 */
export class QueryVerifier {
  private readonly seen = new Map<string, number>(); // sig → ts, in insertion order
  private readonly now: () => number;

  constructor(private readonly o: VerifierOptions) {
    if (o.keys.length === 0) throw new Error('QueryVerifier needs at least one key');
    this.now = o.now ?? Date.now;
  }

  /** Signatures currently remembered. */
  get cached(): number {
    return this.seen.size;
  }

  /**
   * Verifies the `ts` and `sig` of a query's data and, when good, remembers the signature.
   * @returns null when the query is accepted, else why not
   */
  verify(d: SignedFields & { ts?: unknown; sig?: unknown }): SignatureReject | null {
    const { ts, sig } = d;
    if (ts === undefined || sig === undefined) return 'unsigned';
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || typeof sig !== 'string' || !HEX64.test(sig))
      return 'bad_signature';
    const given = Buffer.from(sig, 'hex');
    let good = false;
    for (const key of this.o.keys) {
      const want = Buffer.from(querySignature(key, d, ts), 'hex');
      // Every key is tried, so the time taken does not tell which one matched.
      if (nodeCrypto().timingSafeEqual(given, want)) good = true;
    }
    if (!good) return 'bad_signature';
    const now = this.now();
    if (Math.abs(now - ts) > this.o.maxSkewMs) return 'stale';
    this.expire(now);
    if (this.seen.has(sig)) return 'replay';
    this.seen.set(sig, ts);
    while (this.seen.size > this.o.replayCacheSize) {
      const oldest = this.seen.keys().next().value as string;
      this.seen.delete(oldest);
    }
    return null;
  }

  /** Forgets signatures whose `ts` is outside the window (they would be refused as stale anyway). */
  private expire(now: number): void {
    for (const [s, ts] of this.seen) {
      if (Math.abs(now - ts) <= this.o.maxSkewMs) break;
      this.seen.delete(s);
    }
  }
}
