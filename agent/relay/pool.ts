/**
 * The relay's SSH side (docs/links.md "The SSH relay"): runs one `execute_command` over SSH
 * (`ssh2`, pure JavaScript) and gives its `command_result`, failures in the relay
 * specification's error shape (exitCode 1, the message in stderr).
 *
 * - **Pool.** One connection per `serverId`, reused by later commands; a command whose
 *   connection details or credential differ from the pooled connection's gets a new one. A
 *   connection unused for `ssh.idle_close_ms` is closed; past `ssh.max_connections` the idlest
 *   idle one is closed first. At most {@link PER_CONNECTION} channels at once on one connection
 *   (sshd's MaxSessions is 10), the others wait.
 * - **Concurrency.** At most `ssh.max_concurrent` commands run at once, `ssh.max_queued` wait;
 *   one more fails at once (`failure: busy`).
 * - **Timeout.** At the command's `timeout` (ms; `ssh.default_timeout_ms` when it gives none) the
 *   remote command is signalled (KILL; again every 200 ms, 5 times, as sshd ignores a signal that
 *   comes before the process has started) and its channel closed; the result is a failure
 *   (`failure: timeout`) at once.
 * - **Host keys.** The fingerprint of the key the server offers (`SHA256:<base64>`, as OpenSSH
 *   prints it) is reported with every result (`hostKey`); when the command carries a pinned one
 *   (`hostKey`) a different key is refused before authenticating (`failure: host_key_changed`).
 *
 * Nothing here logs a password, a private key or a command's output.
 */
import { createHash } from 'node:crypto';
import ssh2, { type Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { Logger } from '../../common/log.js';
import { type RelayExecuteData, type RelayFailure, type RelayResultData, relayFailure } from '../../common/relay.js';
import { Counter, Gauge, type Registry } from '../prom.js';
import type { RelayConfig } from './config.js';

/** Channels open at once on one SSH connection (below sshd's default MaxSessions, 10). */
export const PER_CONNECTION = 8;

/** At a timeout the signal is sent this many times, this far apart, before the channel is closed. */
const KILL_TRIES = 5;
const KILL_EVERY_MS = 200;

/** The OpenSSH fingerprint of a raw public key blob: `SHA256:` and unpadded base64. */
export function fingerprintOf(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** A bounded tail buffer: keeps the last `max` bytes written. */
export class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes dropped from the front. */
  cut = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max && this.chunks.length > 0) {
      const first = this.chunks[0] as Buffer;
      const over = this.size - this.max;
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
        this.cut += first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
        this.cut += over;
      }
    }
  }
  text(): string {
    return Buffer.concat(this.chunks)
      .toString('utf8')
      .replace(/^\uFFFD+/, '');
  }
}

/** What a connection was opened with: a command with other details needs another connection. */
function identityOf(d: RelayExecuteData): string {
  return createHash('sha256')
    .update(JSON.stringify([d.host, d.port, d.username, d.password ?? null, d.privateKey ?? null]))
    .digest('hex');
}

interface Conn {
  serverId: number;
  identity: string;
  client: Client;
  ready: Promise<void>;
  /** The fingerprint the server offered, once seen. */
  fingerprint: string | null;
  active: number;
  waiters: (() => void)[];
  idleTimer: NodeJS.Timeout | null;
  lastUsed: number;
  closed: boolean;
}

/** A connection failure, with its kind. */
class SshFailure extends Error {
  constructor(
    readonly failure: RelayFailure,
    message: string,
    readonly hostKey?: string,
  ) {
    super(message);
  }
}

/** Metrics of the pool (docs/operations.md "Relay metrics"). */
function poolMetrics(registry: Registry, pool: SshPool) {
  const registers = [registry];
  return {
    connections: new Gauge({
      name: 'muster_relay_ssh_connections',
      help: 'SSH connections in the pool',
      registers,
      collect() {
        this.set(pool.size);
      },
    }),
    running: new Gauge({
      name: 'muster_relay_commands_running',
      help: 'Commands running over SSH now',
      registers,
      collect() {
        this.set(pool.running);
      },
    }),
    queued: new Gauge({
      name: 'muster_relay_commands_queued',
      help: 'Commands waiting for a slot (ssh.max_concurrent)',
      registers,
      collect() {
        this.set(pool.queued);
      },
    }),
    commands: new Counter({
      name: 'muster_relay_commands_total',
      help: 'Commands ended, by outcome: ok, exit (non-zero exit code), timeout, connect, auth, host_key_changed, busy, channel, bad_request',
      labelNames: ['outcome'],
      registers,
    }),
    opened: new Counter({
      name: 'muster_relay_ssh_connects_total',
      help: 'SSH connections opened, by outcome: ok, failed',
      labelNames: ['outcome'],
      registers,
    }),
    closed: new Counter({
      name: 'muster_relay_ssh_closed_total',
      help: 'SSH connections closed by the relay, by reason: idle, max_connections, replaced, stop',
      labelNames: ['reason'],
      registers,
    }),
  };
}

