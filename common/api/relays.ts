/**
 * SSH relays and the servers behind them over REST (docs/links.md "The SSH relay",
 * docs/operations.md "REST API"); lists for viewers, changes for admins:
 *
 *   GET    /api/v1/relays → `{ relays }` (ids, allowlists, connected or not; never the keys)
 *   POST   /api/v1/relays `{ id, allow? }` → 201 `{ id, apiKey, allow }`: the key shown this once
 *   DELETE /api/v1/relays/:id → 204 (its servers too)
 *   GET    /api/v1/servers → `{ servers }` (never a password or a private key)
 *   POST   /api/v1/servers `{ name, relay, host, port?, username, password | privateKey }` → 201 `{ server }`
 *   DELETE /api/v1/servers/:name → 204
 *   POST   /api/v1/servers/:name/trust → `{ server }`: forgets the pinned host key (the next
 *          connection pins the key it finds) and resolves the server's host_key_changed alert
 */
import { type Static, Type } from 'typebox';
import { HOST_KEY_PATTERN, RELAY_MAX_KEY, RELAY_NAME_PATTERN } from '../relay.js';

/** A relay id or server name. */
export const RelayNameSchema = Type.String({
  pattern: RELAY_NAME_PATTERN,
  description: 'letters, digits, _ . -; 1..64',
});

/** One allowlist entry: an IPv4 or IPv6 address, optionally with a /prefix. */
export const AllowEntrySchema = Type.String({
  minLength: 2,
  maxLength: 64,
  pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$',
  description: 'address or CIDR the relay may connect from',
});

/** A relay as listed (never its key). */
export const RelayViewSchema = Type.Object({
  id: RelayNameSchema,
  allow: Type.Array(Type.String(), { description: 'CIDRs the relay may connect from; [] = any address' }),
  connected: Type.Boolean(),
  peer: Type.Union([Type.String(), Type.Null()], { description: 'address it is connected from' }),
  servers: Type.Integer({ description: 'SSH servers behind it' }),
  pending: Type.Integer({ description: 'commands in flight on it' }),
  created_by: Type.String(),
  created_at: Type.String({ description: 'ISO time' }),
  last_seen_at: Type.Union([Type.String(), Type.Null()], { description: 'ISO time of its latest connection' }),
});
export type RelayView = Static<typeof RelayViewSchema>;

/** Answer of GET /api/v1/relays. */
export const RelayListReplySchema = Type.Object({ relays: Type.Array(RelayViewSchema) });
export type RelayListReply = Static<typeof RelayListReplySchema>;

/** Body of POST /api/v1/relays. */
export const RelayCreateBodySchema = Type.Object(
  { id: RelayNameSchema, allow: Type.Optional(Type.Array(AllowEntrySchema, { maxItems: 64 })) },
  { additionalProperties: false },
);
export type RelayCreateBody = Static<typeof RelayCreateBodySchema>;

/** Answer of POST /api/v1/relays: the apiKey, shown this once. */
export const RelayCreateReplySchema = Type.Object({
  id: RelayNameSchema,
  apiKey: Type.String(),
  allow: Type.Array(Type.String()),
});
export type RelayCreateReply = Static<typeof RelayCreateReplySchema>;

/** `:id` of DELETE /api/v1/relays/:id. */
export const RelayParamsSchema = Type.Object({ id: RelayNameSchema });

/** An SSH server as listed: never its password or private key. */
export const ServerViewSchema = Type.Object({
  name: RelayNameSchema,
  target: Type.String({ description: 'server:<name>, as muster exec --target takes it' }),
  relay: RelayNameSchema,
  host: Type.String(),
  port: Type.Integer(),
  username: Type.String(),
  auth: Type.Union([Type.Literal('password'), Type.Literal('key')]),
  host_key: Type.Union([Type.String(), Type.Null()], { description: 'pinned fingerprint; null until first use' }),
  created_by: Type.String(),
  created_at: Type.String({ description: 'ISO time' }),
});
export type ServerView = Static<typeof ServerViewSchema>;

/** Answer of GET /api/v1/servers. */
export const ServerListReplySchema = Type.Object({ servers: Type.Array(ServerViewSchema) });
export type ServerListReply = Static<typeof ServerListReplySchema>;

/** Body of POST /api/v1/servers: exactly one of password and privateKey. */
export const ServerCreateBodySchema = Type.Object(
  {
    name: RelayNameSchema,
    relay: RelayNameSchema,
    host: Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9_.:%-]+$' }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    username: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.][A-Za-z0-9_.-]*$' }),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    privateKey: Type.Optional(Type.String({ minLength: 32, maxLength: RELAY_MAX_KEY })),
    hostKey: Type.Optional(Type.String({ pattern: HOST_KEY_PATTERN, description: 'pin this fingerprint now' })),
  },
  { additionalProperties: false },
);
export type ServerCreateBody = Static<typeof ServerCreateBodySchema>;

/** Answer of POST /api/v1/servers and /servers/:name/trust. */
export const ServerReplySchema = Type.Object({ server: ServerViewSchema });
export type ServerReply = Static<typeof ServerReplySchema>;

/** `:name` of /api/v1/servers/:name. */
export const ServerParamsSchema = Type.Object({ name: RelayNameSchema });
