/**
 * Link tokens over REST (docs/links.md "Link tokens", docs/operations.md "REST API"), admin only:
 * `GET /api/v1/links/tokens`, `POST /api/v1/links/tokens`, `DELETE /api/v1/links/tokens/:id`.
 * The token itself is shown once, in the answer of its creation; the manager keeps its sha256.
 */
import { type Static, Type } from 'typebox';
import { NodeIdSchema } from './primitives.js';

/** A link token as listed (never the secret). */
export const LinkTokenViewSchema = Type.Object({
  id: Type.String({ description: 'public id, lt_ + 8 hex' }),
  node: Type.Union([NodeIdSchema, Type.Null()], { description: 'the one node id it may link; null = any' }),
  created_by: Type.String(),
  created_at: Type.String({ description: 'ISO time' }),
  last_used_at: Type.Union([Type.String(), Type.Null()], { description: 'ISO time of its latest connection' }),
});
export type LinkTokenView = Static<typeof LinkTokenViewSchema>;

/** Answer of GET /api/v1/links/tokens. */
export const LinkTokenListReplySchema = Type.Object({ tokens: Type.Array(LinkTokenViewSchema) });
export type LinkTokenListReply = Static<typeof LinkTokenListReplySchema>;

/**
 * Body of POST /api/v1/links/tokens. `value` sets the token instead of a random one (for nodes
 * configured with a fixed token, e.g. the link specification's `default-token`): at least 8
 * characters.
 */
export const LinkTokenCreateBodySchema = Type.Object(
  {
    node: Type.Optional(NodeIdSchema),
    value: Type.Optional(Type.String({ minLength: 8, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' })),
  },
  { additionalProperties: false },
);
export type LinkTokenCreateBody = Static<typeof LinkTokenCreateBodySchema>;

/** Answer of POST /api/v1/links/tokens: the token, shown this once. */
export const LinkTokenCreateReplySchema = Type.Object({
  id: Type.String(),
  token: Type.String(),
  node: Type.Union([NodeIdSchema, Type.Null()]),
});
export type LinkTokenCreateReply = Static<typeof LinkTokenCreateReplySchema>;

/** `:id` of DELETE /api/v1/links/tokens/:id. */
export const LinkTokenParamsSchema = Type.Object({ id: Type.String({ pattern: '^lt_[0-9a-f]{8}$' }) });
export type LinkTokenParams = Static<typeof LinkTokenParamsSchema>;
