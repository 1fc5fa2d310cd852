/**
 * Password hashing (docs/operations.md "Users and access"): argon2id with Node 24's built-in
 * `crypto.argon2` (no native addon), stored as a PHC string
 * `$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<hash, base64>` with a random 16-byte salt.
 *
 * Parameters ({@link ARGON2_PARAMS}): 19 MiB of memory, 2 passes, 1 lane, a 32-byte tag — the first
 * of OWASP's argon2id settings. Measured on the 2-core x64 test host: 94–147 ms per hash; a
 * 2-core ARM board is expected at a few hundred ms, which a login can afford. The hash runs on
 * libuv's thread pool, not on the event loop. The parameters are part of each stored string, so
 * they can be raised later without invalidating existing passwords.
 *
 * Compares are constant-time (`crypto.timingSafeEqual` on the fixed-length tags), and a login
 * for an unknown user verifies against a dummy hash ({@link dummyVerify}) so that its timing does
 * not tell which user names exist.
 */
import { argon2, randomBytes, timingSafeEqual } from 'node:crypto';

/** The argon2id parameters of new hashes: memory in KiB, passes, lanes, tag length in bytes. */
export const ARGON2_PARAMS = { memory: 19456, passes: 2, parallelism: 1, tagLength: 32 } as const;

/** Bounds on parameters read back from a stored string (a corrupt row cannot ask for 4 GiB). */
const MAX_MEMORY_KIB = 262_144;
const MAX_PASSES = 16;

function derive(
  password: string,
  salt: Buffer,
  p: { memory: number; passes: number; parallelism: number; tagLength: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    argon2('argon2id', { message: password, nonce: salt, ...p }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/** Hashes `password` with a new random salt; returns the PHC string to store. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const tag = await derive(password, salt, ARGON2_PARAMS);
  const { memory: m, passes: t, parallelism: p } = ARGON2_PARAMS;
  return `$argon2id$v=19$m=${m},t=${t},p=${p}$${b64(salt)}$${b64(tag)}`;
}

/** A parsed PHC string, or null when it is not one this manager reads. */
function parsePhc(phc: string) {
  const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(phc);
  if (!m) return null;
  const [memory, passes, parallelism] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const salt = Buffer.from(m[4] as string, 'base64');
  const tag = Buffer.from(m[5] as string, 'base64');
  if (memory > MAX_MEMORY_KIB || passes > MAX_PASSES || parallelism < 1 || parallelism > 16) return null;
  if (salt.length < 8 || tag.length < 16) return null;
  return { params: { memory, passes, parallelism, tagLength: tag.length }, salt, tag };
}

/**
 * Whether `password` matches the stored PHC string (constant-time compare of the tags). A string
 * that cannot be read verifies against the dummy hash and answers false, in the same time.
 */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const parsed = parsePhc(phc);
  if (!parsed) {
    await dummyVerify(password);
    return false;
  }
  const tag = await derive(password, parsed.salt, parsed.params);
  return tag.length === parsed.tag.length && timingSafeEqual(tag, parsed.tag);
}

const DUMMY_SALT = randomBytes(16);

/** Spends the time of one verify with the current parameters, for a user that does not exist. */
export async function dummyVerify(password: string): Promise<void> {
  await derive(password, DUMMY_SALT, ARGON2_PARAMS);
}

/** A new random password for the first admin: 24 random bytes, base64url (32 characters). */
export function randomPassword(): string {
  return randomBytes(24).toString('base64url');
}
