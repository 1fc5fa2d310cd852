/**
 * The relay's SSH pool (agent/relay/pool.ts; docs/links.md "The SSH relay") against an in-process
 * ssh2 server: password and key authentication, one pooled connection reused, idle close, the
 * concurrency limit (busy), the timeout (the remote command is signalled, the channel closed),
 * host keys (reported, a pinned one that differs refused), failures in the seed's error shape.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import ssh2, { type AuthContext, type Connection, type ParsedKey, type ServerChannel } from 'ssh2';
import { fingerprintOf, type PoolConfig, SshPool, Tail } from '../../agent/relay/pool.js';
import type { RelayExecuteData } from '../../common/relay.js';

const { Server, utils } = ssh2;
const log = pino({ level: 'silent' });
/**
 * An ed25519 key pair that ssh2 itself can read back: its generateKeyPairSync strips leading zero
 * bytes of the public key, so about 1 pair in 256 does not parse (mscdex/ssh2#1513, #1390).
 */
function keyPair(): { private: string; public: string } {
  for (;;) {
    const k = utils.generateKeyPairSync('ed25519');
    if (!(utils.parseKey(k.public) instanceof Error) && !(utils.parseKey(k.private) instanceof Error)) return k;
  }
}
const hostKeyA = keyPair();
const hostKeyB = keyPair();
const userKey = keyPair();
const userPub = utils.parseKey(userKey.public) as ParsedKey;
const fpOf = (pub: string) => fingerprintOf((utils.parseKey(pub) as ParsedKey).getPublicSSH());

const CFG: PoolConfig = {
  max_concurrent: 4,
  max_queued: 2,
  max_connections: 4,
  idle_close_ms: 1000,
  connect_timeout_ms: 3000,
  default_timeout_ms: 10_000,
  max_output_bytes: 1024,
};

/** A fake sshd: `echo X`, `fail` (exit 3), `sleep` (until signalled), `big` (4 KiB). */
function fakeSshd(hostKey: string) {
  const state = { connections: 0, signals: [] as string[], open: new Set<Connection>() };
  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    state.connections++;
    state.open.add(client);
    client.on('close', () => state.open.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx: AuthContext) => {
      if (ctx.username !== 'u') return ctx.reject();
      if (ctx.method === 'password' && ctx.password === 'pw') return ctx.accept();
      if (
        ctx.method === 'publickey' &&
        ctx.key.algo === userPub.type &&
        Buffer.compare(ctx.key.data, userPub.getPublicSSH()) === 0
      ) {
        if (!ctx.signature) return ctx.accept();
        if (userPub.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo)) return ctx.accept();
      }
      ctx.reject(['password', 'publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        let running: ReturnType<typeof setTimeout> | null = null;
        let current: ServerChannel | null = null;
        session.on('signal', (_a, _r, info) => {
          state.signals.push(info.name);
          if (running) clearTimeout(running);
          // Killed: the process ends, and with it the channel.
          current?.exit(info.name);
          current?.end();
        });
        session.on('exec', (acc, _rej, info) => {
          const stream = acc();
          if (info.command.startsWith('echo ')) {
            stream.write(`${info.command.slice(5)}\n`);
            stream.exit(0);
            stream.end();
          } else if (info.command === 'fail') {
            stream.stderr.write('it failed\n');
            stream.exit(3);
            stream.end();
          } else if (info.command === 'big') {
            stream.write('x'.repeat(4096));
            stream.exit(0);
            stream.end();
          } else if (info.command.startsWith('sleep')) {
            current = stream;
            running = setTimeout(() => {
              stream.exit(0);
              stream.end();
            }, 30_000);
            stream.on('close', () => running && clearTimeout(running));
          } else {
            stream.exit(127);
            stream.end();
          }
        });
      });
    });
  });
  return { server, state };
}

let a: ReturnType<typeof fakeSshd>;
let b: ReturnType<typeof fakeSshd>;
let portA = 0;
let portB = 0;

