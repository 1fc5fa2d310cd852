/**
 * Credentials of SSH servers at rest (docs/links.md "Security"): each password or private key is
 * sealed with AES-256-GCM (node:crypto) under a 32-byte key kept in `<data_dir>/relay.key`
 * (mode 0600, created on first use), the server's name as additional data (a sealed secret
 * copied onto another row does not open). Sealed form: `v1:` + base64(iv 12 | tag 16 | cipher).
 * The database alone never gives a credential away; the key file and the database together do.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** File name of the key in the data directory. */
export const RELAY_KEY_FILE = 'relay.key';

/** A sealed secret that does not open (wrong key, other row, damaged). */
export class SecretError extends Error {}

/** Seals and opens server credentials with one key. */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /**
   * The box of `dataDir`: its key file read, or created (32 random bytes, 0600) when missing.
   * A key file of another size, or readable by others, is refused.
   * @throws SecretError when the key file is unusable
   */
  static open(dataDir: string): SecretBox {
    const file = path.join(dataDir, RELAY_KEY_FILE);
    let key: Buffer;
    try {
      key = readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new SecretError(`cannot read ${file}: ${(err as Error).message}`);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      key = randomBytes(32);
      writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
    }
    chmodSync(file, 0o600);
    if (key.length !== 32) throw new SecretError(`${file}: a key of ${key.length} bytes, 32 expected`);
    if ((statSync(file).mode & 0o077) !== 0) throw new SecretError(`${file}: readable by others`);
    return new SecretBox(key);
  }

  /** A box with the given 32-byte key (tests). */
  static withKey(key: Buffer): SecretBox {
    if (key.length !== 32) throw new SecretError('a key of 32 bytes is needed');
    return new SecretBox(Buffer.from(key));
  }

  /** `plain` sealed, bound to `context` (the server name). */
  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1:${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64')}`;
  }

  /**
   * The secret `sealed` holds.
   * @throws SecretError when it does not open with this key and `context`
   */
  open(sealed: string, context: string): string {
    if (!sealed.startsWith('v1:')) throw new SecretError('not a sealed secret');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    if (raw.length < 28) throw new SecretError('a sealed secret too short');
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      d.setAAD(Buffer.from(context, 'utf8'));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    } catch {
      throw new SecretError('the sealed secret does not open with this key (relay.key replaced?)');
    }
  }
}
