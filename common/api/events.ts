/**
 * The live event stream (docs/dashboard.md "Live updates"): `GET /api/v1/events` (viewer) answers
 * `text/event-stream` (Server-Sent Events). Each event is `event: <name>` and one `data:` line of
 * JSON:
 *
 *   nodes   {@link NodesEvent}: the first one after connecting is `full` (every node); then, at most
 *           once per dashboard.events.interval_ms, a diff: the nodes new since the last event
 *           (whole, in `changed`), the fields that changed of the others (in `patched`, each with
 *           its `id` and only the changed fields) and the ids of the nodes removed
 *   alerts  {@link AlertsEvent}: every open alert, sent on connect and whenever the set or one of
 *           them changes
 *   ping    `{}` every dashboard.events.ping_ms, so that a proxy and the page know the stream lives
 *
 * A client that misses events reconnects and gets a full snapshot again: there is no replay.
 */
import { type Static, Type } from 'typebox';
import { AlertViewSchema } from './alerts.js';
import { NodeSummarySchema } from './nodes.js';
import { NodeIdSchema } from './primitives.js';

/** The names of the events of GET /api/v1/events. */
export const EVENT_NAMES = ['nodes', 'alerts', 'ping'] as const;
/** The name of an event. */
export type EventName = (typeof EVENT_NAMES)[number];

/**
 * The changed fields of a known node's summary: `id` and each field whose value differs from the
 * previous event's (compared by value; `conflict` as a whole). Apply as `{ ...old, ...patch }`.
 */
export const NodeSummaryPatchSchema = Type.Object({
  ...Type.Partial(NodeSummarySchema).properties,
  id: NodeIdSchema,
});
/** The changed fields of a known node's summary. */
export type NodeSummaryPatch = Static<typeof NodeSummaryPatchSchema>;

/** Data of a `nodes` event. */
export const NodesEventSchema = Type.Object({
  round: Type.Integer({ minimum: 0, description: 'number of the heartbeat round under way' }),
  full: Type.Boolean({ description: 'true: `changed` holds every node and replaces what the client had' }),
  changed: Type.Array(NodeSummarySchema, {
    description: 'full: every node; else the nodes new since the previous event, whole',
  }),
  patched: Type.Array(NodeSummaryPatchSchema, {
    description:
      'nodes known before whose summary changed: the id and only the fields that changed (a field absent is unchanged)',
  }),
  removed: Type.Array(Type.String(), { description: 'ids of nodes forgotten since the previous event' }),
});
/** Data of a `nodes` event. */
export type NodesEvent = Static<typeof NodesEventSchema>;

/** Data of an `alerts` event: every open alert, oldest first. */
export const AlertsEventSchema = Type.Object({ open: Type.Array(AlertViewSchema) });
/** Data of an `alerts` event. */
export type AlertsEvent = Static<typeof AlertsEventSchema>;
