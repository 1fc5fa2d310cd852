/**
 * `muster alerts` (list, rules, rule set|rm, metrics) and `muster history`: bad flags are refused
 * by commander naming the flag, a valid call without a manager exits 3, and against a stand-in
 * manager the calls, paging and headers are the documented ones. Most cases run the command tree
 * in this process (fast); a few run the real binary for its exit codes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Command, CommanderError } from 'commander';
import { CliError } from '../../cli/client.js';
import { program } from '../../cli/main.js';
import type { AlertView, HistoryEntry, RuleView } from '../../manager/alerts/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MUSTER = path.join(ROOT, 'bin', 'muster.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `muster <args>` from the sources against `manager` and waits for it to end. */
function spawnMuster(args: string[], manager: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MUSTER, ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        MUSTER_FROM_SOURCE: '1',
        MUSTER_MANAGER_URL: manager,
        MUSTER_CLI_CONFIG: '/nonexistent',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs `muster <args>` in this process: the command tree of cli/main.ts with commander's exits
 * turned into errors, console.log captured, and a CliError turned into the line and exit code
 * that main() would give.
 */
async function muster(args: string[], manager: string, env: Record<string, string> = {}): Promise<Run> {
  const out = { stdout: '', stderr: '' };
  const prog = program();
  const tree = (c: Command): Command[] => [c, ...c.commands.flatMap(tree)];
  for (const c of tree(prog))
    c.exitOverride().configureOutput({
      writeOut: (s) => {
        out.stdout += s;
      },
      writeErr: (s) => {
        out.stderr += s;
      },
    });
  const log = mock.method(console, 'log', (...a: unknown[]) => {
    out.stdout += `${a.join(' ')}\n`;
  });
  const saved = { ...process.env };
  Object.assign(process.env, { MUSTER_MANAGER_URL: manager, MUSTER_CLI_CONFIG: '/nonexistent', ...env });
  try {
    await prog.parseAsync(['node', 'muster', ...args]);
    return { code: 0, ...out };
  } catch (err) {
    if (err instanceof CommanderError) return { code: err.exitCode, ...out };
    if (err instanceof CliError) return { code: err.exitCode, stdout: out.stdout, stderr: `muster: ${err.message}\n` };
    throw err;
  } finally {
    log.mock.restore();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('muster alerts / history: argument checks', () => {
  let nowhere = '';
  before(async () => {
    nowhere = `http://127.0.0.1:${await closedPort()}`;
  });

  it('refuses bad flags with commander naming the flag (exit 1) before calling the manager', async () => {
    const cases: [string[], string][] = [
      [['alerts', '--node', 'x!'], "option '--node <id>' argument 'x!' is invalid. expected box-slot-cpu"],
      [['alerts', '--since', 'yesterday'], "option '--since <time>' argument 'yesterday' is invalid. cannot read"],
      [['alerts', '--since', '9'.repeat(40)], "option '--since <time>'"],
      [
        ['alerts', '--limit', '0'],
        "option '--limit <n>' argument '0' is invalid. expected a whole number from 1 to 1000",
      ],
      [['alerts', '--limit', '1001'], "option '--limit <n>' argument '1001' is invalid"],
      [['alerts', '--limit', '5x'], "option '--limit <n>' argument '5x' is invalid"],
      [['alerts', '--before', '0'], "option '--before <id>' argument '0' is invalid"],
      [
        ['alerts', '--kind', 'fire'],
        "option '--kind <kind>' argument 'fire' is invalid. Allowed choices are node_offline",
      ],
      [['alerts', '--severity', 'high'], "option '--severity <severity>' argument 'high' is invalid"],
      [['alerts', '--open', '--resolved'], "option '--open' cannot be used with option '--resolved'"],
      [['alerts', 'bogus'], "too many arguments for 'list'"],
      [['alerts', 'list', '--limit', '0'], "option '--limit <n>' argument '0' is invalid"],
      [
        ['alerts', 'rule', 'set', 'Bad-Name', '--metric', 'cpu.temperature', '--op', '>', '--threshold', '1'],
        "command-argument value 'Bad-Name' is invalid for argument 'name'. expected a lower-case name",
      ],
      [
        ['alerts', 'rule', 'set', 'hot', '--op', '>', '--threshold', '1'],
        "required option '--metric <metric>' not specified",
      ],
      [
        ['alerts', 'rule', 'set', 'hot', '--metric', 'm', '--op', '=', '--threshold', '1'],
        "option '--op <op>' argument '='",
      ],
      [
        ['alerts', 'rule', 'set', 'hot', '--metric', 'm', '--op', 'gt', '--threshold', 'hot'],
        "option '--threshold <n>'",
      ],
      [
        ['alerts', 'rule', 'set', 'hot', '--metric', 'm', '--op', 'gt', '--threshold', '1', '--for', 'ever'],
        "option '--for <duration>' argument 'ever' is invalid",
      ],
      [
        ['alerts', 'rule', 'set', 'hot', '--metric', 'm', '--op', 'gt', '--threshold', '1', '--severity', 'x'],
        "option '--severity <severity>'",
      ],
      [['alerts', 'rule', 'rm'], "missing required argument 'name'"],
      [
        ['history', '--kind', 'deploy'],
        "option '--kind <kind>' argument 'deploy' is invalid. Allowed choices are state, operation, component, manager",
      ],
      [['history', '--node', '1-1/'], "option '--node <id>' argument '1-1/' is invalid"],
      [['history', '--since', '2026-99-99'], "option '--since <time>'"],
      [['history', '--limit', '-1'], "option '--limit <n>'"],
    ];
    for (const [args, message] of cases) {
      const r = await muster(args, nowhere);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`error: ${message}`), `${args.join(' ')}: ${r.stderr}`);
      assert.ok(!r.stderr.includes('cannot reach the manager'), `${args.join(' ')} called the manager`);
    }
  });

  it('runs a valid call, subcommands included, and exits 3 when the manager cannot be reached', async () => {
    const cases = [
      ['alerts'],
      ['alerts', '--open'],
      ['alerts', '--open', '--node', '1-3-0', '--since', '2h', '--kind', 'threshold', '--severity', 'critical'],
      ['alerts', '--resolved', '--since', '2026-11-21T08:00:00Z', '--limit', '10', '--before', '99', '--all', '--json'],
      ['alerts', 'rules'],
      ['alerts', 'rules', '--json'],
      ['alerts', 'metrics'],
      [
        'alerts',
        'rule',
        'set',
        'gpu_hot',
        '--metric',
        'gpu.temperature',
        '--op',
        '>=',
        '--threshold',
        '-5',
        '--for',
        '30s',
      ],
      ['alerts', 'rule', 'rm', 'gpu_hot'],
      ['history'],
      ['history', '--node', '1-1-0', '--since', '7d', '--kind', 'operation', '--limit', '5', '--all'],
    ];
    for (const args of cases) {
      const r = await muster(args, nowhere);
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^muster: cannot reach the manager at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED/);
    }
  });

  it('the real binary: a bad flag exits 1 naming it, a valid call without a manager exits 3', async () => {
    const cases: [string[], number, RegExp][] = [
      [['alerts', '--node', 'x!'], 1, /^error: option '--node <id>' argument 'x!' is invalid/],
      [['history', '--since', 'soon'], 1, /^error: option '--since <time>' argument 'soon' is invalid/],
      [['alerts', 'rule', 'set', 'hot', '--metric', 'm', '--op', 'gt', '--threshold', 'x'], 1, /'--threshold <n>'/],
      [['alerts', '--open'], 3, /^muster: cannot reach the manager at http:\/\/127\.0\.0\.1:\d+ /],
      [['alerts', 'rules', '--json'], 3, /^muster: cannot reach the manager/],
      [['history', '--kind', 'state', '--all'], 3, /^muster: cannot reach the manager/],
    ];
    const runs = await Promise.all(cases.map(([args]) => spawnMuster(args, nowhere)));
    runs.forEach((r, i) => {
      const [args, code, message] = cases[i] as [string[], number, RegExp];
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '');
    });
  });
});

