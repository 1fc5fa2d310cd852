/**
 * The live event stream (docs/dashboard.md "Live updates"): `GET /api/v1/events` (viewer) answers
 * `text/event-stream` (Server-Sent Events). Each event is `event: <name>` and one `data:` line of
 * JSON:
 *
 *   nodes   {@link NodesEvent}: the first one after connecting is `full` (every node); then, at most
 *           once per dashboard.events.interval_ms, the nodes whose summary changed and the ids of
 *           the nodes removed
 *   alerts  {@link AlertsEvent}: every open alert, sent on connect and whenever the set or one of
 *           them changes
 *   ping    `{}` every dashboard.events.ping_ms, so that a proxy and the page know the stream lives
 *
 * A client that misses events reconnects and gets a full snapshot again: there is no replay.
 */
import { type Static, Type } from 'typebox';
import { AlertViewSchema } from './alerts.js';
import { NodeSummarySchema } from './nodes.js';

/** The names of the events of GET /api/v1/events. */
export const EVENT_NAMES = ['nodes', 'alerts', 'ping'] as const;
/** The name of an event. */
export type EventName = (typeof EVENT_NAMES)[number];

/** Data of a `nodes` event. */
export const NodesEventSchema = Type.Object({
  round: Type.Integer({ minimum: 0, description: 'number of the heartbeat round under way' }),
  full: Type.Boolean({ description: 'true: `changed` holds every node and replaces what the client had' }),
  changed: Type.Array(NodeSummarySchema, { description: 'nodes new or changed since the previous event' }),
  removed: Type.Array(Type.String(), { description: 'ids of nodes forgotten since the previous event' }),
});
/** Data of a `nodes` event. */
export type NodesEvent = Static<typeof NodesEventSchema>;

/** Data of an `alerts` event: every open alert, oldest first. */
export const AlertsEventSchema = Type.Object({ open: Type.Array(AlertViewSchema) });
/** Data of an `alerts` event. */
export type AlertsEvent = Static<typeof AlertsEventSchema>;
