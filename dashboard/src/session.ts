/**
 * Who is logged in (docs/dashboard.md "Logging in"): the user and role from GET /api/v1/whoami;
 * the role decides which actions the pages show (the API checks it again on every call).
 */
import type { Role } from '../../common/api/auth.js';

// The order of common/api/auth.ts's ROLES, repeated here so that the page's bundle does not carry
// the schema library (only types are imported from common/api).
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
const roleAtLeast = (have: Role, need: Role) => RANK[have] >= RANK[need];

/** The logged-in user, or null. */
export interface Session {
  user: string;
  role: Role;
}

let current: Session | null = null;

/** The session now. */
export const session = (): Session | null => current;

/** Sets the session (after login or whoami; null after logout or a 401). */
export function setSession(s: Session | null): void {
  current = s;
}

/** Whether the user may do what needs `role`. */
export function can(role: Role): boolean {
  return current !== null && roleAtLeast(current.role, role);
}
