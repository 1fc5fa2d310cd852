/**
 * `POST /api/v1/query` (docs/operations.md "REST API"): send one multicast query now and collect
 * the reports that answer it (`muster query`).
 */
import { type Static, Type } from 'typebox';
import { REPORT_URLS } from '../constants.js';
import { literalUnion } from './primitives.js';

/** A report url a query asks for: `/heartbeat` or `/resource`. */
export const ReportUrlSchema = literalUnion(REPORT_URLS, { description: 'the report the query asks for' });

/** Body of POST /api/v1/query. */
export const QueryRequestSchema = Type.Object({
  url: ReportUrlSchema,
  wait_ms: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 60000,
      description: 'how long to collect, ms; default the reply window + 1 s',
    }),
  ),
});
/** Body of POST /api/v1/query. */
export type QueryRequest = Static<typeof QueryRequestSchema>;

/** One report received in answer to a query. */
export const AnswerSchema = Type.Object({
  node: Type.Union([Type.String(), Type.Null()], {
    description: 'node id box-slot-cpu; null for a resource report from an address no heartbeat has named yet',
  }),
  host_ip: Type.String({ description: 'address the report came from' }),
  ms: Type.Number({ description: 'ms from the query leaving to the report stored' }),
});
/** One report received, as `muster query` shows it. */
export type Answer = Static<typeof AnswerSchema>;

/** Answer of POST /api/v1/query. */
export const QueryReplySchema = Type.Object({
  url: ReportUrlSchema,
  sent_at: Type.String({ description: 'ISO time the query left' }),
  wait_ms: Type.Number({ description: 'how long answers were collected, ms' }),
  answers: Type.Array(AnswerSchema),
});
/** Answer of POST /api/v1/query. */
export type QueryReply = Static<typeof QueryReplySchema>;
