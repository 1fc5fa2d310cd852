/**
 * Property-based fuzzing (issue 12, "Fuzzing") of the parsers and validators that take input from
 * the network: the agent's multicast query parser (parseQuery, agent/link/listener.ts), the
 * manager's report routes (manager/routes/reports.ts, through fastify.inject on a real Ingest)
 * and the agent's deploy command (agent/http/commands.ts over the real CommandRegistry and
 * Supervisor, with in-memory drivers that use the real url/file checks).
 *
 * Inputs are random, or valid spec bodies (testkit/bodies.ts) mutated: fields dropped, duplicated
 * (in the JSON text), retyped, set to huge, negative or raw number tokens (1e400, -0), NaN-like
 * strings, unicode (lone surrogates included), deep nesting; then the serialized text truncated,
 * byte-flipped or spliced. Every input must get a clear rejection (the query parser's reason, the
 * documented 400 `{ error, field?, message }`, a deploy reply with a non-zero `result`) or be
 * accepted exactly when it is valid; never a throw, never a 5xx.
 *
 * Fixed seed and run count by default; a longer run on demand (docs/operations.md "The test suite"):
 *   FUZZ_RUNS=100000 node --import tsx --test tests/unit/fuzz.test.ts
 * A failure prints the seed and the shrunk counterexample; `FUZZ_SEED=<seed>` replays it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Supervisor } from '../../agent/deploy/supervisor.js';
import { validateBarSource } from '../../agent/drivers/bar/driver.js';
import { validateDockerSource } from '../../agent/drivers/docker/reference.js';
import type { ComponentRecord, Observed, StartSpec, WorkloadDriver } from '../../agent/drivers/driver.js';
import { createCommandRegistry } from '../../agent/handlers/index.js';
import { commandRoutes } from '../../agent/http/commands.js';
import { type AgentServer, createAgentServer } from '../../agent/http/server.js';
import { parseQuery, type RejectReason } from '../../agent/link/listener.js';
import type { WorkloadType } from '../../common/api/primitives.js';
import { createHttpServer } from '../../common/http.js';
import {
  AgentAlertBody,
  DeployReplyBody,
  DeployRequestBody,
  HeartbeatBody,
  QueryBody,
  ResourceBody,
} from '../../common/protocol.js';
import { compile } from '../../common/validate.js';
import { AlertEngine } from '../../manager/alerts/engine.js';
import { ComponentTracker } from '../../manager/components.js';
import { Ingest } from '../../manager/ingest.js';
import { NodeRegistry } from '../../manager/registry.js';
import { reportRoutes } from '../../manager/routes/reports.js';
import { installErrorHandlers } from '../../manager/routes/shared.js';
import { Store } from '../../manager/store/store.js';
import { Telemetry } from '../../manager/telemetry/index.js';
import { component, disk, gpu, heartbeat, nic, resource } from '../../testkit/bodies.js';
import { testRunner } from '../../testkit/exec.js';
import { TEST_STORE_CONFIG, TEST_TELEMETRY_CONFIG } from '../../testkit/server.js';
import { inject } from '../helpers/agent-port.js';

const SEED = Number(process.env.FUZZ_SEED ?? 42);
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const params = { seed: SEED, numRuns: RUNS };

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const tmp = (prefix: string) => {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// JSON mutation: a value tree that may hold raw number tokens and objects with duplicate keys,
// serialized by hand so the text can say what JSON.stringify cannot.
// ---------------------------------------------------------------------------------------------

/** A token written as is into the JSON text (`1e400`, `-0`, `00`). */
class Raw {
  constructor(readonly text: string) {}
}
/** An object written with its entries in order, duplicate keys included. */
class Dup {
  constructor(readonly entries: [string, unknown][]) {}
}

function serialize(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Dup) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${serialize(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(serialize).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${serialize(x)}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** A deep copy that keeps Raw tokens (immutable, shared) and Dup objects. */
function clone<T>(v: T): T {
  if (v instanceof Raw) return v;
  if (v instanceof Dup) return new Dup(v.entries.map(([k, x]) => [k, clone(x)])) as T;
  if (Array.isArray(v)) return v.map(clone) as T;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v))
      Object.defineProperty(out, k, { value: clone(x), enumerable: true, writable: true, configurable: true });
    return out as T;
  }
  return v;
}

