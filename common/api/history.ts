/**
 * The history over REST (docs/operations.md "`muster history`", "REST API" under "Alerts and
 * history"): node state transitions, operations (deploys, queries, rule changes), component state
 * changes, manager starts and stops.
 *
 *   GET /api/v1/history?node=&since=&kind=&limit=&before= → `{ history, next }`, newest first
 */
import { type Static, Type } from 'typebox';
import { NextSchema, PageQueryFields } from './paging.js';
import { literalUnion } from './primitives.js';

/** What a history entry records. */
export const HISTORY_KINDS = ['state', 'operation', 'component', 'manager'] as const;
/** What a history entry records. */
export type HistoryKind = (typeof HISTORY_KINDS)[number];
/** Schema of {@link HistoryKind}. */
export const HistoryKindSchema = literalUnion(HISTORY_KINDS);

/** One line of the operation and state history. */
export const HistoryEntrySchema = Type.Object({
  id: Type.Integer(),
  at: Type.String({ description: 'ISO time' }),
  node: Type.Union([Type.String(), Type.Null()], {
    description: 'node id, or null for what concerns no single node (a query to all, a rule change)',
  }),
  kind: HistoryKindSchema,
  operation: Type.String({
    description:
      'online/suspect/offline (state), deploy.start, deploy.stop, query, alert-rule.put, alert-rule.delete (operation), the new component state (component), start/stop (manager)',
  }),
  args: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
    description: "arguments: the deploy request, the query, the rule; the transition's from/reason; or null",
  }),
  result: Type.Union([Type.Number(), Type.Null()], {
    description: "deploy: the agent's result or a negative manager code; query: answers; null when none or under way",
  }),
  message: Type.Union([Type.String(), Type.Null()]),
  who: Type.String({
    description: 'the authenticated user (user/token for an API token), or manager for what the manager did itself',
  }),
  ref: Type.Union([Type.String(), Type.Null()], { description: 'a related record: the deployment id' }),
});
/** One line of the operation and state history. */
export type HistoryEntry = Static<typeof HistoryEntrySchema>;

/** Query string of GET /api/v1/history. */
export const HistoryQuerySchema = Type.Object(
  { ...PageQueryFields, kind: Type.Optional(HistoryKindSchema) },
  { additionalProperties: false },
);
/** Query string of GET /api/v1/history. */
export type HistoryQuery = Static<typeof HistoryQuerySchema>;

/** Answer of GET /api/v1/history. */
export const HistoryReplySchema = Type.Object({ history: Type.Array(HistoryEntrySchema), next: NextSchema });
/** Answer of GET /api/v1/history. */
export type HistoryReply = Static<typeof HistoryReplySchema>;
