/**
 * Users, sessions and API tokens (docs/operations.md "Users and access"): the first admin, login
 * with its limits, the check of a presented token, and the admin's management of users and
 * tokens. Built on the store's users, sessions and api_tokens tables; passwords and tokens are
 * never stored, logged or returned in clear (./passwords.ts, ./secrets.ts).
 *
 * Who a request is: a session token gives its user with the user's current role; an API token
 * gives its creator with the weaker of the token's role and the creator's current role (a token
 * is never more than its creator). A user removed takes their sessions and tokens along; a token
 * revoked or expired stops working at the next request (every request reads the store).
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Counter, Counter as PromCounter, type Registry } from 'prom-client';
import {
  MAX_PASSWORD,
  MAX_USERNAME,
  MIN_PASSWORD,
  minRole,
  type Role,
  roleAtLeast,
  type TokenView,
  USERNAME_PATTERN,
  type UserView,
} from '../../common/api/auth.js';
import type { Logger } from '../../common/log.js';
import { Refused } from '../refused.js';
import type { SessionsTable } from '../store/sessions.js';
import type { TokenRow, TokensTable } from '../store/tokens.js';
import type { UserRow, UsersTable } from '../store/users.js';
import { Lockout, type LockoutConfig } from './lockout.js';
import { dummyVerify, hashPassword, randomPassword, verifyPassword } from './passwords.js';
import { newToken, parseToken, tokenMatches } from './secrets.js';

/** The `auth` config section (docs/configuration.md "auth"). */
export interface AuthConfig {
  /** How long a login session lasts, ms. */
  session_ttl_ms: number;
  /** Where the first admin's password is written; "" = <data_dir>/initial-admin-password. */
  initial_admin_password_file: string;
  lockout: LockoutConfig;
}

/** Who a request is, once authenticated. */
export interface Principal {
  user: string;
  role: Role;
  via: 'session' | 'token';
  /** The API token's name (via token). */
  token?: string;
  /** The session's or token's prefix (to end it at logout). */
  prefix: string;
}

/** What the history records as `who`: the user, or `user/token` for an API token. */
export function whoIs(p: Principal): string {
  return p.via === 'token' ? `${p.user}/${p.token}` : p.user;
}

/** Why a login or a change was refused. */
export class AccessError extends Refused {}

/** The result of a login: a new session, or why not. */
export type LoginResult =
  | { ok: true; token: string; expiresAt: number; user: string; role: Role }
  | { ok: false; reason: 'bad_credentials' }
  | { ok: false; reason: 'locked'; retryAfterMs: number };

/** The stores access control uses. */
export interface AccessTables {
  users: UsersTable;
  sessions: SessionsTable;
  tokens: TokensTable;
}

/** Reasons counted in muster_manager_login_failures_total. */
export type LoginFailure = 'bad_password' | 'unknown_user' | 'locked' | 'too_large' | 'bad_body';

/** The access metrics (docs/operations.md "Prometheus metrics"). */
export function accessMetrics(registry?: Registry) {
  const registers = registry ? [registry] : [];
  return {
    loginFailures: new PromCounter({
      name: 'muster_manager_login_failures_total',
      help: 'Failed or refused logins, by reason (bad_password, unknown_user, locked, too_large, bad_body)',
      labelNames: ['reason'],
      registers,
    }) as Counter<'reason'>,
    refused: new PromCounter({
      name: 'muster_manager_auth_refused_total',
      help: 'API requests refused by access control, by status (401 no or bad credentials, 403 role or CSRF)',
      labelNames: ['status'],
      registers,
    }) as Counter<'status'>,
    logins: new PromCounter({ name: 'muster_manager_logins_total', help: 'Successful logins', registers }),
  };
}
/** The access metrics. */
export type AccessMetrics = ReturnType<typeof accessMetrics>;

const iso = (ms: number) => new Date(ms).toISOString();

/** A user as the API shows it. */
export function userView(u: UserRow): UserView {
  return { name: u.name, role: u.role, created_at: iso(u.created_at), updated_at: iso(u.updated_at) };
}

/** A token as the API shows it. */
export function tokenView(t: TokenRow): TokenView {
  return {
    name: t.name,
    prefix: t.prefix,
    role: t.role,
    user: t.user,
    created_at: iso(t.created_at),
    expires_at: t.expires_at === null ? null : iso(t.expires_at),
    last_used_at: t.last_used_at === null ? null : iso(t.last_used_at),
  };
}

/** Access control over the store. */
export class Access {
  readonly lockout: Lockout;
  readonly metrics: AccessMetrics;

  constructor(
    private readonly t: AccessTables,
    private cfg: AuthConfig,
    private readonly log: Logger,
    registry?: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.lockout = new Lockout(cfg.lockout, now);
    this.metrics = accessMetrics(registry);
  }