/** `inner` nested `depth` levels deep (arrays and objects alternating), as a Raw token: no recursion. */
function nest(inner: string, depth: number): Raw {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    open += i % 2 ? '{"a":' : '[';
    close = (i % 2 ? '}' : ']') + close;
  }
  return new Raw(open + inner + close);
}

/** Every container path of `v` (objects and arrays, the root included). */
function containers(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object' || v instanceof Raw || v instanceof Dup) return out;
  out.push(at);
  for (const [k, x] of Object.entries(v)) containers(x, [...at, Array.isArray(v) ? Number(k) : k], out);
  return out;
}

function getAt(v: unknown, p: (string | number)[]): unknown {
  let cur = v as Record<string | number, unknown>;
  for (const k of p) cur = cur[k] as Record<string | number, unknown>;
  return cur;
}

/** A nesting depth: mostly around the agent's bound (32), sometimes far past it. */
const depth = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }) },
);

/** Values that break types and ranges. */
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    0,
    -1,
    -0.5,
    1.5,
    65535,
    65536,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    2 ** 53 + 2,
    Number.MAX_VALUE,
    -Number.MAX_VALUE,
    Number.MIN_VALUE,
    '',
    ' ',
    'NaN',
    'Infinity',
    '-Infinity',
    '-1',
    '1e309',
    '0x10',
    '1',
    '\u0000',
    '\ud800',
    '\udfff',
    '🚀💥',
    '计算I型',
    'e\u0301',
    '\u202e',
    '../../../etc/passwd',
    '/heartbeat',
    '/resource',
    'http://user:pass@10.0.0.1:8080/x',
    'start',
    'stop',
    'bar',
    'docker',
    '0.0.0.0',
    '255.255.255.255',
    '239.192.168.80',
    '10.0.0.5',
    '010.000.000.005',
    '1.2.3.4.5',
    '::1',
    '__proto__',
    [],
    {},
    [null],
    { __proto__: null },
  ),
  fc.constantFrom(
    new Raw('1e400'),
    new Raw('-1e400'),
    new Raw('-0'),
    new Raw('1E2'),
    new Raw('1.0'),
    new Raw('00'),
    new Raw('NaN'),
    new Raw('Infinity'),
    new Raw('123456789012345678901234567890'),
    new Raw('"\\ud800"'),
    new Raw('"\\u0000"'),
  ),
  fc.integer(),
  fc.double(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((b) => new Raw(b.toString())),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ maxLength: 3000 }),
  fc.jsonValue({ maxDepth: 3 }),
  depth.map((d) => nest('1', d)),
);

/** One mutation of a value tree; applied in place on a clone. */
type Mutation = (root: { v: unknown }, rng: fc.Random) => void;

const pick = <T>(rng: fc.Random, xs: readonly T[]): T => xs[rng.nextInt(0, xs.length - 1)] as T;

/** A container of the tree (the holder `root` itself counts, so the whole body can be replaced). */
function pickSlot(
  root: { v: unknown },
  rng: fc.Random,
): { parent: Record<string | number, unknown>; key: string | number } {
  const paths = containers(root.v).map((p) => p);
  const slots: { parent: Record<string | number, unknown>; key: string | number }[] = [
    { parent: root as unknown as Record<string, unknown>, key: 'v' },
  ];
  for (const p of paths) {
    const c = getAt(root.v, p) as Record<string | number, unknown>;
    if (c instanceof Raw || c instanceof Dup) continue;
    for (const k of Object.keys(c)) slots.push({ parent: c, key: Array.isArray(c) ? Number(k) : k });
  }
  return pick(rng, slots);
}