/** The pool's settings: the relay config's `ssh` section. */
export type PoolConfig = RelayConfig['ssh'];

/** The SSH connection pool and the command runner. */
export class SshPool {
  private readonly conns = new Map<number, Conn>();
  private active = 0;
  private readonly queue: (() => void)[] = [];
  private readonly m: ReturnType<typeof poolMetrics>;
  private stopped = false;

  constructor(
    private readonly cfg: PoolConfig,
    private readonly log: Logger,
    metrics: Registry,
    /** The ssh2 Client constructor (tests give another). */
    private readonly makeClient: () => Client = () => new ssh2.Client(),
  ) {
    this.m = poolMetrics(metrics, this);
  }

  /** Connections in the pool. */
  get size(): number {
    return this.conns.size;
  }
  /** Commands running. */
  get running(): number {
    return this.active;
  }
  /** Commands waiting for a slot. */
  get queued(): number {
    return this.queue.length;
  }

  /** Closes every connection; later commands fail. */
  stop(): void {
    this.stopped = true;
    for (const c of [...this.conns.values()]) this.drop(c, 'stop');
    for (const w of this.queue.splice(0)) w();
  }

  /** Runs one command; never throws (a failure is a result in the error shape). */
  async run(d: RelayExecuteData): Promise<RelayResultData> {
    if (d.password === undefined && d.privateKey === undefined) {
      this.m.commands.inc({ outcome: 'bad_request' });
      return relayFailure(d.commandId, 'neither password nor privateKey given', 'bad_request');
    }
    if (this.active >= this.cfg.max_concurrent) {
      if (this.queue.length >= this.cfg.max_queued) {
        this.m.commands.inc({ outcome: 'busy' });
        return relayFailure(
          d.commandId,
          `the relay is busy: ${this.active} commands running and ${this.queue.length} waiting (ssh.max_concurrent, ssh.max_queued)`,
          'busy',
        );
      }
      await new Promise<void>((r) => this.queue.push(r));
    }
    if (this.stopped) return relayFailure(d.commandId, 'the relay is stopping', 'connect');
    this.active++;
    try {
      const r = await this.runOnPool(d);
      this.m.commands.inc({
        outcome: r.failure ?? (r.result.exitCode === 0 ? 'ok' : 'exit'),
      });
      return r;
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }

  private async runOnPool(d: RelayExecuteData): Promise<RelayResultData> {
    const timeout = d.timeout ?? this.cfg.default_timeout_ms;
    const deadline = Date.now() + timeout;
    let conn: Conn;
    try {
      conn = await this.connection(d);
    } catch (err) {
      const f = err instanceof SshFailure ? err : new SshFailure('connect', (err as Error).message);
      return {
        ...relayFailure(d.commandId, `ssh ${d.username}@${d.host}:${d.port}: ${f.message}`, f.failure),
        ...(f.hostKey ? { hostKey: f.hostKey } : {}),
      };
    }
    const hostKey = conn.fingerprint ? { hostKey: conn.fingerprint } : {};
    if (d.hostKey && conn.fingerprint !== d.hostKey) {
      return {
        ...relayFailure(
          d.commandId,
          `ssh ${d.host}:${d.port}: host key mismatch: pinned ${d.hostKey}, the server offers ${conn.fingerprint}; refused`,
          'host_key_changed',
        ),
        ...hostKey,
      };
    }
    // A channel slot on this connection.
    if (conn.active >= PER_CONNECTION) await new Promise<void>((r) => conn.waiters.push(r));
    conn.active++;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    conn.idleTimer = null;
    try {
      const left = Math.max(1, deadline - Date.now());
      const r = await this.exec(conn, d, left);
      return { ...r, ...hostKey };
    } finally {
      conn.active--;
      conn.lastUsed = Date.now();
      conn.waiters.shift()?.();
      if (conn.active === 0 && !conn.closed) {
        conn.idleTimer = setTimeout(() => {
          if (conn.active === 0) this.drop(conn, 'idle');
        }, this.cfg.idle_close_ms);
        conn.idleTimer.unref();
      }
    }
  }

  private drop(c: Conn, reason: string): void {
    if (this.conns.get(c.serverId) === c) this.conns.delete(c.serverId);
    if (c.idleTimer) clearTimeout(c.idleTimer);
    if (!c.closed) {
      c.closed = true;
      this.m.closed.inc({ reason });
      c.client.end();
    }
  }

  /** The pooled connection for the command's server, opened when there is none (or it differs). */
  private async connection(d: RelayExecuteData): Promise<Conn> {
    const identity = identityOf(d);
    const had = this.conns.get(d.serverId);
    if (had && !had.closed && had.identity === identity) {
      await had.ready;
      return had;
    }
    if (had) this.drop(had, 'replaced');
    if (this.conns.size >= this.cfg.max_connections) {
      const idle = [...this.conns.values()].filter((c) => c.active === 0).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (idle) this.drop(idle, 'max_connections');
    }
    const client = this.makeClient();
    let offered: string | null = null;
    let mismatch = false;
    const c: Conn = {
      serverId: d.serverId,
      identity,
      client,
      ready: Promise.resolve(),
      fingerprint: null,
      active: 0,
      waiters: [],
      idleTimer: null,
      lastUsed: Date.now(),
      closed: false,
    };
    const config: ConnectConfig = {
      host: d.host,
      port: d.port,
      username: d.username,
      readyTimeout: this.cfg.connect_timeout_ms,
      keepaliveInterval: 30_000,
      hostVerifier: (key: Buffer) => {
        offered = fingerprintOf(key);
        c.fingerprint = offered;
        if (d.hostKey && d.hostKey !== offered) {
          mismatch = true;
          return false;
        }
        return true;
      },
      ...(d.password !== undefined ? { password: d.password } : {}),
      ...(d.privateKey !== undefined ? { privateKey: d.privateKey } : {}),
      tryKeyboard: false,
    };
    c.ready = new Promise<void>((resolve, reject) => {
      let settled = false;
      client.once('ready', () => {
        settled = true;
        this.m.opened.inc({ outcome: 'ok' });
        resolve();
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (!settled) {
          settled = true;
          this.m.opened.inc({ outcome: 'failed' });
          if (mismatch) {
            reject(
              new SshFailure(
                'host_key_changed',
                `host key mismatch: pinned ${d.hostKey}, the server offers ${offered}; refused`,
                offered ?? undefined,
              ),
            );
          } else if (err.level === 'client-authentication') {
            reject(new SshFailure('auth', 'authentication failed', offered ?? undefined));
          } else reject(new SshFailure('connect', err.message, offered ?? undefined));
        } else {
          this.log.warn({ server: d.serverId, err: err.message }, 'SSH connection error');
        }
      });
      client.on('close', () => {
        if (!settled) {
          settled = true;
          reject(new SshFailure(mismatch ? 'host_key_changed' : 'connect', 'connection closed', offered ?? undefined));
        }
        c.closed = true;
        if (this.conns.get(c.serverId) === c) this.conns.delete(c.serverId);
        if (c.idleTimer) clearTimeout(c.idleTimer);
      });
    });
    this.conns.set(d.serverId, c);
    try {
      client.connect(config);
    } catch (err) {
      this.drop(c, 'replaced');
      throw new SshFailure('bad_request', (err as Error).message);
    }
    try {
      await c.ready;
    } catch (err) {
      this.drop(c, 'replaced');
      throw err;
    }
    return c;
  }

  /** Runs the command on a ready connection within `timeoutMs`. */
  private exec(conn: Conn, d: RelayExecuteData, timeoutMs: number): Promise<RelayResultData> {
    return new Promise<RelayResultData>((resolve) => {
      conn.client.exec(d.command, (err: Error | undefined, stream: ClientChannel) => {
        if (err) {
          resolve(
            relayFailure(d.commandId, `ssh ${d.host}:${d.port}: cannot open a channel: ${err.message}`, 'channel'),
          );
          return;
        }
        const out = new Tail(this.cfg.max_output_bytes);
        const errOut = new Tail(this.cfg.max_output_bytes);
        let done = false;
        let closed = false;
        const timer = setTimeout(() => {
          if (done) return;
          done = true;
          // sshd leaves a command running when only its channel closes, and ignores a signal
          // that comes before its process is started: the signal is sent again a few times
          // (KILL_TRIES × KILL_EVERY_MS) until the channel ends, then the channel is closed.
          let tries = 0;
          const kill = () => {
            if (closed) return;
            try {
              stream.signal('KILL');
            } catch {
              // the channel is closing already
            }
            if (++tries < KILL_TRIES) setTimeout(kill, KILL_EVERY_MS).unref();
            else stream.close();
          };
          kill();
          resolve(
            relayFailure(
              d.commandId,
              `command timed out after ${timeoutMs} ms: signalled (KILL) and its channel closed`,
              'timeout',
            ),
          );
        }, timeoutMs);
        stream.on('data', (b: Buffer) => out.push(b));
        stream.stderr.on('data', (b: Buffer) => errOut.push(b));
        stream.on('close', (code: number | null | undefined, signal?: string) => {
          closed = true;
          clearTimeout(timer);
          if (done) return;
          done = true;
          const stderr = errOut.text();
          resolve({
            commandId: d.commandId,
            result: {
              stdout: out.text(),
              stderr: signal
                ? `${stderr}${stderr && !stderr.endsWith('\n') ? '\n' : ''}killed by signal ${signal}`
                : stderr,
              exitCode: typeof code === 'number' ? code : 1,
            },
          });
        });
      });
    });
  }
}
