/**
 * The manager database's schema, as versioned migrations. `PRAGMA user_version` holds the number
 * of migrations applied; each runs once, in order, inside a transaction. A migration is never
 * edited once released: a change is a new migration appended to the list.
 *
 * Times are ms since the epoch (INTEGER). JSON documents are TEXT.
 */

/** One schema step. */
export interface Migration {
  /** What it does, for the log. */
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'nodes, history, deployments, components, alerts, alert rules',
    sql: `
      CREATE TABLE nodes (
        id          TEXT PRIMARY KEY,           -- box-slot-cpu
        box_id      INTEGER NOT NULL,
        slot_id     INTEGER NOT NULL,
        cpu_id      INTEGER NOT NULL,
        host_ip     TEXT NOT NULL,              -- the board whose reports the node shows
        claimants   TEXT NOT NULL,              -- JSON array of host_ips claiming the position
        hostname    TEXT,
        heartbeat   TEXT,                       -- JSON: the latest heartbeat data
        state       TEXT NOT NULL,              -- online | suspect | offline
        state_since INTEGER NOT NULL,
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL
      );

      CREATE TABLE history (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        INTEGER NOT NULL,
        node      TEXT,
        kind      TEXT NOT NULL,                -- state | operation | component | manager
        operation TEXT NOT NULL,
        args      TEXT,                         -- JSON
        result    INTEGER,
        message   TEXT,
        who       TEXT NOT NULL,
        ref       TEXT
      );
      CREATE INDEX history_node ON history (node, id);
      CREATE INDEX history_at ON history (at);
      CREATE INDEX history_ref ON history (ref) WHERE ref IS NOT NULL;

      CREATE TABLE deployments (
        id          TEXT PRIMARY KEY,
        node        TEXT NOT NULL,
        at          INTEGER NOT NULL,
        finished_at INTEGER,
        record      TEXT NOT NULL               -- JSON DeploymentRecord
      );
      CREATE INDEX deployments_at ON deployments (at);

      CREATE TABLE components (
        node       TEXT NOT NULL,
        uuid       TEXT NOT NULL,
        type       TEXT,                        -- docker | bar, when the manager started it
        name       TEXT,
        cid        TEXT,                        -- container id or bar pid
        state      TEXT,                        -- last reported state, GONE when no longer reported; NULL before the first report
        deployment TEXT,                        -- the last deployment id that touched it
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        PRIMARY KEY (node, uuid)
      );

      CREATE TABLE alerts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        key         TEXT NOT NULL,              -- what the alert is about: kind|node|rule|instance
        kind        TEXT NOT NULL,
        rule        TEXT NOT NULL,
        severity    TEXT NOT NULL,
        node        TEXT,
        metric      TEXT,
        instance    TEXT,
        value       REAL,
        threshold   REAL,
        op          TEXT,
        message     TEXT NOT NULL,
        source      TEXT NOT NULL,              -- manager | agent
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL,
        resolved_at INTEGER
      );
      CREATE UNIQUE INDEX alerts_open_key ON alerts (key) WHERE resolved_at IS NULL;
      CREATE INDEX alerts_node ON alerts (node, id);
      CREATE INDEX alerts_resolved ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

      CREATE TABLE alert_rules (
        name       TEXT PRIMARY KEY,
        source     TEXT NOT NULL,               -- config | api
        rule       TEXT NOT NULL,               -- JSON { metric, op, threshold, for_ms, severity, enabled }
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    name: 'users, sessions, api tokens (docs/operations.md "Users and access")',
    sql: `
      CREATE TABLE users (
        name       TEXT PRIMARY KEY,
        role       TEXT NOT NULL,               -- viewer | operator | admin
        password   TEXT NOT NULL,               -- PHC string: $argon2id$v=19$m=..,t=..,p=..$salt$hash
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );

