/**
 * The error body of every REST route and of refused reports (docs/operations.md "REST API",
 * docs/protocol.md "4. The manager's answers to reports"): `{ error, field?, message }`.
 */
import { type Static, Type } from 'typebox';

/** An error answer: a code (`bad_request`, `not_found`, `conflict`, `node_offline`, ...), the field at fault, why. */
export const ApiErrorSchema = Type.Object(
  {
    error: Type.String({ description: 'error code: bad_request, not_found, conflict, node_offline, internal, ...' }),
    field: Type.Optional(
      Type.String({ description: 'the field at fault: a JSON pointer (/url), params/id, or a query name (since)' }),
    ),
    message: Type.String({ description: 'what is wrong, for the operator' }),
  },
  { description: 'error answer' },
);
/** An error answer. */
export type ApiError = Static<typeof ApiErrorSchema>;

/**
 * The error answers a route may give besides its own: any 4xx (a bad parameter, a body too large)
 * and 5xx (an internal error), all with the {@link ApiErrorSchema} body.
 */
export const ERROR_RESPONSES = { '4xx': ApiErrorSchema, '5xx': ApiErrorSchema } as const;
