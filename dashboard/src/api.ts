/**
 * The dashboard's client of the REST API (docs/dashboard.md): same-origin fetch with the session
 * cookie (HttpOnly, SameSite=Strict, set by POST /api/v1/login), JSON in and out. The browser
 * sends `Sec-Fetch-Site: same-origin` on these requests, which is what the manager's CSRF check
 * asks of a cookie-authenticated change (docs/operations.md "Users and access"). A 401 anywhere
 * means the session ended: the listeners of {@link onUnauthorized} show the login form.
 */
import type { ApiError } from '../../common/api/errors.js';

/** An answer that was not 2xx. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError | null,
  ) {
    super(body?.message ?? `HTTP ${status}`);
    this.name = 'ApiFailure';
  }
}

const unauthorized = new Set<() => void>();
/** Calls `fn` when an API call answers 401 (session ended). Returns the unsubscribe. */
export function onUnauthorized(fn: () => void): () => void {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

/**
 * Calls the API. `path` is below /api/v1 (e.g. `/nodes`).
 * @throws ApiFailure for a non-2xx answer (401 also notifies {@link onUnauthorized}), TypeError when the manager cannot be reached
 */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`api/v1${path}`, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status === 204) return null as T;
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/login')) for (const fn of unauthorized) fn();
    throw new ApiFailure(res.status, (parsed as ApiError | null) ?? null);
  }
  return parsed as T;
}

/** GET shorthand. */
export const get = <T>(path: string) => api<T>('GET', path);

/** A query string of the defined values of `q` (with the leading ?), '' when none. */
export function qs(q: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
