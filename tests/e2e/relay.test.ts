/**
 * The SSH relay on real parts (docs/links.md "The SSH relay"): a real sshd (Debian
 * openssh-server, its own config and host key, root with a password and an authorized key in a
 * private copy of /etc/shadow bind-mounted in its own mount namespace) in namespace `rl-ssh`, the
 * manager in `rl-mgr` with no route to it, the relay (`muster relay`) in `rl-relay` on both
 * segments (no forwarding):
 *
 * - commands with a password and with a key, through `muster exec --target server:NAME` and
 *   `relay:r1`, recorded in the task results; the host key pinned on first use;
 * - a timeout: the remote command (of a non-root user: sshd signals only privilege-separated
 *   sessions) is killed, no process left, and the task records `timeout`;
 * - a wrong host key (sshd's key regenerated after first use) refused, alerted; trusted again;
 * - the relay killed mid-command and restarted: the command is reported failed (interrupted),
 *   exactly one result, never lost silently;
 * - a short and a wrong apiKey refused (401), an address outside the allowlist refused (403);
 * - a grep of every log and output (manager, relay, sshd, CLI) and of the database for the
 *   password and the private key: nothing.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  adminToken,
  type Proc,
  ROOT,
  runMuster,
  sets,
  startMuster,
  startProcess,
  waitFor,
} from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { deleteNamespace, run } from '../helpers/netns.js';

const NS = { mgr: 'rl-mgr', relay: 'rl-relay', ssh: 'rl-ssh' };
const IP = { mgr: '198.18.21.1', relayM: '198.18.21.2', relayS: '198.18.22.1', ssh: '198.18.22.2' };
const PORT = 3926;

/** The finished task a `muster exec --json` printed (from the line `{` to the line `}`). */
function taskOf(output: string): {
  id: string;
  state: string;
  results: {
    node: string;
    state: string;
    exit_code: number | null;
    message: string;
    steps: { stdout_tail: string; stderr_tail: string }[];
  }[];
} {
  const lines = output.split('\n');
  const start = lines.indexOf('{');
  const end = lines.indexOf('}', start);
  assert.ok(start >= 0 && end > start, `no task JSON in:\n${output}`);
  return JSON.parse(lines.slice(start, end + 1).join('\n'));
}

const inNs = (ns: string, cmd: string, args: string[]) => run('ip', ['netns', 'exec', ns, cmd, ...args]);
const execFileP = promisify(execFile);

/**
 * A REST call from inside a namespace (plain node, no CLI start-up): env M (method), U (url), B
 * (JSON body), T (token); with W=1 the answer is a task that is then followed until it ends.
 */
const API_SCRIPT = `
const h = { authorization: 'Bearer ' + process.env.T, 'content-type': 'application/json' };
let r = await fetch(process.env.U, { method: process.env.M, headers: h, body: process.env.B || undefined });
let body = await r.text();
if (process.env.W === '1' && r.status === 202) {
  const id = JSON.parse(body).task.id;
  for (;;) {
    await new Promise((x) => setTimeout(x, 200));
    r = await fetch(new URL('/api/v1/tasks/' + id, process.env.U), { headers: h });
    body = await r.text();
    if (JSON.parse(body).task.finished_at) break;
  }
}
console.log(JSON.stringify({ status: r.status, body }));
`;

/** A WebSocket upgrade to /proxy from the relay's namespace: the HTTP status it got (101 = accepted). */
function probe(proxyId: string, apiKey: string): number {
  const script = `const W=require('ws');const u=new URL('ws://${IP.mgr}:${PORT}/proxy');u.searchParams.set('proxyId',process.env.P);u.searchParams.set('apiKey',process.env.K);const w=new W(u);w.on('open',()=>{console.log(101);process.exit(0)});w.on('unexpected-response',(q,r)=>{console.log(r.statusCode);process.exit(0)});w.on('error',e=>{console.log(0);process.exit(0)})`;
  const out = execFileSync('ip', ['netns', 'exec', NS.relay, process.execPath, '-e', script], {
    cwd: ROOT,
    env: { ...process.env, P: proxyId, K: apiKey },
    encoding: 'utf8',
    timeout: 15_000,
  });
  return Number(out.trim());
}

