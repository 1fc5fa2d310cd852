/**
 * SSH relays and servers (docs/links.md "The SSH relay"), under the API prefix: lists for
 * viewers, changes for admins (the routes are listed in common/api/relays.ts). An apiKey is
 * shown once, in the answer of its relay's creation, and stored as its sha256; a server's
 * password or private key is sealed (manager/relay/secrets.ts) and never returned.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  RelayCreateBodySchema,
  RelayCreateReplySchema,
  RelayListReplySchema,
  RelayParamsSchema,
  ServerCreateBodySchema,
  ServerListReplySchema,
  ServerParamsSchema,
  ServerReplySchema,
  type ServerView,
} from '../../common/api/relays.js';
import { SERVER_PREFIX } from '../../common/relay.js';
import type { AlertEngine } from '../alerts/engine.js';
import { alertKey } from '../alerts/engine.js';
import { hashRelayKey, type RelayConfig, type RelayHub } from '../relay/hub.js';
import type { SecretBox } from '../relay/secrets.js';
import type { SshServerRow } from '../store/relays.js';
import type { Store } from '../store/store.js';
import { badRequest, ERROR_RESPONSES, notFound, whoOf } from './shared.js';

/** What the relay routes use. */
export interface RelayRoutesOptions {
  store: Pick<Store, 'relays' | 'addHistory'>;
  relayHub: Pick<RelayHub, 'connected' | 'peerOf' | 'pendingOf' | 'disconnect'>;
  /** Opens the credential box (the key file is created on first use). */
  secretBox: () => SecretBox;
  relayConfig: () => Pick<RelayConfig, 'max_relays' | 'max_servers'>;
  alerts: Pick<AlertEngine, 'resolve'>;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Why an allowlist entry is not an address or CIDR, or null. */
export function badAllowEntry(entry: string): string | null {
  const [net, bits, more] = entry.split('/');
  const f = isIP(net ?? '');
  if (f === 0 || more !== undefined) return `${entry} is not an address or a CIDR`;
  if (bits !== undefined && !(Number(bits) >= 0 && Number(bits) <= (f === 4 ? 32 : 128) && /^\d+$/.test(bits)))
    return `${entry}: bad prefix length`;
  return null;
}

function serverView(r: SshServerRow): ServerView {
  return {
    name: r.name,
    target: `${SERVER_PREFIX}${r.name}`,
    relay: r.relay,
    host: r.host,
    port: r.port,
    username: r.username,
    auth: r.auth,
    host_key: r.host_key,
    created_by: r.created_by,
    created_at: new Date(r.created_at).toISOString(),
  };
}

/** Registers the relay and server routes. */
export const relayRoutes: FastifyPluginAsyncTypebox<RelayRoutesOptions> = async (app, o) => {
  const { store } = o;
  const record = (
    who: string,
    operation: string,
    node: string | null,
    args: Record<string, unknown>,
    message: string,
  ) => store.addHistory({ at: Date.now(), node, kind: 'operation', operation, args, result: 0, message, who });

  app.get(
    '/relays',
    { config: { role: 'viewer' }, schema: { response: { 200: RelayListReplySchema, ...ERROR_RESPONSES } } },
    async () => {
      const counts = new Map<string, number>();
      for (const s of store.relays.servers()) counts.set(s.relay, (counts.get(s.relay) ?? 0) + 1);
      return {
        relays: store.relays.relays().map((r) => ({
          id: r.id,
          allow: r.allow,
          connected: o.relayHub.connected(r.id),
          peer: o.relayHub.peerOf(r.id),
          servers: counts.get(r.id) ?? 0,
          pending: o.relayHub.pendingOf(r.id),
          created_by: r.created_by,
          created_at: new Date(r.created_at).toISOString(),
          last_seen_at: iso(r.last_seen_at),
        })),
      };
    },
  );

  app.post(
    '/relays',
    {
      config: { role: 'admin' },
      schema: { body: RelayCreateBodySchema, response: { 201: RelayCreateReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const allow = req.body.allow ?? [];
      for (const [i, a] of allow.entries()) {
        const why = badAllowEntry(a);
        if (why) return reply.code(400).send(badRequest(`/allow/${i}`, why));
      }
      const max = o.relayConfig().max_relays;
      if (store.relays.relayCount() >= max)
        return reply.code(409).send({ error: 'conflict', message: `relay.max_relays (${max}) relays exist already` });
      const apiKey = `mrk_${randomBytes(32).toString('base64url')}`;
      const who = whoOf(req);
      const ok = store.relays.addRelay({
        id: req.body.id,
        hash: hashRelayKey(apiKey),
        allow,
        created_by: who,
        created_at: Date.now(),
      });
      if (!ok) return reply.code(409).send({ error: 'conflict', message: `relay ${req.body.id} exists already` });
      record(who, 'relay_add', null, { id: req.body.id, allow }, `relay ${req.body.id} added`);
      return reply.code(201).send({ id: req.body.id, apiKey, allow });
    },
  );

  app.delete(
    '/relays/:id',
    {
      config: { role: 'admin' },
      schema: { params: RelayParamsSchema, response: { 204: Type.Null(), ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      if (!store.relays.removeRelay(req.params.id)) return reply.code(404).send(notFound(`no relay ${req.params.id}`));
      o.relayHub.disconnect(req.params.id);
      record(
        whoOf(req),
        'relay_remove',
        null,
        { id: req.params.id },
        `relay ${req.params.id} removed with its servers`,
      );
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/servers',
    { config: { role: 'viewer' }, schema: { response: { 200: ServerListReplySchema, ...ERROR_RESPONSES } } },
    async () => ({ servers: store.relays.servers().map(serverView) }),
  );

  app.post(
    '/servers',
    {
      config: { role: 'admin' },
      schema: { body: ServerCreateBodySchema, response: { 201: ServerReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const b = req.body;
      if ((b.password === undefined) === (b.privateKey === undefined))
        return reply.code(400).send(badRequest('/password', 'give exactly one of password and privateKey'));
      if (b.privateKey !== undefined && !/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(b.privateKey))
        return reply.code(400).send(badRequest('/privateKey', 'not a PEM or OpenSSH private key'));
      if (!store.relays.relay(b.relay)) return reply.code(400).send(badRequest('/relay', `no relay ${b.relay}`));
      const max = o.relayConfig().max_servers;
      if (store.relays.serverCount() >= max)
        return reply.code(409).send({ error: 'conflict', message: `relay.max_servers (${max}) servers exist already` });
      const secret = o.secretBox().seal(b.password ?? b.privateKey ?? '', b.name);
      const who = whoOf(req);
      const ok = store.relays.addServer({
        name: b.name,
        relay: b.relay,
        host: b.host,
        port: b.port ?? 22,
        username: b.username,
        auth: b.password !== undefined ? 'password' : 'key',
        secret,
        created_by: who,
        created_at: Date.now(),
      });
      if (!ok) return reply.code(409).send({ error: 'conflict', message: `server ${b.name} exists already` });
      if (b.hostKey) store.relays.setHostKey(b.name, b.hostKey);
      record(
        who,
        'server_add',
        `${SERVER_PREFIX}${b.name}`,
        { name: b.name, relay: b.relay, host: b.host, port: b.port ?? 22, username: b.username },
        `SSH server ${b.name} added behind relay ${b.relay}`,
      );
      return reply.code(201).send({ server: serverView(store.relays.server(b.name) as SshServerRow) });
    },
  );

  app.delete(
    '/servers/:name',
    {
      config: { role: 'admin' },
      schema: { params: ServerParamsSchema, response: { 204: Type.Null(), ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const name = req.params.name;
      if (!store.relays.removeServer(name)) return reply.code(404).send(notFound(`no SSH server ${name}`));
      record(whoOf(req), 'server_remove', `${SERVER_PREFIX}${name}`, { name }, `SSH server ${name} removed`);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/servers/:name/trust',
    {
      config: { role: 'admin' },
      schema: { params: ServerParamsSchema, response: { 200: ServerReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const name = req.params.name;
      if (!store.relays.setHostKey(name, null)) return reply.code(404).send(notFound(`no SSH server ${name}`));
      const node = `${SERVER_PREFIX}${name}`;
      const who = whoOf(req);
      o.alerts.resolve(
        alertKey('host_key_changed', node, 'host_key_changed'),
        Date.now(),
        `host key trusted again by ${who}`,
      );
      record(
        who,
        'server_trust',
        node,
        { name },
        `pinned host key of ${name} forgotten; the next connection pins anew`,
      );
      return { server: serverView(store.relays.server(name) as SshServerRow) };
    },
  );
};