  /** Applies a reloaded `auth` section (session lifetime for new sessions, lockout limits). */
  reconfigure(cfg: AuthConfig): void {
    this.cfg = cfg;
    this.lockout.reconfigure(cfg.lockout);
  }

  /**
   * First start (docs/operations.md "First start"): when there is no user, creates `admin`. Its
   * password is the content of the initial-admin-password file when that exists and is not empty
   * (provisioned by an installer or a test), else a new random one written to that file with mode
   * 0600. Logs where the file is, never the password.
   * @returns the file, or null when users existed
   * @throws Error when the file cannot be written, or holds a password shorter than 8 or longer than 256 characters
   */
  async bootstrap(dataDir: string): Promise<string | null> {
    if (this.t.users.count() > 0) return null;
    const file = this.cfg.initial_admin_password_file || path.join(dataDir, 'initial-admin-password');
    let password = '';
    try {
      password = readFileSync(file, 'utf8').trim();
    } catch {
      // absent: a new one is made
    }
    const provisioned = password !== '';
    if (provisioned && (password.length < MIN_PASSWORD || password.length > MAX_PASSWORD)) {
      throw new Error(`${file}: the initial admin password must be ${MIN_PASSWORD}..${MAX_PASSWORD} characters`);
    }
    if (!provisioned) {
      password = randomPassword();
      writeFileSync(file, `${password}\n`, { mode: 0o600 });
    }
    chmodSync(file, 0o600);
    const at = this.now();
    this.t.users.add({
      name: 'admin',
      role: 'admin',
      password: await hashPassword(password),
      created_at: at,
      updated_at: at,
    });
    this.log.warn(
      { file, provisioned },
      `no user yet: created user admin; its password is in ${file} (mode 0600). Log in with 'muster login --user admin', change it with 'muster users passwd admin', then delete the file`,
    );
    return file;
  }

  /**
   * Checks a username and password from `address` and opens a session (lifetime
   * auth.session_ttl_ms). Refused while the address or user is locked (./lockout.ts); an unknown
   * user costs the same time as a wrong password.
   */
  async login(username: string, password: string, address: string): Promise<LoginResult> {
    const locked = this.lockout.check(address, username);
    if (locked) {
      this.metrics.loginFailures.inc({ reason: 'locked' });
      return { ok: false, reason: 'locked', retryAfterMs: locked.retryAfterMs };
    }
    const user = username.length <= MAX_USERNAME ? this.t.users.get(username) : undefined;
    let good = false;
    if (user) good = await verifyPassword(password, user.password);
    else await dummyVerify(password);
    if (!good) {
      this.lockout.fail(address, username);
      this.metrics.loginFailures.inc({ reason: user ? 'bad_password' : 'unknown_user' });
      return { ok: false, reason: 'bad_credentials' };
    }
    this.lockout.succeed(address, username);
    const u = user as UserRow;
    const s = newToken('mss');
    const at = this.now();
    const expiresAt = at + this.cfg.session_ttl_ms;
    if (
      !this.t.sessions.add({
        prefix: s.prefix,
        hash: s.hash,
        user: u.name,
        address,
        created_at: at,
        expires_at: expiresAt,
      })
    ) {
      throw new AccessError(500, 'internal', 'the session could not be stored');
    }
    this.t.sessions.expire(at);
    this.metrics.logins.inc();
    this.log.info({ user: u.name, from: address, session: s.prefix }, 'login');
    return { ok: true, token: s.token, expiresAt, user: u.name, role: u.role };
  }

  /** Who presents `token` (a session or an API token), or null when it is unknown, revoked or expired. */
  authenticate(token: string): Principal | null {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const t = this.now();
    if (parsed.kind === 'mss') {
      const s = this.t.sessions.get(parsed.prefix);
      if (!s || !tokenMatches(token, s.hash) || s.expires_at <= t) return null;
      const u = this.t.users.get(s.user);
      return u ? { user: u.name, role: u.role, via: 'session', prefix: s.prefix } : null;
    }
    const k = this.t.tokens.get(parsed.prefix);
    if (!k || !tokenMatches(token, k.hash) || (k.expires_at !== null && k.expires_at <= t)) return null;
    const u = this.t.users.get(k.user);
    if (!u) return null;
    if (k.last_used_at === null || t - k.last_used_at > 60_000) this.t.tokens.touch(k.prefix, t);
    return { user: u.name, role: minRole(k.role, u.role), via: 'token', token: k.name, prefix: k.prefix };
  }

  /** Ends the session `p` came with (an API token is not revoked by a logout: use tokens revoke). */
  logout(p: Principal): boolean {
    return p.via === 'session' ? this.t.sessions.remove(p.prefix) : false;
  }

