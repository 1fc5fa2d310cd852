/**
 * The `relays` and `ssh_servers` tables (docs/links.md "The SSH relay"): relays kept with the
 * sha256 of their apiKey (never the key) and their address allowlist; SSH servers with their
 * credential sealed by manager/relay/secrets.ts (never in clear) and their pinned host key.
 * Failed writes are counted as `relay`.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { inTransaction, rowsChanged, type StoreCore, type TableModule } from './core.js';

/** A stored relay; times in ms since the epoch. */
export interface RelayRow {
  id: string;
  /** sha256 of the apiKey, hex. */
  hash: string;
  /** CIDRs or addresses the relay may connect from; [] = any. */
  allow: string[];
  created_by: string;
  created_at: number;
  last_seen_at: number | null;
}

/** A stored SSH server. `secret` is sealed (manager/relay/secrets.ts). */
export interface SshServerRow {
  /** Row id: the `serverId` sent to the relay. */
  id: number;
  name: string;
  relay: string;
  host: string;
  port: number;
  username: string;
  auth: 'password' | 'key';
  secret: string;
  /** Pinned host key fingerprint (`SHA256:...`), null until the first connection. */
  host_key: string | null;
  created_by: string;
  created_at: number;
}

function statements(db: DatabaseSync) {
  return {
    get: db.prepare('SELECT * FROM relays WHERE id = ?'),
    list: db.prepare('SELECT * FROM relays ORDER BY id'),
    count: db.prepare('SELECT count(*) AS n FROM relays'),
    insert: db.prepare(
      'INSERT INTO relays (id, hash, allow, created_by, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING',
    ),
    delete: db.prepare('DELETE FROM relays WHERE id = ?'),
    deleteServersOf: db.prepare('DELETE FROM ssh_servers WHERE relay = ?'),
    seen: db.prepare('UPDATE relays SET last_seen_at = ? WHERE id = ?'),
    server: db.prepare('SELECT * FROM ssh_servers WHERE name = ?'),
    servers: db.prepare('SELECT * FROM ssh_servers ORDER BY name'),
    serverCount: db.prepare('SELECT count(*) AS n FROM ssh_servers'),
    insertServer: db.prepare(
      'INSERT INTO ssh_servers (name, relay, host, port, username, auth, secret, host_key, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING',
    ),
    deleteServer: db.prepare('DELETE FROM ssh_servers WHERE name = ?'),
    hostKey: db.prepare('UPDATE ssh_servers SET host_key = ? WHERE name = ?'),
  } satisfies Record<string, StatementSync>;
}

type RawRelay = Omit<RelayRow, 'allow'> & { allow: string };

/** The relay tables. */
export class RelaysTable implements TableModule {
  readonly tables = ['relays', 'ssh_servers'];
  private readonly s: ReturnType<typeof statements>;

  constructor(private readonly core: StoreCore) {
    this.s = statements(core.db);
  }

  private relayOf(r: RawRelay | undefined): RelayRow | undefined {
    if (!r) return undefined;
    let allow: string[] = [];
    try {
      const v = JSON.parse(r.allow) as unknown;
      if (Array.isArray(v)) allow = v.filter((x): x is string => typeof x === 'string');
    } catch {
      // A damaged allowlist admits no address rather than any.
      allow = ['0.0.0.0/32'];
    }
    return { ...r, allow };
  }

  /** Relay `id`, or undefined. */
  relay(id: string): RelayRow | undefined {
    return this.relayOf(this.s.get.get(id) as RawRelay | undefined);
  }

  /** Every relay, by id. */
  relays(): RelayRow[] {
    return (this.s.list.all() as unknown as RawRelay[]).map((r) => this.relayOf(r) as RelayRow);
  }

  /** How many relays there are. */
  relayCount(): number {
    return Number((this.s.count.get() as { n: number }).n);
  }

  /** Adds a relay; false when the id exists (or the write failed). */
  addRelay(r: Omit<RelayRow, 'last_seen_at'>): boolean {
    return this.core.guard(
      'relay',
      false,
      () => rowsChanged(this.s.insert.run(r.id, r.hash, JSON.stringify(r.allow), r.created_by, r.created_at)) === 1,
    );
  }

  /** Removes relay `id` and the servers behind it; false when there is none. */
  removeRelay(id: string): boolean {
    return this.core.guard('relay', false, () =>
      inTransaction(this.core.db, () => {
        this.s.deleteServersOf.run(id);
        return rowsChanged(this.s.delete.run(id)) === 1;
      }),
    );
  }

  /** Records that relay `id` connected at `at` (ms). */
  touchRelay(id: string, at: number): void {
    this.core.guard('relay', undefined, () => this.s.seen.run(at, id));
  }

  /** Server `name`, or undefined. */
  server(name: string): SshServerRow | undefined {
    return this.s.server.get(name) as SshServerRow | undefined;
  }

  /** Every server, by name. */
  servers(): SshServerRow[] {
    return this.s.servers.all() as unknown as SshServerRow[];
  }

  /** How many servers there are. */
  serverCount(): number {
    return Number((this.s.serverCount.get() as { n: number }).n);
  }

  /** Adds a server (its secret sealed); false when the name exists or the relay does not. */
  addServer(r: Omit<SshServerRow, 'id' | 'host_key'>): boolean {
    return this.core.guard(
      'relay',
      false,
      () =>
        rowsChanged(
          this.s.insertServer.run(
            r.name,
            r.relay,
            r.host,
            r.port,
            r.username,
            r.auth,
            r.secret,
            r.created_by,
            r.created_at,
          ),
        ) === 1,
    );
  }

  /** Removes server `name`; false when there is none. */
  removeServer(name: string): boolean {
    return this.core.guard('relay', false, () => rowsChanged(this.s.deleteServer.run(name)) === 1);
  }

  /** Pins (or, with null, forgets) server `name`'s host key fingerprint. */
  setHostKey(name: string, fingerprint: string | null): boolean {
    return this.core.guard('relay', false, () => rowsChanged(this.s.hostKey.run(fingerprint, name)) === 1);
  }
}
