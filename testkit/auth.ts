/**
 * Access control for tests and benches (docs/operations.md "Users and access"): the `auth` config
 * the manager ships with, and a principal to put on requests when a route plugin is built alone
 * (without the /api/v1 context's access check).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Role } from '../common/api/auth.js';
import type { Access, AuthConfig, Principal } from '../manager/auth/access.js';

/** The shipped defaults of the `auth` section (config/manager.yaml). */
export const AUTH_DEFAULTS: AuthConfig = {
  session_ttl_ms: 43_200_000,
  initial_admin_password_file: '',
  lockout: { address_failures: 10, user_failures: 5, base_ms: 1000, max_ms: 900_000, window_ms: 900_000 },
};

/** A logged-in user, as the access check would set it. */
export function principal(user: string, role: Role = 'admin'): Principal {
  return { user, role, via: 'session', prefix: 'mss_00000000' };
}

/**
 * Makes every request to `app` come from `user` (an onRequest hook setting `req.principal`):
 * for a route plugin tested without the access check, so that `who` in the history is known.
 */
export function actAs(app: FastifyInstance, user: string, role: Role = 'admin'): void {
  app.addHook('onRequest', async (req) => {
    req.principal = principal(user, role);
  });
}

/**
 * Creates user `name` with `role` (when missing) and an API token of theirs; returns the
 * `Authorization` header that carries it.
 */
export async function tokenHeaders(
  access: Access,
  name = 'admin',
  role: Role = 'admin',
): Promise<{ authorization: string }> {
  if (!access.listUsers().some((u) => u.name === name)) await access.addUser(name, 'test-password', role);
  const { token } = access.createToken(principal(name, role), `${name}-${randomUUID().slice(0, 8)}`, role);
  return { authorization: `Bearer ${token}` };
}