before(async () => {
  a = fakeSshd(hostKeyA.private);
  b = fakeSshd(hostKeyB.private);
  await new Promise<void>((r) => a.server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  portA = (a.server.address() as AddressInfo).port;
  portB = (b.server.address() as AddressInfo).port;
});
after(() => {
  for (const c of a.state.open) c.end();
  for (const c of b.state.open) c.end();
  a.server.close();
  b.server.close();
});

let n = 0;
const cmd = (over: Partial<RelayExecuteData>): RelayExecuteData => ({
  commandId: `c${++n}`,
  serverId: 1,
  host: '127.0.0.1',
  port: portA,
  username: 'u',
  password: 'pw',
  command: 'echo hi',
  ...over,
});

describe('relay SSH pool', () => {
  it('runs with a password, reports the host key, reuses one connection', async () => {
    const pool = new SshPool(CFG, log, new Registry());
    const before = a.state.connections;
    const r1 = await pool.run(cmd({ serverId: 10 }));
    const r2 = await pool.run(cmd({ serverId: 10, command: 'echo again' }));
    assert.deepEqual(r1.result, { stdout: 'hi\n', stderr: '', exitCode: 0 });
    assert.equal(r2.result.stdout, 'again\n');
    assert.equal(r1.hostKey, fpOf(hostKeyA.public));
    assert.equal(a.state.connections - before, 1, 'one pooled connection');
    assert.equal(pool.size, 1);
    pool.stop();
  });

  it('runs with a private key; a non-zero exit keeps its code and stderr', async () => {
    const pool = new SshPool(CFG, log, new Registry());
    const { password: _p, ...noPw } = cmd({ serverId: 11, command: 'fail' });
    const r = await pool.run({ ...noPw, privateKey: userKey.private });
    assert.deepEqual(r.result, { stdout: '', stderr: 'it failed\n', exitCode: 3 });
    assert.equal(r.failure, undefined);
    pool.stop();
  });

  it('a wrong password fails in the error shape (auth), without the password in the message', async () => {
    const pool = new SshPool(CFG, log, new Registry());
    const r = await pool.run(cmd({ serverId: 12, password: 'wrong-secret-pw' }));
    assert.equal(r.result.exitCode, 1);
    assert.equal(r.result.stdout, '');
    assert.equal(r.failure, 'auth');
    assert.match(r.result.stderr, /authentication failed/);
    assert.doesNotMatch(r.result.stderr, /wrong-secret-pw/);
    pool.stop();
  });

  it('no credential, or an unreachable port, fails in the error shape', async () => {
    const pool = new SshPool(CFG, log, new Registry());
    const { password: _p, ...none } = cmd({ serverId: 13 });
    const r0 = await pool.run(none);
    assert.equal(r0.failure, 'bad_request');
    assert.equal(r0.result.exitCode, 1);
    const r1 = await pool.run(cmd({ serverId: 14, port: 1 }));
    assert.equal(r1.failure, 'connect');
    assert.equal(r1.result.exitCode, 1);
    pool.stop();
  });

  it('a pinned host key that differs is refused before authenticating', async () => {
    const pool = new SshPool(CFG, log, new Registry());
    const r = await pool.run(cmd({ serverId: 15, port: portB, hostKey: fpOf(hostKeyA.public) }));
    assert.equal(r.failure, 'host_key_changed');
    assert.equal(r.result.exitCode, 1);
    assert.equal(r.hostKey, fpOf(hostKeyB.public));
    // The right pin passes.
    const ok = await pool.run(cmd({ serverId: 15, port: portB, hostKey: fpOf(hostKeyB.public) }));
    assert.equal(ok.result.exitCode, 0);
    // A pooled connection whose key differs from a later pin is refused too.
    const again = await pool.run(cmd({ serverId: 15, port: portB, hostKey: fpOf(hostKeyA.public) }));
    assert.equal(again.failure, 'host_key_changed');
    pool.stop();
  });

  it('the timeout signals the remote command and closes its channel', async () => {
    const pool = new SshPool(CFG, log, new Registry());
    const signals = a.state.signals.length;
    const t0 = Date.now();
    const r = await pool.run(cmd({ serverId: 16, command: 'sleep 30', timeout: 300 }));
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(r.failure, 'timeout');
    assert.equal(r.result.exitCode, 1);
    assert.match(r.result.stderr, /timed out after/);
    // The signal reaches the server.
    for (let i = 0; i < 50 && a.state.signals.length === signals; i++) await new Promise((x) => setTimeout(x, 20));
    assert.equal(a.state.signals[signals], 'KILL');
    // The connection still serves.
    assert.equal((await pool.run(cmd({ serverId: 16 }))).result.exitCode, 0);
    pool.stop();
  });

  it('past max_concurrent plus max_queued a command fails at once as busy', async () => {
    const pool = new SshPool({ ...CFG, max_concurrent: 1, max_queued: 1 }, log, new Registry());
    const long = pool.run(cmd({ serverId: 17, command: 'sleep', timeout: 800 }));
    await new Promise((x) => setTimeout(x, 100));
    const queued = pool.run(cmd({ serverId: 17 }));
    const busy = await pool.run(cmd({ serverId: 17 }));
    assert.equal(busy.failure, 'busy');
    assert.equal(busy.result.exitCode, 1);
    assert.equal((await long).failure, 'timeout');
    assert.equal((await queued).result.exitCode, 0);
    pool.stop();
  });

  it('closes an idle connection after idle_close_ms', async () => {
    const pool = new SshPool({ ...CFG, idle_close_ms: 1000 }, log, new Registry());
    await pool.run(cmd({ serverId: 18 }));
    assert.equal(pool.size, 1);
    await new Promise((x) => setTimeout(x, 1400));
    assert.equal(pool.size, 0);
    pool.stop();
  });

  it('keeps the tail of a big output (ssh.max_output_bytes)', async () => {
    const pool = new SshPool(CFG, log, new Registry());
    const r = await pool.run(cmd({ serverId: 19, command: 'big' }));
    assert.equal(r.result.stdout.length, 1024);
    pool.stop();
    const t = new Tail(4);
    t.push(Buffer.from('abc'));
    t.push(Buffer.from('defg'));
    assert.equal(t.text(), 'defg');
    assert.equal(t.cut, 3);
  });
});
