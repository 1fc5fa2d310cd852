/**
 * The JSON nesting-depth bound of request bodies (`http.max_json_depth` of both daemons): a
 * linear scan of the text before `JSON.parse` runs, so a deeply nested body costs one pass over
 * its bytes, never a recursive parse. No dependency: the agent's command port (node:http) and the
 * manager's fastify parser (common/http.ts) share it.
 */

/** The error code of a body refused for its nesting depth (status 400). */
export const JSON_TOO_DEEP = 'MUSTER_JSON_TOO_DEEP';

/**
 * Whether the JSON text `text` nests objects/arrays deeper than `max` (brackets inside strings
 * do not count). One linear pass (strings skipped with indexOf), no allocation; says nothing about
 * validity (JSON.parse does).
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: jump to its closing quote (one not preceded by an odd run of backslashes).
      let j = text.indexOf('"', i + 1);
      while (j > 0) {
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c) k--;
        if ((j - k) % 2 === 1) break;
        j = text.indexOf('"', j + 1);
      }
      if (j < 0) return false; // unterminated: JSON.parse refuses it
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** The message of a body refused for its nesting depth (400, code {@link JSON_TOO_DEEP}). */
export const tooDeepMessage = (maxJsonDepth: number): string =>
  `body is nested too deep: more than ${maxJsonDepth} levels (http.max_json_depth)`;

/** The message of a body that is not JSON (400, code FST_ERR_CTP_INVALID_JSON_BODY). */
export const NOT_JSON_MESSAGE = 'body is not valid JSON';