/**
 * A stand-in manager: the alert and history routes (docs/operations.md "Alerts and history",
 * REST API) over fixed data, recording every request.
 */
describe('muster alerts / history against a manager', () => {
  const seen: { method: string; url: URL; headers: http.IncomingHttpHeaders; body: unknown }[] = [];
  let server: http.Server;
  let base = '';

  const at = (i: number) => new Date(Date.parse('2026-11-21T08:00:00Z') + i * 60_000).toISOString();
  const alerts: AlertView[] = [5, 4, 3, 2, 1].map((id) => ({
    id,
    kind: 'threshold',
    rule: 'cpu_temperature_high',
    severity: 'warning',
    node: '1-1-0',
    metric: 'cpu.temperature',
    instance: null,
    value: 86 + id,
    threshold: 85,
    op: '>',
    message: `cpu.temperature ${86 + id} > 85 for 30s`,
    source: 'manager',
    state: id === 5 ? 'open' : 'resolved',
    first_seen: at(id),
    last_seen: at(id + 1),
    resolved_at: id === 5 ? null : at(id + 2),
  }));
  const history: HistoryEntry[] = [3, 2, 1].map((id) => ({
    id,
    at: at(id),
    node: '1-1-0',
    kind: 'operation',
    operation: 'deploy.start',
    args: { type: 'bar', uuid: `u-${id}` },
    result: 0,
    message: null,
    who: 'alice',
    ref: null,
  }));
  const rule: RuleView = {
    name: 'gpu_hot',
    metric: 'gpu.temperature',
    op: '>',
    threshold: 80,
    for_ms: 30_000,
    severity: 'critical',
    enabled: true,
    source: 'api',
    updated_at: at(0),
  };

  /** Newest first, ids below `before`, at most `limit`; next = the last id when older ones remain. */
  function page<T extends { id: number }>(items: T[], q: URLSearchParams): { items: T[]; next: number | null } {
    const before = q.has('before') ? Number(q.get('before')) : Number.POSITIVE_INFINITY;
    const older = items.filter((x) => x.id < before);
    const out = older.slice(0, Number(q.get('limit') ?? 50));
    return { items: out, next: older.length > out.length ? (out.at(-1)?.id ?? null) : null };
  }

  function send(res: http.ServerResponse, status: number, body?: unknown) {
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  }

  before(async () => {
    server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => {
        raw += d.toString();
      });
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        seen.push({ method: req.method ?? '', url, headers: req.headers, body: raw ? JSON.parse(raw) : undefined });
        const q = url.searchParams;
        const route = `${req.method} ${url.pathname}`;
        if (route === 'GET /api/v1/alerts') {
          if (q.get('node') === '9-9-9')
            return send(res, 400, { error: 'bad_request', field: 'node', message: 'node: no such node 9-9-9' });
          const { items, next } = page(alerts, q);
          return send(res, 200, { alerts: items, next });
        }
        if (route === 'GET /api/v1/history') {
          const { items, next } = page(history, q);
          return send(res, 200, { history: items, next });
        }
        if (route === 'GET /api/v1/alert-rules') return send(res, 200, { rules: [rule] });
        if (route === 'GET /api/v1/metrics-catalog')
          return send(res, 200, {
            metrics: [{ name: 'gpu.temperature', unit: '°C', instance: 'index', description: 'GPU temperature' }],
          });
        if (route === 'PUT /api/v1/alert-rules/gpu_hot') return send(res, 200, { rule });
        if (route === 'PUT /api/v1/alert-rules/cpu_temperature_high')
          return send(res, 409, {
            error: 'conflict',
            message: 'rule cpu_temperature_high comes from the config file: change it there',
          });
        if (route === 'DELETE /api/v1/alert-rules/gpu_hot') return send(res, 204);
        if (route === 'DELETE /api/v1/alert-rules/nope')
          return send(res, 404, { error: 'not_found', message: 'no rule nope' });
        send(res, 404, { error: 'not_found', message: `no route ${route}` });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise((r) => server.close(r)));

  /** The requests made by one CLI run (runs in these tests are sequential). */
  async function run(args: string[], env: Record<string, string> = {}) {
    const from = seen.length;
    const r = await muster(args, base, env);
    return { ...r, requests: seen.slice(from) };
  }

  it('sends the filters as query parameters, prints the table and the command for the next page', async () => {
    const r = await run([
      'alerts',
      '--open',
      '--node',
      '1-1-0',
      '--since',
      '2h',
      '--severity',
      'warning',
      '--limit',
      '2',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.requests.length, 1);
    const q = r.requests[0]?.url.searchParams;
    assert.equal(q?.get('open'), 'true');
    assert.equal(q?.get('node'), '1-1-0');
    assert.equal(q?.get('since'), '2h', 'the raw text goes to the manager');
    assert.equal(q?.get('severity'), 'warning');
    assert.equal(q?.get('limit'), '2');
    assert.equal(q?.has('before'), false);
    const out = r.stdout.trimEnd().split('\n');
    assert.match(
      out[0] ?? '',
      /^ID +SEVERITY +STATE +NODE +RULE +METRIC +VALUE +FIRST SEEN +LAST SEEN \/ RESOLVED +MESSAGE$/,
    );
    assert.match(
      out[1] ?? '',
      /^5 +warning +open +1-1-0 +cpu_temperature_high +cpu\.temperature +91 > 85 +2026-11-21T08:05:00Z /,
    );
    assert.match(out[2] ?? '', /^4 +warning +resolved .* resolved \d+[smhd] ago +cpu\.temperature 90 > 85 for 30s$/);
    assert.equal(
      out.at(-1),
      'more: muster alerts --open --node 1-1-0 --since 2h --severity warning --limit 2 --before 4',
    );
  });

  it('--before shows the older page; the last page has no more: line', async () => {
    const r = await run(['alerts', '--limit', '2', '--before', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.requests[0]?.url.searchParams.get('before'), '2');
    assert.doesNotMatch(r.stdout, /more:/);
    assert.match(r.stdout, /^1 +warning/m);
    const j = await run(['alerts', '--limit', '2', '--before', '4', '--json']);
    assert.deepEqual(JSON.parse(j.stdout), { alerts: alerts.slice(2, 4), next: 2 });
  });

  it('--all follows next to the end; with --json it prints every alert and next null', async () => {
    const r = await run(['alerts', '--all', '--limit', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { alerts, next: null });
    assert.deepEqual(
      r.requests.map((x) => x.url.searchParams.get('before')),
      [null, '4', '2'],
    );
    const big = await run(['alerts', '--all']);
    assert.equal(big.requests[0]?.url.searchParams.get('limit'), '1000', '--all asks for the largest pages');
    assert.equal(big.stdout.trimEnd().split('\n').length, 6);
  });

  it("prints the manager's 400 message and exits 1", async () => {
    const r = await run(['alerts', '--node', '9-9-9']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'muster: node: no such node 9-9-9\n');
  });

  it('lists history the same way: filters, table, paging', async () => {
    const r = await run(['history', '--node', '1-1-0', '--kind', 'operation', '--since', '7d', '--limit', '2']);
    assert.equal(r.code, 0, r.stderr);
    const q = r.requests[0]?.url.searchParams;
    assert.deepEqual(Object.fromEntries(q ?? []), { node: '1-1-0', kind: 'operation', since: '7d', limit: '2' });
    const out = r.stdout.trimEnd().split('\n');
    assert.match(out[0] ?? '', /^ID +TIME +NODE +KIND +OPERATION +RESULT +WHO +DETAIL$/);
    assert.match(
      out[1] ?? '',
      /^3 +2026-11-21T08:03:00Z +1-1-0 +operation +deploy\.start +0 +alice +type=bar uuid=u-3$/,
    );
    assert.equal(out.at(-1), 'more: muster history --node 1-1-0 --since 7d --kind operation --limit 2 --before 2');
    const all = await run(['history', '--all', '--limit', '1', '--json']);
    assert.deepEqual(JSON.parse(all.stdout), { history, next: null });
    assert.equal(all.requests.length, 3);
  });

  it('alerts rules and alerts metrics: subcommands with their own --json', async () => {
    const t = await run(['alerts', 'rules']);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.requests[0]?.url.pathname, '/api/v1/alert-rules');
    assert.match(t.stdout, /^gpu_hot +gpu\.temperature +> 80 for 30s +critical +yes +api$/m);
    const j = await run(['alerts', 'rules', '--json']);
    assert.deepEqual(JSON.parse(j.stdout), { rules: [rule] });
    const m = await run(['alerts', 'metrics']);
    assert.equal(m.requests[0]?.url.pathname, '/api/v1/metrics-catalog');
    assert.match(m.stdout, /^gpu\.temperature +°C +index +GPU temperature$/m);
  });

  it('rule set PUTs the rule with the token of $MUSTER_TOKEN (no x-muster-user) and prints it', async () => {
    const r = await run(
      ['alerts', 'rule', 'set', 'gpu_hot', '--metric', 'gpu.temperature', '--op', 'gt', '--threshold', '80'],
      { MUSTER_USER: 'alice', MUSTER_TOKEN: 'tok-alice' },
    );
    assert.equal(r.code, 0, r.stderr);
    const req = r.requests[0];
    assert.equal(req?.method, 'PUT');
    assert.equal(req?.url.pathname, '/api/v1/alert-rules/gpu_hot');
    assert.equal(req?.headers['x-muster-user'], undefined);
    assert.equal(req?.headers.authorization, 'Bearer tok-alice');
    assert.equal(req?.headers['content-type'], 'application/json');
    assert.deepEqual(req?.body, { metric: 'gpu.temperature', op: '>', threshold: 80, enabled: true });
    assert.equal(r.stdout, 'rule gpu_hot: gpu.temperature > 80 for 30s, critical, enabled (source api)\n');

    const full = await run(
      [
        ...['alerts', 'rule', 'set', 'gpu_hot', '--metric', 'gpu.temperature', '--op', '<='],
        ...['--threshold', '-2.5', '--for', '2m', '--severity', 'info', '--disable', '--json'],
      ],
      { MUSTER_USER: '张三', MUSTER_TOKEN: 'tok-zhang' },
    );
    assert.equal(full.code, 0, full.stderr);
    assert.deepEqual(full.requests[0]?.body, {
      metric: 'gpu.temperature',
      op: '<=',
      threshold: -2.5,
      for_ms: 120_000,
      severity: 'info',
      enabled: false,
    });
    assert.equal(full.requests[0]?.headers.authorization, 'Bearer tok-zhang');
    assert.deepEqual(JSON.parse(full.stdout), { rule });
  });

  it('rule set on a rule from the config file: the 409 message, exit 1', async () => {
    const r = await run([
      'alerts',
      'rule',
      'set',
      'cpu_temperature_high',
      '--metric',
      'cpu.temperature',
      '--op',
      'gt',
      '--threshold',
      '90',
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'muster: rule cpu_temperature_high comes from the config file: change it there\n');
  });

  it('rule rm DELETEs with the token; an unknown rule exits 4', async () => {
    const r = await run(['alerts', 'rule', 'rm', 'gpu_hot'], { MUSTER_TOKEN: 'tok-bob' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.requests[0]?.method, 'DELETE');
    assert.equal(r.requests[0]?.headers.authorization, 'Bearer tok-bob');
    assert.equal(r.stdout, 'removed rule gpu_hot\n');
    const nope = await run(['alerts', 'rule', 'rm', 'nope']);
    assert.equal(nope.code, 4);
    assert.equal(nope.stderr, 'muster: no rule nope\n');
  });

  it('the real binary prints the same table, more: line and PUT as the command tree in this process', async () => {
    const from = seen.length;
    const list = await spawnMuster(['alerts', '--open', '--limit', '2'], base);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID +SEVERITY +STATE/);
    assert.match(list.stdout, /\n\nmore: muster alerts --open --limit 2 --before 4\n$/);
    const set = await spawnMuster(
      ['alerts', 'rule', 'set', 'gpu_hot', '--metric', 'gpu.temperature', '--op', '>', '--threshold', '80', '--json'],
      base,
      { MUSTER_TOKEN: 'tok-carol' },
    );
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), { rule });
    const put = seen.slice(from).find((x) => x.method === 'PUT');
    assert.equal(put?.headers.authorization, 'Bearer tok-carol');
  });

  it('GET calls carry the token too, and no x-muster-user', async () => {
    const r = await run(['history'], { MUSTER_USER: 'alice', MUSTER_TOKEN: 'tok-alice' });
    assert.equal(r.requests[0]?.headers['x-muster-user'], undefined);
    assert.equal(r.requests[0]?.headers.authorization, 'Bearer tok-alice');
  });
});
