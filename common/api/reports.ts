/**
 * The manager's answers on the wire-protocol routes (docs/protocol.md "4. The manager's answers to
 * reports", "4a. Agent alert"): `POST /heartbeat` and `POST /resource` answer 200 with an empty
 * body; `POST /alert` answers `{ id, state: 'open' }` or `{ state: 'resolved' | 'not_open' }`.
 * The request bodies are the protocol's (common/protocol.ts).
 */
import { type Static, Type } from 'typebox';

/** Answer of POST /alert. */
export const AgentAlertReplySchema = Type.Object({
  id: Type.Optional(Type.Integer({ description: 'the open alert, when the agent raised one' })),
  state: Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('not_open')], {
    description: 'open: raised or updated; resolved: it was open and is resolved; not_open: nothing was open',
  }),
});
/** Answer of POST /alert. */
export type AgentAlertReply = Static<typeof AgentAlertReplySchema>;