      CREATE TABLE sessions (
        prefix     TEXT PRIMARY KEY,            -- the token's first characters (its id, not secret)
        hash       TEXT NOT NULL,               -- sha256 of the whole token, hex
        user       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        address    TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX sessions_expires ON sessions (expires_at);

      CREATE TABLE api_tokens (
        prefix       TEXT PRIMARY KEY,
        hash         TEXT NOT NULL,
        name         TEXT NOT NULL UNIQUE,
        role         TEXT NOT NULL,
        user         TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        last_used_at INTEGER
      );
    `,
  },
  {
    name: 'business instances: specs, managed components, instance history (docs/scheduling.md "Instances")',
    sql: `
      CREATE TABLE instances (
        id         TEXT PRIMARY KEY,            -- instance_id
        status     TEXT NOT NULL,               -- running | stopped | removing
        version    INTEGER NOT NULL,
        spec       TEXT NOT NULL,               -- JSON: the applied InstanceSpec
        state      TEXT NOT NULL,               -- JSON: group versions, uuid serial, restart counters
        who        TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );

      CREATE TABLE instance_allocs (
        uuid        TEXT PRIMARY KEY,           -- component uuid: <instance>.<group>.<index>.<serial>
        instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
        record      TEXT NOT NULL,              -- JSON: group, index, node, version, phase, times, reason
        updated_at  INTEGER NOT NULL
      );
      CREATE INDEX instance_allocs_instance ON instance_allocs (instance_id);

      CREATE TABLE instance_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id TEXT NOT NULL,
        at          INTEGER NOT NULL,
        action      TEXT NOT NULL,
        grp         TEXT,
        idx         INTEGER,
        node        TEXT,
        uuid        TEXT,
        message     TEXT NOT NULL,
        who         TEXT NOT NULL
      );
      CREATE INDEX instance_events_instance ON instance_events (instance_id, id);
    `,
  },
  {
    name: 'tasks, their per-node results and fetched files, the command-set catalog (docs/exec.md)',
    sql: `
      CREATE TABLE tasks (
        id          TEXT PRIMARY KEY,           -- uuid v4, also the task id on the agents
        at          INTEGER NOT NULL,
        finished_at INTEGER,
        who         TEXT NOT NULL,
        state       TEXT NOT NULL,
        record      TEXT NOT NULL               -- JSON TaskRecord without results
      );
      CREATE INDEX tasks_at ON tasks (at);

      CREATE TABLE task_nodes (
        task_id   TEXT NOT NULL,
        node      TEXT NOT NULL,
        at        INTEGER NOT NULL,             -- the task's submit time (retention)
        state     TEXT NOT NULL,
        exit_code INTEGER,
        result    TEXT NOT NULL,                -- JSON NodeResult
        PRIMARY KEY (task_id, node)
      );
      CREATE INDEX task_nodes_at ON task_nodes (at);

      CREATE TABLE task_files (
        task_id TEXT NOT NULL,
        node    TEXT NOT NULL,
        step    INTEGER NOT NULL,
        at      INTEGER NOT NULL,
        path    TEXT NOT NULL,
        size    INTEGER NOT NULL,
        sha256  TEXT NOT NULL,
        content BLOB NOT NULL,
        PRIMARY KEY (task_id, node, step)
      );

      CREATE TABLE commands (
        name           TEXT PRIMARY KEY,
        argument_count INTEGER NOT NULL,
        generate_file  TEXT,
        sha256         TEXT NOT NULL,
        size           INTEGER NOT NULL,
        content        BLOB NOT NULL,
        who            TEXT NOT NULL,
        updated_at     INTEGER NOT NULL
      );
    `,
  },
  {
    name: 'link tokens of the WebSocket node link (docs/links.md "Link tokens")',
    sql: `
      CREATE TABLE link_tokens (
        id           TEXT PRIMARY KEY,          -- short public id (lt_...), never the secret
        hash         TEXT NOT NULL UNIQUE,      -- sha256 of the whole token, hex
        node         TEXT,                      -- the one node id it may link, NULL = any
        created_by   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER
      );
    `,
  },
  {
    name: 'the link state of nodes on the WebSocket node link (docs/links.md "Linked nodes")',
    sql: `
      -- JSON {interval_ms, hostname?, os_info?, metrics?} while the node reports over the link;
      -- NULL for a multicast board. Put back at a restart, so a linked node is known as one at once.
      ALTER TABLE nodes ADD COLUMN link TEXT;
    `,
  },
];
