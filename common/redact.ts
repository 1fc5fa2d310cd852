/**
 * Redaction of secrets carried inside URLs (issue 12 "Secrets in clear"; docs/operations.md
 * "Deploying workloads"): credentials in a URL's userinfo (`http://user:pass@host/...`) and the
 * values of query parameters whose names look secret (token, key, password, secret, sig,
 * signature, auth, credential) must never reach a log line, a metric, a reply message or a file
 * on disk. The credentials are kept only for the actual request. Pure; both daemons may use it.
 */

/** What replaces a removed userinfo or a masked query value. */
export const REDACTED = '***';

/** Query parameter names whose values are masked (matched anywhere in the name, any case). */
const SECRET_PARAM = /token|key|pass|secret|sig|auth|credential|session/i;

/** A URL with a scheme inside free text: scheme://, then up to whitespace, a quote or an angle bracket. */
const URL_IN_TEXT = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>`]*/g;

/** The same inside free text. */
const USERINFO_IN_TEXT = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#\s]*@/g;

/** `scheme://` then an authority that holds an `@` (the userinfo ends at its last `@`). */
const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#\s]*)@/;

function maskQuery(u: string): string {
  const q = u.indexOf('?');
  if (q < 0) return u;
  const hash = u.indexOf('#', q);
  const end = hash < 0 ? u.length : hash;
  const query = u
    .slice(q + 1, end)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // keep the raw name
      }
      return eq >= 0 && SECRET_PARAM.test(decoded) ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
  return `${u.slice(0, q + 1)}${query}${u.slice(end)}`;
}

/**
 * The URL `s` without its secrets: the userinfo (`user:pass@`) replaced by `***@`, and the value
 * of every query parameter whose name looks secret replaced by `***`. Everything else is kept
 * as written (no re-serialisation), so a redacted URL still reads like the one given. A string
 * that is not a URL is returned with the same rules applied to any URL inside it.
 * @param s a URL, e.g. `http://u:p@host:8080/b?token=x&v=1`
 * @returns e.g. `http://***@host:8080/b?token=***&v=1`
 */
export function redactUrl(s: string): string {
  const m = USERINFO.exec(s);
  const noUser = m ? `${m[1]}${REDACTED}@${s.slice(m[0].length)}` : s;
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(noUser) ? maskQuery(noUser) : redactText(noUser);
}

/**
 * `s` with every URL inside it redacted as {@link redactUrl} does; text around them unchanged.
 * Used on messages that may quote a URL (errors, progress lines, log fields).
 */
export function redactText(s: string): string {
  if (!s.includes('://')) return s;
  // Userinfo first, over quotes and backslashes too (a password may hold a quote that a JSON
  // rendering escapes): the last `@` before a path, query, fragment or whitespace ends it.
  return s.replace(USERINFO_IN_TEXT, `$1${REDACTED}@`).replace(URL_IN_TEXT, maskQuery);
}

/**
 * Names of environment variables whose values are secrets (matched anywhere in the name, any
 * case): TOKEN, PASSWORD / PASSWD / PASS, SECRET, KEY, CREDENTIAL, AUTH, SESSION, PRIVATE, CERT.
 */
export const SECRET_ENV_NAME = /token|pass|secret|key|credential|auth|session|private|cert|sig/i;

/**
 * An environment assignment `NAME=value` fit for a log line (docs/exec.md "Exec log"): the value
 * replaced by `***` when NAME looks secret ({@link SECRET_ENV_NAME}), else URLs inside it redacted
 * as {@link redactText} does. A string without `=` is returned as its URL-redacted self.
 * @param kv e.g. `DB_PASSWORD=hunter2` → `DB_PASSWORD=***`; `MODE=fast` → `MODE=fast`
 */
export function redactEnvVar(kv: string): string {
  const eq = kv.indexOf('=');
  if (eq < 0) return redactText(kv);
  const name = kv.slice(0, eq);
  return SECRET_ENV_NAME.test(name) ? `${name}=${REDACTED}` : `${name}=${redactText(kv.slice(eq + 1))}`;
}