const mutations = (nasty: fc.Arbitrary<unknown>): fc.Arbitrary<Mutation> =>
  fc.oneof(
    // drop a field
    fc.constant<Mutation>((root, rng) => {
      const s = pickSlot(root, rng);
      if (Array.isArray(s.parent)) s.parent.splice(Number(s.key), 1);
      else delete s.parent[s.key];
    }),
    // retype / out-of-range a field
    nasty.map<Mutation>((x) => (root, rng) => {
      const s = pickSlot(root, rng);
      s.parent[s.key] = clone(x);
    }),
    // add an unknown or prototype-ish key
    fc
      .tuple(fc.constantFrom('extra', '__proto__', 'constructor', 'prototype', 'toString', 'result', ''), nasty)
      .map<Mutation>(([k, x]) => (root, rng) => {
        const paths = containers(root.v).filter((p) => {
          const c = getAt(root.v, p);
          return !Array.isArray(c) && !(c instanceof Raw) && !(c instanceof Dup);
        });
        if (paths.length === 0) return;
        const c = getAt(root.v, pick(rng, paths)) as Record<string, unknown>;
        Object.defineProperty(c, k, { value: clone(x), enumerable: true, configurable: true, writable: true });
      }),
    // duplicate a key in the JSON text, with another value first or last
    fc.tuple(nasty, fc.boolean()).map<Mutation>(([x, first]) => (root, rng) => {
      const s = pickSlot(root, rng);
      const c = s.parent[s.key];
      if (c === null || typeof c !== 'object' || Array.isArray(c) || c instanceof Raw || c instanceof Dup) return;
      const entries = Object.entries(c);
      if (entries.length === 0) return;
      const [k] = pick(rng, entries);
      const extra: [string, unknown] = [k, clone(x)];
      s.parent[s.key] = new Dup(first ? [extra, ...entries] : [...entries, extra]);
    }),
    // wrap a field in deep nesting
    depth.map<Mutation>((d) => (root, rng) => {
      const s = pickSlot(root, rng);
      s.parent[s.key] = nest(serialize(s.parent[s.key]), d);
    }),
  );

/** What is done to the serialized text. */
const textMutation: fc.Arbitrary<(b: Buffer) => Buffer> = fc.oneof(
  { weight: 8, arbitrary: fc.constant((b: Buffer) => b) },
  fc.nat().map((n) => (b: Buffer) => b.subarray(0, b.length === 0 ? 0 : n % b.length)),
  fc
    .array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 })
    .map((flips) => (b: Buffer) => {
      const out = Buffer.from(b);
      for (const [i, x] of flips) if (out.length > 0) out[i % out.length] = (out[i % out.length] as number) ^ x;
      return out;
    }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([i, bytes]) => (b: Buffer) => {
    const at = b.length === 0 ? 0 : i % b.length;
    return Buffer.concat([b.subarray(0, at), Buffer.from(bytes), b.subarray(at)]);
  }),
);

/** A mutated `valid` body as bytes: 1-4 tree mutations, then maybe a text mutation. */
const mutated = (valid: () => unknown): fc.Arbitrary<Buffer> =>
  fc
    .tuple(fc.array(mutations(nastyValue), { minLength: 1, maxLength: 4 }), textMutation, fc.infiniteStream(fc.nat()))
    .map(([ms, text, stream]) => {
      const root = { v: valid() };
      const it = stream[Symbol.iterator]();
      // A deterministic Random for the mutations from the stream fast-check gave us (shrinkable).
      const rng = { nextInt: (lo: number, hi: number) => lo + ((it.next().value as number) % (hi - lo + 1)) };
      for (const m of ms) m(root, rng as unknown as fc.Random);
      return text(Buffer.from(serialize(root.v)));
    });

/** Random bytes, random text and random JSON: inputs that owe nothing to the spec. */
const randomInput: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'binary', maxLength: 300 }).map((s) => Buffer.from(s)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify({ api_version: 1, data: v }) ?? 'null')),
);

const input = (valid: () => unknown) =>
  fc.oneof({ weight: 6, arbitrary: mutated(valid) }, { weight: 1, arbitrary: randomInput });

