/**
 * The offline bundles (`make dist`, docs/operations.md "Runtime and bundles"), built fresh by scripts/build-dist.mjs:
 *
 * - the arm64 bundle, unpacked, runs its agent under aarch64 emulation (Debian's
 *   qemu-aarch64-static with the arm64 cross libraries, called explicitly: no binfmt_misc needed)
 *   in a network namespace; an x64 manager run from this checkout finds it with a real multicast
 *   query, sees a complete heartbeat with cpu_arch aarch64, and starts and stops a bar bundle on
 *   it with `muster deploy`;
 * - the x64 bundle installs with install.sh into a fresh root with the network off; its files,
 *   the installed `muster version --json`, and its units under `systemd-analyze verify`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DeploymentRecord } from '../../manager/deploy.js';
import type { NodeDetail } from '../../manager/views.js';
import {
  adminToken,
  type Proc,
  ROOT,
  runMuster,
  sets,
  startMuster,
  startProcess,
  watchDaemons,
} from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan } from '../helpers/netns.js';

const PREFIX = 'mbun';
const QEMU = 'qemu-aarch64-static';
const SYSROOT = '/usr/aarch64-linux-gnu';
const NODE_ID = '3-7-0';
const MANAGER_PORT = 3926;
const FILES_PORT = 8080;
const TOKEN = 'bundle-e2e-token-5d1e';
const UUID = `bundle-bar-${process.pid}`;
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const missingSysroot = () =>
  existsSync(path.join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))
    ? false
    : `needs the arm64 cross libraries in ${SYSROOT} (libc6-arm64-cross, libstdc++6-arm64-cross; scripts/setup-system.sh)`;

/** Runs a command to completion; returns stdout, throws with its output on a non-zero exit. */
function sh(cmd: string, args: string[], timeout = 120_000): string {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** Whether process `pid` exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Serves the files of a directory over HTTP on `port`, run by this node inside namespace `ns`. */
const FILE_SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const [dir, port] = process.argv.slice(1);
http.createServer((req, res) => {
  const name = path.basename(decodeURIComponent(req.url.split('?')[0]));
  const file = path.join(dir, name);
  if (!name || !fs.existsSync(file)) return res.writeHead(404).end('not found\\n');
  res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': fs.statSync(file).size });
  fs.createReadStream(file).pipe(res);
}).listen(Number(port), '0.0.0.0', () => console.log('serving'));
`;

describe(
  'offline bundles: arm64 agent under emulation, x64 install with the network off',
  needs(
    missingRoot('network namespaces, install.sh and cgroups'),
    missingCommand('ip'),
    missingCommand('curl'),
    missingCommand('unshare'),
    missingCommand(QEMU),
    missingSysroot(),
    missingCommand('systemd-analyze'),
  ),
  () => {
    let tmp = '';
    let build = '';
    let lan: Lan | undefined;
    let manager: Proc | undefined;
    let agent: Proc | undefined;
    let files: Proc | undefined;
    let managerUrl = '';
    let barPid = 0;

    const named = (): [string, Proc][] => [
      ...(manager ? [['manager', manager] as [string, Proc]] : []),
      ...(agent ? [['arm64 agent', agent] as [string, Proc]] : []),
      ...(files ? [['file server', files] as [string, Proc]] : []),
    ];
    const logs = () =>
      named()
        .map(([n, p]) => `----- ${n} -----\n${p.output().slice(-5000)}`)
        .join('\n');
    const { withLogs, until } = watchDaemons(named, logs);

    /**
     * GET on the manager's API, from inside its namespace, as the test admin: the token goes to
     * curl in a header file (`-H @file`), not on its command line.
     */
    const api = async <T>(p: string): Promise<T> => {
      const ns = lan?.ns('mgr') as string;
      const headers = path.join(os.tmpdir(), `muster-bundle-auth-${process.pid}`);
      writeFileSync(headers, `Authorization: Bearer ${await adminToken(managerUrl, ns)}\n`, { mode: 0o600 });
      return JSON.parse(
        sh('ip', ['netns', 'exec', ns, 'curl', '-sf', '-m', '5', '-H', `@${headers}`, `${managerUrl}${p}`]),
      ) as T;
    };
    /** `muster --manager <url> <args>` (from this checkout) inside the manager's namespace. */
    const cli = async (args: string[]) => {
      const r = await runMuster(['--manager', managerUrl, ...args], { netns: lan?.ns('mgr'), timeoutMs: 180_000 });
      return { code: r.code, output: r.output };
    };

    before(
      () => {
        tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-bundle-e2e-'));
        build = path.join(tmp, 'build');
        // Both bundles, from this checkout (the runtimes come from scripts/node.sh's cache).
        sh(process.execPath, [path.join(ROOT, 'scripts/build-dist.mjs'), '--out', build], 300_000);
      },
      { timeout: 320_000 },
    );

    after(
      async () => {
        await Promise.allSettled(named().map(([, p]) => p.stop()));
        if (barPid > 0 && alive(barPid)) process.kill(-barPid, 'SIGKILL');
        try {
          lan?.destroy();
        } finally {
          if (tmp) rmSync(tmp, { recursive: true, force: true });
        }
      },
      { timeout: 30_000 },
    );

    test('make dist made both tarballs: one top directory, the runtime of its architecture, only JavaScript in lib/', () => {
      for (const arch of ['x64', 'arm64']) {
        const name = `muster-${VERSION}-linux-${arch}`;
        const tgz = path.join(build, `${name}.tar.gz`);
        assert.ok(existsSync(tgz), `${tgz} missing`);
        const entries = sh('tar', ['tzf', tgz]).trim().split('\n');
        assert.ok(
          entries.every((e) => e === `${name}/` || e.startsWith(`${name}/`)),
          `one top directory: ${entries.slice(0, 5)}`,
        );
        for (const f of ['node/bin/node', 'lib/muster.js', 'bin/muster', 'install.sh', 'VERSION', 'BUILD-INFO'])
          assert.ok(entries.includes(`${name}/${f}`), `${name}/${f} in the tarball`);
        for (const f of ['systemd/muster-agent.service', 'systemd/muster-manager.service', 'config/agent.yaml'])
          assert.ok(entries.includes(`${name}/${f}`), `${name}/${f} in the tarball`);
        assert.ok(entries.includes(`${name}/docs/operations.md`), 'docs');
        const lib = entries.filter((e) => e.startsWith(`${name}/lib/`) && !e.endsWith('/'));
        // The entry, one chunk per lazily loaded part (each daemon, dockerode, and what the agent
        // imports on first use: undici, tar, ws) and the chunks they share: a few dozen at most,
        // never a node_modules tree.
        assert.ok(lib.length <= 48, `few files in lib/: ${lib.length}: ${lib}`);
        for (const f of lib)
          assert.match(f, /\.js$|THIRD-PARTY-NOTICES\.txt$/, 'nothing compiled, no TypeScript, no maps');
        assert.ok(!entries.some((e) => e.includes('node_modules') || e.endsWith('.node') || e.endsWith('.ts')));
        // ELF e_machine of the runtime: 62 x86-64, 183 aarch64.
        const top = path.join(build, name);
        const elf = readFileSync(path.join(top, 'node/bin/node')).subarray(0, 20);
        assert.equal(elf.readUInt16LE(18), arch === 'x64' ? 62 : 183, `${arch} runtime`);
        // Every chunk loads on the bundle's runtime (the lazy ones too: dockerode, ssh2, grpc).
        if (arch === 'x64') {
          const chunks = readdirSync(path.join(top, 'lib')).filter((f) => f.endsWith('.js') && f !== 'muster.js');
          const load = chunks.map((f) => `await import(${JSON.stringify(path.join(top, 'lib', f))});`).join(' ');
          sh(path.join(top, 'node/bin/node'), ['--input-type=module', '-e', load]);
        }
        const info = JSON.parse(readFileSync(path.join(top, 'BUILD-INFO'), 'utf8')) as {
          arch: string;
          version: string;
        };
        assert.equal(info.arch, arch);
        assert.equal(info.version, VERSION);
      }
    });

    test(
      'the arm64 agent, under qemu in a namespace, answers the x64 manager with a complete aarch64 heartbeat',
      { timeout: 240_000 },
      async (t) =>
        withLogs(async () => {
          const unpacked = path.join(tmp, 'arm64');
          mkdirSync(unpacked);
          sh('tar', ['xzf', path.join(build, `muster-${VERSION}-linux-arm64.tar.gz`), '-C', unpacked]);
          const top = path.join(unpacked, `muster-${VERSION}-linux-arm64`);
          writeFileSync(path.join(tmp, 'token'), `${TOKEN}\n`);

          lan = createLan({ prefix: PREFIX, hosts: ['mgr', 'arm'] });
          const l = lan;
          managerUrl = `http://${l.ip('mgr')}:${MANAGER_PORT}`;
          manager = startMuster(
            [
              'manager',
              ...sets({
                'multicast.interface': 'eth0',
                'query.heartbeat_interval_ms': 1000,
                'query.resource_interval_ms': 2000,
                'deploy.token_file': path.join(tmp, 'no-such-token-file'),
                'log.level': 'warn',
                data_dir: path.join(tmp, 'manager'),
              }),
            ],
            // A secret is refused with --set (ps shows it): the token comes from the environment.
            { netns: l.ns('mgr'), env: { MUSTER_MANAGER_DEPLOY_TOKEN: TOKEN } },
          );
          const started = Date.now();
          agent = startProcess('ip', [
            ...['netns', 'exec', l.ns('arm'), QEMU, '-L', SYSROOT],
            ...[path.join(top, 'node/bin/node'), path.join(top, 'lib/muster.js'), 'agent'],
            ...sets({
              'multicast.interface': 'eth0',
              'identity.box_id': 3,
              'identity.slot_id': 7,
              'identity.cpu_id': 0,
              'report.jitter_ms': 100,
              'report.timeout_ms': 10_000,
              'deploy.docker_socket': '',
              'deploy.reserved_cores': '[]',
              'deploy.stop_grace_ms': 3000,
              'auth.token_file': path.join(tmp, 'token'),
              data_dir: path.join(tmp, 'agent'),
            }),
          ]);
          await until(
            'the emulated agent to start',
            async () => agent?.output().includes('"agent started"'),
            120_000,
            200,
          );
          t.diagnostic(`arm64 agent under qemu: started in ${((Date.now() - started) / 1000).toFixed(1)} s`);

          const n = await until(
            `node ${NODE_ID} online with a heartbeat and a resource report`,
            async () => {
              const d = await api<NodeDetail>(`/api/v1/nodes/${NODE_ID}`);
              return d.state === 'online' && d.heartbeat && d.resource && d;
            },
            90_000,
            1000,
          );
          const where = JSON.stringify(n);
          const h = n.heartbeat;
          assert.ok(h, where);
          assert.equal(h.cpu_arch, 'aarch64', where);
          assert.equal(n.host_ip, l.ip('arm'), where);
          assert.equal(h.host_ip, l.ip('arm'), where);
          assert.equal(h.service_port, 23980, where);
          assert.equal(h.box_id, 3, where);
          assert.equal(h.slot_id, 7, where);
          assert.equal(h.cpu_id, 0, where);
          assert.ok(h.hostname, `hostname in ${where}`);
          assert.ok(h.os_type, `os_type in ${where}`);
          assert.ok(h.cpu_type, `cpu_type in ${where}`);
          const r = n.resource;
          assert.ok(r, where);
          assert.ok(r.resource.cpu.core_count > 0, where);
          assert.ok(r.resource.memory.total > 0, where);
          assert.ok(
            r.resource.network.some((x) => x.interface === 'eth0'),
            where,
          );
        }),
    );

    test('a bar bundle starts and stops on the arm64 agent through `muster deploy`', { timeout: 300_000 }, async () =>
      withLogs(async () => {
        const l = lan as Lan;
        // The bundle: bar.yaml and a looping run.sh, served from the manager's namespace.
        const src = path.join(tmp, 'bar-src');
        const served = path.join(tmp, 'served');
        mkdirSync(src);
        mkdirSync(served);
        writeFileSync(path.join(src, 'bar.yaml'), 'name: looper\nversion: "1.0"\ncommand: ["/bin/sh", "run.sh"]\n');
        writeFileSync(path.join(src, 'run.sh'), 'while true; do sleep 1; done\n');
        sh('tar', ['czf', path.join(served, 'looper.bar'), '-C', src, 'bar.yaml', 'run.sh']);
        files = startProcess('ip', [
          ...['netns', 'exec', l.ns('mgr'), process.execPath, '-e', FILE_SERVER, served, String(FILES_PORT)],
        ]);
        await until('the file server', async () => files?.output().includes('serving'), 15_000, 100);
        const url = `http://${l.ip('mgr')}:${FILES_PORT}`;

        const start = await cli([
          ...['deploy', 'start', '--node', NODE_ID, '--type', 'bar', '--url', url, '--file', 'looper.bar'],
          ...['--cpu', '1', '--memory', '32M', '--uuid', UUID],
        ]);
        assert.equal(start.code, 0, start.output);
        assert.match(start.output, /^ {2}started looper 1\.0 as pid \d+$/m);
        assert.match(start.output, /^result 0: started bar /m);
        const id = /^uuid (\S+)\s+id (\d+)$/m.exec(start.output);
        assert.ok(id, start.output);
        barPid = Number(id[2]);
        assert.ok(alive(barPid), `bar process ${barPid} runs`);

        await until(
          'the bundle RUNNING in the arm64 agent report',
          async () => {
            const d = await api<NodeDetail>(`/api/v1/nodes/${NODE_ID}`);
            return d.resource?.component.find((c) => c.uuid === UUID && c.state === 'RUNNING');
          },
          60_000,
          1000,
        );

        const stop = await cli(['deploy', 'stop', '--node', NODE_ID, '--uuid', UUID, '--type', 'bar', '--json']);
        assert.equal(stop.code, 0, stop.output);
        const d = JSON.parse(stop.output) as DeploymentRecord;
        assert.equal(d.result, 0, stop.output);
        await until('the bar process to be gone', async () => !alive(barPid), 15_000);
        barPid = 0;
      }),
    );

    test('the x64 bundle installs with the network off into a fresh root; units verify', { timeout: 180_000 }, () => {
      const root = path.join(tmp, 'root');
      mkdirSync(root);
      const tgz = path.join(build, `muster-${VERSION}-linux-x64.tar.gz`);
      const unpacked = path.join(tmp, 'x64');
      mkdirSync(unpacked);
      sh('tar', ['xzf', tgz, '-C', unpacked]);
      const installer = path.join(unpacked, `muster-${VERSION}-linux-x64`, 'install.sh');
      // unshare -n: a new network namespace with only a down loopback, so nothing can be fetched.
      const out = sh('unshare', ['-n', installer, '--root', root, '--agent']);
      assert.match(out, /installed muster .* into .*\/opt\/muster/, out);

      const opt = path.join(root, 'opt/muster');
      for (const f of ['node/bin/node', 'lib/muster.js', 'bin/muster', 'install.sh', 'config/agent.yaml', 'docs'])
        assert.ok(existsSync(path.join(opt, f)), `${f} installed`);
      const link = path.join(root, 'usr/local/bin/muster');
      assert.ok(lstatSync(link).isSymbolicLink());
      assert.equal(readlinkSync(link), '/opt/muster/bin/muster');
      for (const u of ['muster-agent', 'muster-manager']) {
        const unit = readFileSync(path.join(root, `etc/systemd/system/${u}.service`), 'utf8');
        assert.match(unit, new RegExp(`^ExecStart=/opt/muster/bin/muster ${u.slice(7)} --config /etc/muster/`, 'm'));
      }
      assert.match(
        readFileSync(path.join(root, 'etc/systemd/system/muster-agent.service'), 'utf8'),
        /^KillMode=process$/m,
      );
      assert.equal(
        readlinkSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/muster-agent.service')),
        '/etc/systemd/system/muster-agent.service',
      );
      assert.ok(!existsSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/muster-manager.service')));
      assert.match(readFileSync(path.join(root, 'etc/muster/agent.yaml'), 'utf8'), /box_id: 1/);
      assert.ok(existsSync(path.join(root, 'etc/muster/manager.yaml')));

      // The installed command, with the network still off.
      const v = JSON.parse(sh('unshare', ['-n', path.join(opt, 'bin/muster'), 'version', '--json'])) as Record<
        string,
        unknown
      >;
      assert.deepEqual(Object.keys(v).sort(), ['arch', 'bundle', 'commit', 'runtime', 'version']);
      assert.equal(v.version, VERSION);
      assert.equal(v.arch, 'x64');
      assert.equal(v.bundle, true);
      assert.equal(
        v.runtime,
        `v${/^NODE_VERSION=(\S+)$/m.exec(readFileSync(path.join(ROOT, 'scripts/runtime.env'), 'utf8'))?.[1]}`,
      );
      assert.match(String(v.commit), /^([0-9a-f]{7,}(-dirty)?|unknown)$/);

      // systemd-analyze verify --root checks the units against that root (ExecStart must exist
      // there). The root gets what a base system has: systemd's own units and /bin/kill.
      mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
      mkdirSync(path.join(root, 'bin'));
      sh('cp', ['-a', '/lib/systemd/system', path.join(root, 'usr/lib/systemd/')]);
      sh('cp', ['-a', '/bin/kill', path.join(root, 'bin/kill')]);
      sh('systemd-analyze', ['verify', `--root=${root}`, 'muster-agent.service', 'muster-manager.service']);
      // And it does fail when the wrapper is missing.
      rmSync(path.join(opt, 'bin/muster'));
      assert.throws(
        () => sh('systemd-analyze', ['verify', `--root=${root}`, 'muster-agent.service']),
        /\/opt\/muster\/bin\/muster is not executable/,
      );

      // Upgrade keeps an edited config; --uninstall removes all but config and data.
      writeFileSync(path.join(root, 'etc/muster/agent.yaml'), 'identity:\n  box_id: 9\n');
      sh('unshare', ['-n', installer, '--root', root]);
      assert.ok(existsSync(path.join(opt, 'bin/muster')), 'reinstalled');
      assert.equal(readFileSync(path.join(root, 'etc/muster/agent.yaml'), 'utf8'), 'identity:\n  box_id: 9\n');
      mkdirSync(path.join(root, 'var/lib/muster/agent'), { recursive: true });
      sh(path.join(opt, 'install.sh'), ['--root', root, '--uninstall']);
      assert.ok(!existsSync(opt), '/opt/muster removed');
      assert.ok(!existsSync(link), 'command removed');
      assert.ok(!existsSync(path.join(root, 'etc/systemd/system/muster-agent.service')), 'unit removed');
      assert.ok(!existsSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/muster-agent.service')));
      assert.ok(existsSync(path.join(root, 'etc/muster/agent.yaml')), 'config kept');
      assert.ok(existsSync(path.join(root, 'var/lib/muster/agent')), 'data kept');
      assert.deepEqual(readdirSync(path.join(root, 'opt')), []);
    });
  },
);
