/**
 * Result codes of a /deploy reply (docs/protocol.md "Result codes": `result` int, 0 = success) and the HTTP
 * status that goes with each. The spec names only 0; the non-zero table is muster's, documented
 * in docs/protocol.md, and a manager that knows only the spec still sees "non-zero = failed".
 */

/** Result codes of a deploy reply. */
export const RESULT = {
  /** Done (also: a repeated start of a running component, a stop of a stopped one). */
  OK: 0,
  /** The request is malformed: a field is missing, of the wrong type or out of range. */
  BAD_REQUEST: 1,
  /** The board lacks the free cores, memory or GPUs the start requires. */
  INSUFFICIENT_RESOURCES: 2,
  /** The image or bundle could not be fetched, or is not what it should be. */
  FETCH_FAILED: 3,
  /** The runtime (docker engine, process spawn) failed to start or stop the workload. */
  RUNTIME_ERROR: 4,
  /** No component with that uuid (or id) on this board. */
  NOT_FOUND: 5,
  /** Missing or wrong bearer token. */
  UNAUTHORIZED: 6,
  /** Another operation on the same uuid is under way. */
  BUSY: 7,
} as const;
export type ResultCode = (typeof RESULT)[keyof typeof RESULT];

/** HTTP status for each result code. */
export const HTTP_STATUS: Record<ResultCode, number> = {
  0: 200,
  1: 400,
  2: 409,
  3: 502,
  4: 500,
  5: 404,
  6: 401,
  7: 409,
};

/** A refused or failed deploy: `code` is the reply's `result`, `message` says what and why. */
export class DeployError extends Error {
  constructor(
    readonly code: Exclude<ResultCode, 0>,
    message: string,
  ) {
    super(message);
    this.name = 'DeployError';
  }
}