  // Users ---------------------------------------------------------------------------------------

  /** Every user. */
  listUsers(): UserView[] {
    return this.t.users.list().map(userView);
  }

  /**
   * Adds a user.
   * @throws AccessError 400 for a bad name or password, 409 when the name is taken
   */
  async addUser(name: string, password: string, role: Role): Promise<UserView> {
    checkName(name);
    checkPassword(password);
    if (this.t.users.get(name)) throw new AccessError(409, 'conflict', `user ${name} exists`, '/username');
    const at = this.now();
    const row: UserRow = { name, role, password: await hashPassword(password), created_at: at, updated_at: at };
    if (!this.t.users.add(row)) throw new AccessError(409, 'conflict', `user ${name} exists`, '/username');
    return userView(row);
  }

  /**
   * Sets a user's password and ends their sessions (their API tokens stay).
   * @throws AccessError 404 for an unknown user, 400 for a bad password
   */
  async setPassword(name: string, password: string): Promise<void> {
    checkPassword(password);
    if (!this.t.users.get(name)) throw new AccessError(404, 'not_found', `no user ${name}`);
    this.t.users.setPassword(name, await hashPassword(password), this.now());
    this.t.sessions.removeUser(name);
  }

  /**
   * Sets a user's role (their tokens are capped by it at once).
   * @throws AccessError 404 for an unknown user, 409 when it would leave no admin
   */
  setRole(name: string, role: Role): UserView {
    const u = this.t.users.get(name);
    if (!u) throw new AccessError(404, 'not_found', `no user ${name}`);
    if (u.role === 'admin' && role !== 'admin') this.keepAnAdmin(name);
    this.t.users.setRole(name, role, this.now());
    return userView({ ...u, role, updated_at: this.now() });
  }

  /**
   * Removes a user with their sessions and tokens.
   * @throws AccessError 404 for an unknown user, 409 for the last admin
   */
  removeUser(name: string): void {
    const u = this.t.users.get(name);
    if (!u) throw new AccessError(404, 'not_found', `no user ${name}`);
    if (u.role === 'admin') this.keepAnAdmin(name);
    this.t.sessions.removeUser(name);
    this.t.tokens.removeUser(name);
    this.t.users.remove(name);
  }

  private keepAnAdmin(name: string): void {
    if (!this.t.users.list().some((o) => o.role === 'admin' && o.name !== name)) {
      throw new AccessError(409, 'conflict', `${name} is the last admin: make another user admin first`);
    }
  }

  // Tokens --------------------------------------------------------------------------------------

  /** Every API token (never their secrets). */
  listTokens(): TokenView[] {
    return this.t.tokens.list().map(tokenView);
  }

  /**
   * Creates an API token for `by`, with `role` at most `by`'s; returns the token (shown once).
   * @throws AccessError 403 when role is above `by`'s, 409 when the name is taken
   */
  createToken(by: Principal, name: string, role: Role, expiresInMs?: number): { token: string; info: TokenView } {
    if (!roleAtLeast(by.role, role)) {
      throw new AccessError(403, 'forbidden', `a token cannot have more than your role ${by.role}`, '/role');
    }
    if (this.t.tokens.byName(name)) throw new AccessError(409, 'conflict', `a token named ${name} exists`, '/name');
    const s = newToken('mst');
    const at = this.now();
    const row: TokenRow = {
      prefix: s.prefix,
      hash: s.hash,
      name,
      role,
      user: by.user,
      created_at: at,
      expires_at: expiresInMs === undefined ? null : at + expiresInMs,
      last_used_at: null,
    };
    if (!this.t.tokens.add(row)) throw new AccessError(409, 'conflict', `a token named ${name} exists`, '/name');
    this.log.info({ token: name, prefix: s.prefix, role, by: by.user }, 'API token created');
    return { token: s.token, info: tokenView(row) };
  }

  /**
   * Revokes the token named `name`.
   * @throws AccessError 404 when there is none
   */
  revokeToken(name: string): void {
    if (!this.t.tokens.remove(name)) throw new AccessError(404, 'not_found', `no token ${name}`);
    this.log.info({ token: name }, 'API token revoked');
  }
}

function checkName(name: string): void {
  if (!new RegExp(USERNAME_PATTERN).test(name)) {
    throw new AccessError(
      400,
      'bad_request',
      'a user name is a letter then letters, digits, _ . - (64 at most)',
      '/username',
    );
  }
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD || password.length > MAX_PASSWORD) {
    throw new AccessError(
      400,
      'bad_request',
      `a password has ${MIN_PASSWORD}..${MAX_PASSWORD} characters`,
      '/password',
    );
  }
}
