/**
 * A request the manager refuses on purpose (not a bug): the HTTP status, the `error` code, the
 * message, and the field at fault when one is. Each subsystem throws its own subclass
 * (DeployRefused, TaskRefused, …); the API's error handler (manager/routes/shared.ts) answers any
 * of them as an {@link ApiError} `{ error: code, field?, message }` with `status`, so a route need
 * not catch them (docs/operations.md "Errors").
 */
export class Refused extends Error {
  /**
   * @param status the HTTP status of the answer (4xx, or 5xx for 503/507)
   * @param code the `error` of the answer (`node_offline`, `bad_request`, …)
   * @param message said to the caller as is: no secret may be in it
   * @param field the JSON pointer or parameter at fault (`/target`, `params/id`)
   */
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
