/**
 * Session and API tokens (docs/operations.md "Users and access"): `<kind>_<id>_<secret>`, where
 * kind is `mss` (a login session) or `mst` (an API token), id 8 random hex characters and secret
 * 32 random bytes base64url (43 characters): 56 characters in all. The store keeps the prefix
 * `<kind>_<id>` (not secret: it tells tokens apart and finds the row) and the sha256 of the whole
 * token; a presented token is checked by a constant-time compare of the 32-byte digests.
 * sha256 suffices: the tokens are 256-bit random values, not guessable passwords.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { MAX_TOKEN } from '../../common/api/auth.js';

/** The kinds of token: a login session or a named API token. */
export type TokenKind = 'mss' | 'mst';

/** A new token, with its stored prefix and hash. */
export interface NewSecret {
  token: string;
  prefix: string;
  hash: string;
}

/** sha256 of a token, hex. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Makes a new random token of `kind`. */
export function newToken(kind: TokenKind): NewSecret {
  const prefix = `${kind}_${randomBytes(4).toString('hex')}`;
  const token = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { token, prefix, hash: hashToken(token) };
}

/** The kind and prefix of a presented token, or null when it is not shaped like one of ours. */
export function parseToken(token: string): { kind: TokenKind; prefix: string } | null {
  if (token.length > MAX_TOKEN) return null;
  const m = /^(mss|mst)_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$/.exec(token);
  if (!m) return null;
  return { kind: m[1] as TokenKind, prefix: `${m[1]}_${m[2]}` };
}

/** Whether `token` hashes to `storedHash` (hex sha256), compared in constant time. */
export function tokenMatches(token: string, storedHash: string): boolean {
  const a = createHash('sha256').update(token).digest();
  const b = Buffer.from(storedHash, 'hex');
  return b.length === a.length && timingSafeEqual(a, b);
}