describe(
  'the SSH relay: a real sshd the manager cannot reach',
  needs(
    missingRoot(),
    missingCommand('ip'),
    missingCommand('/usr/sbin/sshd'),
    missingCommand('ssh-keygen'),
    missingCommand('unshare'),
  ),
  () => {
    let tmp: string;
    let manager: Proc;
    let relay: Proc;
    let relay2: Proc | undefined;
    let sshd: Proc;
    let sshd2: Proc | undefined;
    let password: string;
    let privateKey: string;
    let keyFile: string;
    let relayKeyFile: string;
    const cliOutputs: string[] = [];
    const base = `http://${IP.mgr}:${PORT}`;
    const logs = () =>
      `--- manager:\n${manager?.output()}\n--- relay:\n${relay?.output()}\n--- relay 2:\n${relay2?.output() ?? ''}\n--- sshd:\n${sshd?.output()}\n${sshd2?.output() ?? ''}`;
    const cli = async (args: string[], timeoutMs = 30_000) => {
      const r = await runMuster(['--manager', base, ...args], { netns: NS.mgr, timeoutMs });
      cliOutputs.push(r.output);
      return r;
    };
    /** A REST call as the test admin from the manager's namespace; `wait` follows a submitted task to its end. */
    const api = async <T = unknown>(method: string, url: string, body?: unknown, wait = false) => {
      const { stdout } = await execFileP(
        'ip',
        ['netns', 'exec', NS.mgr, process.execPath, '--input-type=module', '-e', API_SCRIPT],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            M: method,
            U: `${base}/api/v1${url}`,
            B: body === undefined ? '' : JSON.stringify(body),
            T: await adminToken(base, NS.mgr),
            W: wait ? '1' : '0',
          },
          timeout: 60_000,
        },
      );
      const r = JSON.parse(stdout.trim().split('\n').at(-1) as string) as { status: number; body: string };
      cliOutputs.push(r.body);
      return { status: r.status, body: (r.body ? JSON.parse(r.body) : null) as T };
    };
    type Task = ReturnType<typeof taskOf>;
    const task = async (target: string, command: string, timeout?: string): Promise<Task> => {
      const r = await api<{ task: Task }>(
        'POST',
        '/tasks',
        { target, steps: [{ command_content: command }], ...(timeout ? { timeout } : {}) },
        true,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.task;
    };
    const startSshd = (): Proc => {
      const cfg = path.join(tmp, 'sshd', 'sshd_config');
      const shadow = path.join(tmp, 'sshd', 'shadow');
      return startProcess('ip', [
        'netns',
        'exec',
        NS.ssh,
        'unshare',
        '--mount',
        'sh',
        '-c',
        `mount --bind ${shadow} /etc/shadow && mount --bind ${path.join(tmp, 'sshd', 'passwd')} /etc/passwd && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f ${cfg}`,
      ]);
    };
    const startRelay = (): Proc =>
      startMuster(
        [
          'relay',
          ...sets({
            id: 'r1',
            manager_url: `ws://${IP.mgr}:${PORT}/proxy`,
            api_key_file: relayKeyFile,
            'ssh.idle_close_ms': 1000,
            'ssh.connect_timeout_ms': 5000,
            ping_interval_ms: 1000,
            'metrics.port': 0,
          }),
        ],
        { netns: NS.relay },
      );
    const hostKeyFp = () =>
      (run('ssh-keygen', ['-lf', path.join(tmp, 'sshd', 'host_ed25519.pub')]).split(' ')[1] as string).trim();
    const relayConnected = async () => {
      const r = await api<{ relays: { id: string; connected: boolean }[] }>('GET', '/relays');
      return r.status === 200 && r.body.relays.some((x) => x.id === 'r1' && x.connected);
    };

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-relay-'));
      chmodSync(tmp, 0o755);
      for (const ns of Object.values(NS)) deleteNamespace(ns);
      for (const ns of Object.values(NS)) {
        run('ip', ['netns', 'add', ns]);
        run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
      run('ip', ['-n', NS.mgr, 'link', 'add', 'm0', 'type', 'veth', 'peer', 'name', 'r0', 'netns', NS.relay]);
      run('ip', ['-n', NS.relay, 'link', 'add', 's0', 'type', 'veth', 'peer', 'name', 'h0', 'netns', NS.ssh]);
      for (const [ns, dev, addr] of [
        [NS.mgr, 'm0', `${IP.mgr}/24`],
        [NS.relay, 'r0', `${IP.relayM}/24`],
        [NS.relay, 's0', `${IP.relayS}/24`],
        [NS.ssh, 'h0', `${IP.ssh}/24`],
      ] as const) {
        run('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev]);
        run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      }
      // sshd: its own host key, config, and root's password in a private copy of /etc/shadow.
      const dir = path.join(tmp, 'sshd');
      // 0755: sshd reads authorized_keys as the user logging in (the non-root one too).
      mkdirSync(dir, { mode: 0o755 });
      password = `Rl-${randomBytes(12).toString('hex')}`;
      run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_ed25519')]);
      keyFile = path.join(tmp, 'user_ed25519');
      run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'relay-test', '-f', keyFile]);
      privateKey = readFileSync(keyFile, 'utf8');
      writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${keyFile}.pub`));
      const crypt = execFileSync('openssl', ['passwd', '-6', '-stdin'], {
        input: `${password}\n`,
        encoding: 'utf8',
      }).trim();
      const shadow = readFileSync('/etc/shadow', 'utf8')
        .split('\n')
        .map((l) => (l.startsWith('root:') ? `root:${crypt}:19000:0:99999:7:::` : l))
        .join('\n');
      // A non-root user too: OpenSSH delivers a session signal only with post-auth privilege
      // separation, which it skips for root logins (docs/links.md "SSH").
      writeFileSync(path.join(dir, 'shadow'), `${shadow.trimEnd()}\nmrly:*:19000:0:99999:7:::\n`, { mode: 0o600 });
      writeFileSync(
        path.join(dir, 'passwd'),
        `${readFileSync('/etc/passwd', 'utf8').trimEnd()}\nmrly:x:4242:4242:relay test:${dir}:/bin/sh\n`,
      );
      writeFileSync(
        path.join(dir, 'sshd_config'),
        [
          `ListenAddress ${IP.ssh}`,
          'Port 22',
          `HostKey ${path.join(dir, 'host_ed25519')}`,
          'PidFile none',
          'UsePAM no',
          'PermitRootLogin yes',
          'PasswordAuthentication yes',
          'PubkeyAuthentication yes',
          'KbdInteractiveAuthentication no',
          `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
          'StrictModes no',
          'LogLevel VERBOSE',
          '',
        ].join('\n'),
      );
      sshd = startSshd();
      writeFileSync(path.join(tmp, 'password'), `${password}\n`, { mode: 0o600 });

      manager = startMuster(
        [
          'manager',
          ...sets({
            'multicast.interface': 'm0',
            'http.port': PORT,
            'relay.ping_interval_ms': 1000,
            'relay.command_grace_ms': 3000,
            'exec.status_wait_ms': 1000,
            data_dir: path.join(tmp, 'manager'),
          }),
        ],
        { netns: NS.mgr },
      );
      try {
        await waitFor(
          'the manager',
          async () => {
            try {
              run('ip', ['netns', 'exec', NS.mgr, 'curl', '-sf', '-o', '/dev/null', `${base}/healthz`]);
              return true;
            } catch {
              return false;
            }
          },
          40_000,
          300,
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${logs()}`);
      }
      // r1 through the API (the CLI's `relays add` is used for r2 below), so that the relay
      // starts while the servers are added with the CLI.
      const r = await api<{ apiKey: string }>('POST', '/relays', { id: 'r1', allow: ['198.18.21.0/24'] });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const apiKey = r.body.apiKey;
      assert.ok(apiKey.length >= 32);
      relayKeyFile = path.join(tmp, 'relay.key');
      writeFileSync(relayKeyFile, `${apiKey}\n`, { mode: 0o600 });
      relay = startRelay();
      const added = await Promise.all(
        [
          [
            'servers',
            'add',
            'pw',
            '--relay',
            'r1',
            '--host',
            IP.ssh,
            '--user',
            'root',
            '--password-file',
            path.join(tmp, 'password'),
          ],
          [
            'servers',
            'add',
            'key',
            '--relay',
            'r1',
            '--host',
            IP.ssh,
            '--port',
            '22',
            '--user',
            'root',
            '--key-file',
            keyFile,
          ],
        ].map((args) => cli(args)),
      );
      for (const s of added) assert.equal(s.code, 0, s.output);
      const nonroot = await api('POST', '/servers', {
        name: 'nonroot',
        relay: 'r1',
        host: IP.ssh,
        username: 'mrly',
        privateKey,
      });
      assert.equal(nonroot.status, 201, JSON.stringify(nonroot.body));
      await waitFor('the relay connected', relayConnected, 20_000, 300);
    });

    after(async () => {
      await relay2?.stop();
      await relay?.stop();
      await manager?.stop();
      await sshd2?.stop();
      await sshd?.stop();
      for (const ns of Object.values(NS)) deleteNamespace(ns);
      rmSync(tmp, { recursive: true, force: true });
    });

    const withLogs = async (fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        (err as Error).message += `\n\n${logs()}`;
        throw err;
      }
    };

    it('the manager cannot reach the sshd; the relay can', () =>
      withLogs(async () => {
        assert.throws(() => inNs(NS.mgr, 'bash', ['-c', `exec 3<>/dev/tcp/${IP.ssh}/22`]));
        inNs(NS.relay, 'bash', ['-c', `exec 3<>/dev/tcp/${IP.ssh}/22`]);
      }));

    it('runs a command with a password and with a key; pins the host key on first use', () =>
      withLogs(async () => {
        // Through the CLI once: muster exec --target server:NAME.
        const a = await cli(['exec', '--target', 'server:pw', '--json', '--', 'echo hello-$((6*7))']);
        assert.equal(a.code, 0, a.output);
        const ta = taskOf(a.output);
        assert.equal(ta.state, 'done');
        assert.equal(ta.results.length, 1);
        assert.equal(ta.results[0]?.node, 'server:pw');
        assert.equal(ta.results[0]?.steps[0]?.stdout_tail, 'hello-42\n');
        const b = await task('server:key', 'id -un');
        assert.equal(b.state, 'done', JSON.stringify(b));
        assert.equal(b.results[0]?.steps[0]?.stdout_tail, 'root\n');
        const both = await task('relay:r1', 'echo both; exit 3');
        assert.deepEqual(both.results.map((x) => [x.node, x.exit_code]).sort(), [
          ['server:key', 3],
          ['server:nonroot', 3],
          ['server:pw', 3],
        ]);
        const list = await api<{ servers: { name: string; host_key: string | null; password?: unknown }[] }>(
          'GET',
          '/servers',
        );
        for (const s of list.body.servers.filter((x) => x.name !== 'nonroot'))
          assert.equal(s.host_key, hostKeyFp(), s.name);
        // The task is kept (store and history) like any task.
        const shown = await api<{ task: Task }>('GET', `/tasks/${ta.id}`);
        assert.equal(shown.body.task.results[0]?.steps[0]?.stdout_tail, 'hello-42\n');
      }));

    it('a timeout kills the remote command and records timeout', () =>
      withLogs(async () => {
        const t = await task('server:nonroot', 'sleep 37', '2s');
        assert.equal(t.results[0]?.state, 'timeout', JSON.stringify(t));
        assert.match(t.results[0]?.message ?? '', /timed out/);
        await waitFor(
          'no sleep 37 left',
          async () =>
            !run('ps', ['-eo', 'args'])
              .split('\n')
              .some((l) => l.trim() === 'sleep 37'),
          5000,
          200,
        );
      }));

    it('a changed host key is refused and alerted; trusted again on purpose', () =>
      withLogs(async () => {
        const old = hostKeyFp();
        await sshd.stop();
        rmSync(path.join(tmp, 'sshd', 'host_ed25519'));
        rmSync(path.join(tmp, 'sshd', 'host_ed25519.pub'));
        run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, 'sshd', 'host_ed25519')]);
        assert.notEqual(hostKeyFp(), old);
        sshd2 = startSshd();
        // The pooled connections (made with the old key) close after ssh.idle_close_ms.
        await new Promise((r) => setTimeout(r, 1500));
        const t = await task('server:pw', 'echo must-not-run');
        assert.equal(t.results[0]?.state, 'failed');
        assert.match(t.results[0]?.steps[0]?.stderr_tail ?? '', /host key mismatch/);
        assert.equal(t.results[0]?.steps[0]?.stdout_tail, '');
        const alerts = await api<{ alerts: { kind: string; node: string | null; severity: string }[] }>(
          'GET',
          '/alerts?open=true',
        );
        assert.ok(
          alerts.body.alerts.some(
            (a) => a.kind === 'host_key_changed' && a.node === 'server:pw' && a.severity === 'critical',
          ),
          JSON.stringify(alerts.body),
        );
        // The pin holds: still refused.
        assert.equal((await task('server:pw', 'echo must-not-run')).results[0]?.state, 'failed');
        const trust = await cli(['servers', 'trust', 'pw']);
        assert.equal(trust.code, 0, trust.output);
        // The other server on the same sshd pinned the old key too.
        assert.equal((await api('POST', '/servers/key/trust')).status, 200);
        assert.equal((await api('POST', '/servers/nonroot/trust')).status, 200);
        const again = await task('server:pw', 'echo trusted');
        assert.equal(again.state, 'done', JSON.stringify(again));
        const list = await api<{ servers: { name: string; host_key: string | null }[] }>('GET', '/servers');
        assert.equal(list.body.servers.find((s) => s.name === 'pw')?.host_key, hostKeyFp());
      }));

    it('the relay killed mid-command and restarted: the command is reported failed, once', () =>
      withLogs(async () => {
        const pending = task('server:key', 'sleep 4; echo late');
        await waitFor(
          'the command running on the server',
          async () =>
            run('ps', ['-eo', 'args'])
              .split('\n')
              .some((l) => l.trim() === 'sleep 4'),
          15_000,
          100,
        );
        await relay.stop('SIGKILL');
        relay2 = startRelay();
        const t = await pending;
        assert.equal(t.results.length, 1);
        assert.equal(t.results[0]?.state, 'interrupted', JSON.stringify(t));
        assert.match(t.results[0]?.message ?? '', /relay r1 restarted/);
        relay = relay2;
        relay2 = undefined;
        await waitFor('the relay connected again', relayConnected, 10_000, 300);
        const stored = await api<{ task: Task }>('GET', `/tasks/${t.id}`);
        assert.equal(stored.body.task.results.length, 1);
        assert.equal(stored.body.task.results[0]?.state, 'interrupted');
        // The new relay process serves.
        assert.equal((await task('server:key', 'echo after')).state, 'done');
      }));

    it('refuses a short apiKey, a wrong apiKey, and an address outside the allowlist', () =>
      withLogs(async () => {
        const key = readFileSync(relayKeyFile, 'utf8').trim();
        assert.equal(probe('r1', key.slice(0, 31)), 401);
        assert.equal(probe('r1', `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`), 401);
        assert.equal(probe('nobody', key), 401);
        const r2 = await cli(['relays', 'add', 'r2', '--allow', '198.18.99.0/24', '--json']);
        assert.equal(r2.code, 0, r2.output);
        const key2 = (JSON.parse(r2.output.trim().split('\n').at(-1) as string) as { apiKey: string }).apiKey;
        assert.equal(probe('r2', key2), 403);
        const r3 = await api<{ apiKey: string }>('POST', '/relays', { id: 'r3', allow: [`${IP.relayM}/32`] });
        assert.equal(probe('r3', r3.body.apiKey), 101);
        const m = run('ip', ['netns', 'exec', NS.mgr, 'curl', '-s', `${base}/metrics`]);
        assert.match(m, /muster_manager_relay_refused_total\{reason="short_key"\} 1/);
        assert.match(m, /muster_manager_relay_refused_total\{reason="bad_key"\} 2/);
        assert.match(m, /muster_manager_relay_refused_total\{reason="address"\} 1/);
        assert.doesNotMatch(m, new RegExp(password));
      }));

    it('never shows the password or the private key (nor the apiKey in a log): logs, outputs, API answers, the database', () =>
      withLogs(async () => {
        await relay.stop();
        await manager.stop();
        const keyBody = privateKey
          .split('\n')
          .filter((l) => l && !l.startsWith('-----'))
          .map((l) => l.slice(8, 48));
        const texts: [string, string][] = [
          ['manager', manager.output()],
          ['relay', relay.output()],
          ['sshd', `${sshd.output()}${sshd2?.output() ?? ''}`],
          ...cliOutputs.map((o, i) => [`cli ${i}`, o] as [string, string]),
        ];
        const dataDir = path.join(tmp, 'manager');
        for (const f of readdirSync(dataDir, { withFileTypes: true }))
          if (f.isFile()) texts.push([`data ${f.name}`, readFileSync(path.join(dataDir, f.name)).toString('latin1')]);
        // The apiKey is printed once by relays add (an API answer); never in a daemon's log.
        const apiKey = readFileSync(relayKeyFile, 'utf8').trim();
        for (const [what, text] of texts.slice(0, 3)) assert.ok(!text.includes(apiKey), `the apiKey is in ${what}`);
        for (const [what, text] of texts) {
          assert.ok(!text.includes(password), `the password is in ${what}`);
          for (const k of keyBody) assert.ok(!text.includes(k), `the private key is in ${what}`);
        }
      }));
  },
);
