/**
 * Access control in the REST contract (docs/operations.md "Users and access"): the roles and their
 * order, the bounds of every credential, and the schemas of login, logout, users and API tokens.
 *
 *   POST   /login `{ username, password }` → `{ token, expires_at, user, role }` (+ a session cookie)
 *   POST   /logout → 204 (the session or token used is ended)
 *   GET    /whoami → `{ user, role, via, token? }`
 *   GET    /users → `{ users }`; POST /users `{ username, password, role }` → 201 `{ user }`
 *   PUT    /users/:name/password `{ password }` → 204; PUT /users/:name/role `{ role }` → `{ user }`
 *   DELETE /users/:name → 204
 *   GET    /tokens → `{ tokens }`; POST /tokens `{ name, role, expires_in_ms? }` → 201 `{ token, info }`
 *   DELETE /tokens/:name → 204
 */
import { type Static, Type } from 'typebox';
import { literalUnion } from './primitives.js';

/** The roles, weakest first: a role may do everything the ones before it may. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
/** A role: `viewer` reads, `operator` also deploys and queries, `admin` also manages users, tokens and rules. */
export type Role = (typeof ROLES)[number];
/** Schema of {@link Role}. */
export const RoleSchema = literalUnion(ROLES, { description: 'viewer < operator < admin' });

/** Whether `have` is at least `need` (admin ≥ operator ≥ viewer). */
export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** The weaker of two roles. */
export function minRole(a: Role, b: Role): Role {
  return roleAtLeast(a, b) ? b : a;
}

/** Whether `s` names a role. */
export function isRole(s: unknown): s is Role {
  return typeof s === 'string' && (ROLES as readonly string[]).includes(s);
}

/** Longest user name, characters. */
export const MAX_USERNAME = 64;
/** Pattern of a user name: a letter first, then letters, digits, `_ . -`; at most 64 characters. */
export const USERNAME_PATTERN = '^[A-Za-z][A-Za-z0-9_.-]{0,63}$';
/** Shortest password a user may be given, characters. */
export const MIN_PASSWORD = 8;
/** Longest password accepted anywhere (login included), characters: longer ones are refused unhashed. */
export const MAX_PASSWORD = 256;
/** Longest bearer token or session token accepted, characters (ours are 56). */
export const MAX_TOKEN = 128;
/** Pattern of an API token's name. */
export const TOKEN_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
/** Largest body of POST /login, bytes (a bigger one is refused before it is parsed: 413). */
export const LOGIN_BODY_LIMIT = 1024;

/** The name of the dashboard's session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS). */
export const SESSION_COOKIE = 'muster_session';

const Username = Type.String({ pattern: USERNAME_PATTERN, maxLength: MAX_USERNAME, description: 'user name' });
const NewPassword = Type.String({ minLength: MIN_PASSWORD, maxLength: MAX_PASSWORD, description: 'password' });

/** Body of POST /login. */
export const LoginBodySchema = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: MAX_USERNAME }),
    password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD }),
  },
  { additionalProperties: false },
);
/** Body of POST /login. */
export type LoginBody = Static<typeof LoginBodySchema>;

/** Answer of POST /login: the session token (also set as the cookie), when it ends, who and what role. */
export const LoginReplySchema = Type.Object({
  token: Type.String({ description: 'session token: send as Authorization: Bearer <token>' }),
  expires_at: Type.String({ description: 'ISO date-time the session ends' }),
  user: Type.String(),
  role: RoleSchema,
});
/** Answer of POST /login. */
export type LoginReply = Static<typeof LoginReplySchema>;

/** Answer of GET /whoami. */
export const WhoAmIReplySchema = Type.Object({
  user: Type.String(),
  role: RoleSchema,
  via: literalUnion(['session', 'token'] as const),
  token: Type.Optional(Type.String({ description: 'the API token name, when authenticated by one' })),
});
/** Answer of GET /whoami. */
export type WhoAmIReply = Static<typeof WhoAmIReplySchema>;

/** A user as the API shows it (never the password hash). */
export const UserViewSchema = Type.Object({
  name: Type.String(),
  role: RoleSchema,
  created_at: Type.String(),
  updated_at: Type.String(),
});
/** A user as the API shows it. */
export type UserView = Static<typeof UserViewSchema>;

/** Body of POST /users. */
export const UserCreateBodySchema = Type.Object(
  { username: Username, password: NewPassword, role: RoleSchema },
  { additionalProperties: false },
);
/** Body of POST /users. */
export type UserCreateBody = Static<typeof UserCreateBodySchema>;

/** Parameters of /users/:name. */
export const UserParamsSchema = Type.Object({ name: Type.String({ maxLength: MAX_USERNAME }) });
/** Body of PUT /users/:name/password. */
export const PasswordBodySchema = Type.Object({ password: NewPassword }, { additionalProperties: false });
/** Body of PUT /users/:name/role. */
export const UserRoleBodySchema = Type.Object({ role: RoleSchema }, { additionalProperties: false });
/** Answer of POST /users and PUT /users/:name/role. */
export const UserReplySchema = Type.Object({ user: UserViewSchema });
/** Answer of GET /users. */
export const UserListReplySchema = Type.Object({ users: Type.Array(UserViewSchema) });

/** An API token as the API shows it: its name, the prefix that tells it apart, never the secret. */
export const TokenViewSchema = Type.Object({
  name: Type.String(),
  prefix: Type.String({ description: 'the first characters of the token, not secret' }),
  role: RoleSchema,
  user: Type.String({ description: 'who created it; the token never has more than their role' }),
  created_at: Type.String(),
  expires_at: Type.Union([Type.String(), Type.Null()]),
  last_used_at: Type.Union([Type.String(), Type.Null()]),
});
/** An API token as the API shows it. */
export type TokenView = Static<typeof TokenViewSchema>;

/** Body of POST /tokens: `expires_in_ms` absent = never expires. */
export const TokenCreateBodySchema = Type.Object(
  {
    name: Type.String({ pattern: TOKEN_NAME_PATTERN }),
    role: RoleSchema,
    expires_in_ms: Type.Optional(Type.Integer({ minimum: 1000, maximum: 10 * 365 * 86_400_000 })),
  },
  { additionalProperties: false },
);
/** Body of POST /tokens. */
export type TokenCreateBody = Static<typeof TokenCreateBodySchema>;

/** Answer of POST /tokens: the token, shown this once. */
export const TokenCreateReplySchema = Type.Object({ token: Type.String(), info: TokenViewSchema });
/** Answer of POST /tokens. */
export type TokenCreateReply = Static<typeof TokenCreateReplySchema>;
/** Answer of GET /tokens. */
export const TokenListReplySchema = Type.Object({ tokens: Type.Array(TokenViewSchema) });
/** Parameters of /tokens/:name. */
export const TokenParamsSchema = Type.Object({ name: Type.String({ maxLength: 64 }) });