/** The body as the server would parse it, or undefined when it is not JSON. */
function parsed(b: Buffer): { v: unknown } | undefined {
  try {
    return { v: JSON.parse(b.toString('utf8')) };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// parseQuery
// ---------------------------------------------------------------------------------------------

const validQuery = () => ({
  api_version: 1,
  data: { manager_ip: '192.168.10.254', manager_port: 3926, url: '/heartbeat' },
});
const REASONS = new Set<RejectReason>([
  'oversize',
  'json',
  'api_version',
  'manager_ip',
  'manager_port',
  'url',
  'schema',
]);
const checkQuery = compile<QueryBody>(QueryBody);

function assertQueryVerdict(b: Buffer): void {
  const r = parseQuery(b); // a throw fails the property
  if (r.ok) {
    // Accepted only what the schema accepts, and what it returns round-trips.
    assert.ok(checkQuery.check(r.query).ok);
    assert.ok(parseQuery(Buffer.from(JSON.stringify(r.query))).ok);
    return;
  }
  assert.ok(REASONS.has(r.reason), `unknown reason ${r.reason}`);
  assert.equal(typeof r.detail, 'string');
  assert.ok(r.detail.length > 0);
}

describe('fuzz: parseQuery (agent/link/listener.ts)', () => {
  it('never throws on mutated or random datagrams; accepts or names a reason', () => {
    fc.assert(fc.property(input(validQuery), assertQueryVerdict), params);
  });

  it('accepts every valid query, whatever the whitespace and unknown fields', () => {
    const usable = fc.ipV4().filter((ip) => {
      const first = Number(ip.split('.')[0]);
      return ip !== '0.0.0.0' && first < 224;
    });
    const q = fc.record(
      {
        manager_ip: usable,
        manager_port: fc.integer({ min: 1, max: 65535 }),
        url: fc.constantFrom('/heartbeat', '/resource'),
        jitter_ms: fc.integer({ min: 0, max: 60000 }),
        extra: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: ['manager_ip', 'manager_port', 'url'] },
    );
    fc.assert(
      fc.property(q, fc.constantFrom(undefined, 0, 1, 4, '\t'), (data, indent) => {
        const r = parseQuery(Buffer.from(JSON.stringify({ api_version: 1, data }, null, indent)));
        assert.ok(r.ok, r.ok ? '' : `${r.reason}: ${r.detail}`);
        assert.equal(r.query.data.manager_ip, data.manager_ip);
      }),
      params,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The manager's report routes
// ---------------------------------------------------------------------------------------------

const BODY_LIMIT = 64 * 1024;

/** The report routes on a real Ingest, as tests/unit/routes-reports.test.ts builds them. */
async function managerServer() {
  const dir = tmp('muster-fuzz-mgr-');
  const metrics = new Registry();
  const store = Store.open(dir, TEST_STORE_CONFIG, log, metrics);
  const alerts = new AlertEngine(store, log);
  const components = new ComponentTracker(store, alerts, 'warning');
  const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 });
  store.setNodeSource(() => undefined);
  const telemetry = new Telemetry(TEST_TELEMETRY_CONFIG, log, metrics);
  const ingest = new Ingest({ registry, store, components, alerts, telemetry, log, metrics });
  const app = createHttpServer(log, BODY_LIMIT);
  installErrorHandlers(app, { bodyLimit: BODY_LIMIT, log, onReportRefused: (...a) => ingest.refused(...a) });
  await app.register(reportRoutes, { ingest, alerts });
  return { app, close: () => store.close() };
}

const validHeartbeat = () => heartbeat({ gpu: [{ index: 0, name: 'Jingjia JM9271' }] });
const validResource = () => resource({ network: [nic()], disk: [disk()], gpu: [gpu()], component: [component()] });
const validAlert = () => ({
  api_version: 1,
  data: {
    host_ip: '10.0.0.5',
    box_id: 1,
    slot_id: 3,
    cpu_id: 0,
    name: 'component_crashed',
    state: 'firing',
    severity: 'critical',
    message: 'app died',
    instance: 'u-1',
  },
});

const REPORTS = [
  { url: '/heartbeat', valid: validHeartbeat, check: compile(HeartbeatBody) },
  { url: '/resource', valid: validResource, check: compile(ResourceBody) },
  { url: '/alert', valid: validAlert, check: compile(AgentAlertBody) },
] as const;

/** Sends `b` to `url`; asserts the answer is a 200 of the route or a documented refusal. */
async function assertReportVerdict(
  app: FastifyInstance,
  url: string,
  check: { check(v: unknown): { ok: boolean } },
  b: Buffer,
  contentType: string,
): Promise<void> {
  const r = await app.inject({ method: 'POST', url, payload: b, headers: { 'content-type': contentType } });
  const what = `${url} ${r.statusCode} ${r.body.slice(0, 300)} <- ${b.toString('utf8').slice(0, 300)}`;
  assert.ok(r.statusCode < 500, what);
  const doc = parsed(b);
  if (r.statusCode === 200) {
    // Accepted: it was JSON and valid (the two validators, ajv and TypeBox, agree).
    assert.ok(doc !== undefined && check.check(doc.v).ok, `accepted an invalid body: ${what}`);
    if (url === '/alert') assert.match(r.body, /"state":"(open|resolved|not_open)"/, what);
    else assert.equal(r.body, '', what);
    return;
  }
  const body = JSON.parse(r.body) as Record<string, unknown>;
  if (r.statusCode === 413) {
    assert.ok(b.length > BODY_LIMIT, what);
    assert.equal(body.error, 'payload_too_large', what);
    return;
  }
  assert.equal(r.statusCode, 400, what);
  assert.equal(body.error, 'bad_request', what);
  assert.equal(typeof body.message, 'string', what);
  assert.ok((body.message as string).length > 0, what);
  assert.equal(typeof body.field, 'string', what);
  assert.match(body.field as string, /^\//, what);
  for (const k of Object.keys(body)) assert.ok(['error', 'field', 'message'].includes(k), what);
  // Refused only what is not a valid body.
  if (doc !== undefined) assert.ok(!check.check(doc.v).ok, `refused a valid body: ${what}`);
}

describe('fuzz: the manager report routes (manager/routes/reports.ts)', () => {
  for (const { url, valid, check } of REPORTS) {
    it(`POST ${url}: mutated and random bodies get 200 only when valid, else 400/413; never a 5xx`, async () => {
      const { app, close } = await managerServer();
      try {
        const ct = fc.constantFrom('application/json', 'text/plain', 'application/octet-stream');
        await fc.assert(
          fc.asyncProperty(input(valid), ct, (b, type) => assertReportVerdict(app, url, check, b, type)),
          params,
        );
        // And the untouched valid body is still accepted.
        const r = await app.inject({ method: 'POST', url, payload: valid() });
        assert.equal(r.statusCode, 200, r.body);
      } finally {
        await app.close();
        close();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The agent's deploy command
// ---------------------------------------------------------------------------------------------

/** An in-memory runtime with the real url/file checks of its type. */
class MemDriver implements WorkloadDriver {
  private readonly running = new Set<string>();
  private starts = 0;
  constructor(readonly type: WorkloadType) {}
  validate(url: string, file: string) {
    return this.type === 'bar' ? validateBarSource(url, file) : validateDockerSource(url, file);
  }
  async start(spec: StartSpec) {
    this.running.add(spec.uuid);
    this.starts++;
    return { id: String(1000 + this.starts), name: spec.file };
  }
  async stop(rec: ComponentRecord) {
    this.running.delete(rec.uuid);
  }
  async observe() {
    return new Map<string, Observed>();
  }
  async adopt(recs: readonly ComponentRecord[]) {
    return new Map(recs.map((r) => [r.uuid, this.running.has(r.uuid)]));
  }
}

const TOKEN = 'fuzz-token';
const MiB = 1024 * 1024;

async function agentServer() {
  const supervisor = new Supervisor(
    { bar: new MemDriver('bar'), docker: new MemDriver('docker') },
    () => ({ cores: [0, 1, 2, 3, 4, 5, 6, 7], memoryBytes: 16384 * MiB, gpus: [0] }),
    { dataDir: tmp('muster-fuzz-agent-'), stopGraceMs: 10, keepEndedMs: 0 },
    log,
  );
  await supervisor.init();
  const exec = testRunner({ dataDir: tmp('muster-fuzz-exec-') });
  await exec.init();
  const registry = createCommandRegistry({ supervisor, exec, commands: exec.opts.commands, log });
  const app = createAgentServer(log, new Registry(), () => ({
    status: 'ok',
    node: '1-3-0',
    version: 'test',
    uptime_s: 0,
    multicast_joined: true,
    last_query_at: null,
  }));
  commandRoutes(app, registry, supervisor, { token: TOKEN, disabled: false }, log);
  return Object.assign(app, { supervisor });
}

let uuidSeq = 0;
const validDeploy = () => ({
  api_version: 1,
  data: {
    mode: 'start',
    type: 'bar',
    uuid: `fz-${uuidSeq++}`,
    url: 'http://10.0.0.1:8080/bundles',
    file: 'app.tgz',
    require: { cpu: 1, memory: 64 * MiB, gpu: 0 },
    instance_id: 'inst-1',
    index: 0,
  },
});
const checkDeploy = compile(DeployRequestBody);
const checkReply = compile(DeployReplyBody);

async function assertDeployVerdict(
  app: AgentServer & { supervisor: Supervisor },
  b: Buffer,
  auth: string,
): Promise<void> {
  const r = await inject(app, {
    method: 'POST',
    url: '/deploy',
    payload: b,
    headers: { authorization: auth, 'content-type': 'application/json' },
  });
  const what = `${r.statusCode} ${r.body.slice(0, 300)} <- ${b.toString('utf8').slice(0, 300)}`;
  assert.ok(r.statusCode < 500, what);
  const reply = JSON.parse(r.body) as { api_version: unknown; data: Record<string, unknown> };
  assert.equal(reply.api_version, 1, what);
  const { result, message } = reply.data;
  assert.ok(Number.isInteger(result), what);
  assert.equal(typeof message, 'string', what);
  assert.ok((message as string).length > 0, what);
  // Every reply, refusals included, is a spec deploy reply, so a manager validating it reads `result`.
  const rc = checkReply.check(reply);
  assert.ok(rc.ok, `${rc.ok ? '' : `${rc.error.field} ${rc.error.message}`}: ${what}`);
  if (auth !== `Bearer ${TOKEN}`) {
    assert.equal(r.statusCode, 401, what);
    assert.equal(result, 6, what);
    return;
  }
  const doc = parsed(b);
  if (doc === undefined || !checkDeploy.check(doc.v).ok) {
    // Not JSON, too deep, or not the schema: refused as a bad request.
    assert.equal(r.statusCode, 400, what);
    assert.equal(result, 1, what);
    return;
  }
  // Schema-valid: done (0), or refused by the supervisor's own rules; never an internal error.
  assert.notEqual(result, 4, what);
  assert.equal(result === 0, r.statusCode === 200, what);
  const data = (doc.v as { data: { mode: string; uuid: string } }).data;
  if (result === 0 && data.mode === 'start') {
    // Give the cores back, so that later starts still reach the driver.
    const s = await inject(app, {
      method: 'POST',
      url: '/deploy',
      payload: { api_version: 1, data: { mode: 'stop', type: reply.data.type, uuid: data.uuid } },
      headers: { authorization: auth },
    });
    assert.equal(s.statusCode, 200, `stop after ${what}: ${s.body}`);
    // The snapshot a /resource report takes forgets the stopped record (keepEndedMs 0), so long
    // runs do not slow down on a growing record file.
    await app.supervisor.snapshot(AbortSignal.timeout(1000));
  }
}

describe('fuzz: the agent deploy command (agent/http/commands.ts)', () => {
  it('POST /deploy: mutated and random bodies get a reply with a result, non-zero unless valid; never a 5xx', async () => {
    const app = await agentServer();
    try {
      await fc.assert(
        fc.asyncProperty(input(validDeploy), (b) => assertDeployVerdict(app, b, `Bearer ${TOKEN}`)),
        params,
      );
      const ok = await inject(app, {
        method: 'POST',
        url: '/deploy',
        payload: validDeploy(),
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal((ok.json() as { data: { result: number } }).data.result, 0);
    } finally {
      await app.close();
    }
  });

  it('regression: a request refused by the schema still gets a spec deploy reply (malformed fields not echoed)', async () => {
    // Found by this fuzzer: a start without `type` was answered without `type`, which a manager
    // validating replies (manager/agents/http.ts) took for "not a deploy reply" and lost result 1.
    const app = await agentServer();
    try {
      const { type: _type, ...noType } = validDeploy().data;
      for (const data of [
        noType,
        { ...validDeploy().data, mode: 5 },
        { ...validDeploy().data, uuid: ['x'], id: 0, require: { cpu: 'one' } },
      ]) {
        const r = await inject(app, {
          method: 'POST',
          url: '/deploy',
          payload: { api_version: 1, data },
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        assert.equal(r.statusCode, 400);
        const reply = r.json() as { data: Record<string, unknown> };
        assert.ok(checkReply.check(reply).ok, r.body);
        assert.equal(reply.data.result, 1);
        assert.equal(typeof reply.data.mode, 'string');
        assert.equal(reply.data.file, 'app.tgz', 'well-formed fields are still echoed');
      }
    } finally {
      await app.close();
    }
  });

  it('POST /deploy without the right token: 401, result 6, whatever the body', async () => {
    const app = await agentServer();
    try {
      const auth = fc.oneof(
        fc.constant(''),
        fc.constant('Bearer'),
        fc.constant(`Bearer ${TOKEN}x`),
        fc.constant(`Basic ${TOKEN}`),
        fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`.replace(/[^\x20-\x7e]/g, '')),
      );
      await fc.assert(
        fc.asyncProperty(
          input(validDeploy),
          auth.filter((a) => a.trim() !== `Bearer ${TOKEN}`),
          (b, a) => assertDeployVerdict(app, b, a),
        ),
        { ...params, numRuns: Math.max(1, Math.floor(RUNS / 3)) },
      );
    } finally {
      await app.close();
    }
  });
});
