/**
 * For the telemetry tests and benches: a private InfluxDB 1.x (`influxd` from the Debian package `influxdb`)
 * in a temp dir on free 127.0.0.1 ports, that can be stopped and started again on the same data;
 * and an InfluxQL query helper (report bodies: testkit/bodies.ts).
 *
 * Nothing of the system's InfluxDB is used: no /etc/influxdb, no port 8086, no /var/lib/influxdb.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, type Proc, startProcess, waitFor } from './process.js';

/** The influxd binary (MUSTER_TEST_INFLUXD overrides). */
export const INFLUXD = process.env.MUSTER_TEST_INFLUXD ?? '/usr/bin/influxd';

/** A reason when influxd is not installed (for needs()). */
export function missingInfluxd(): string | false {
  return existsSync(INFLUXD) ? false : `needs ${INFLUXD} (Debian package influxdb; make test installs it)`;
}

/** One statement's result of GET /query. */
export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** A private influxd. */
export interface Influxd {
  /** Base URL, http://127.0.0.1:<port>. */
  readonly url: string;
  readonly httpPort: number;
  /** Its temp dir (config, meta, data, wal). */
  readonly dir: string;
  /** Everything it printed, over all its runs. */
  output(): string;
  /** Whether it runs now. */
  running(): boolean;
  /** Starts it (again, on the same dirs and ports) and waits until GET /ping answers 204. */
  start(): Promise<void>;
  /** SIGTERM, and waits until it has exited (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Runs InfluxQL `q` (on `db` when given) and returns the first statement's series; throws on an error. */
  query(q: string, db?: string): Promise<InfluxSeries[]>;
  /** Stops it and removes its dir. */
  destroy(): Promise<void>;
}

/** Starts a private influxd; see Influxd. */
export async function startInfluxd(): Promise<Influxd> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-influxd-'));
  const httpPort = await freePort();
  const rpcPort = await freePort();
  const url = `http://127.0.0.1:${httpPort}`;
  const conf = path.join(dir, 'influxdb.conf');
  writeFileSync(
    conf,
    `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${dir}/meta"
  logging-enabled = false

[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
`,
  );
  let proc: Proc | null = null;
  let past = '';
  const ping = async () => {
    const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2000) });
    return res.status === 204;
  };
  const d: Influxd = {
    url,
    httpPort,
    dir,
    output: () => past + (proc?.output() ?? ''),
    running: () => proc !== null && proc.proc.exitCode === null && proc.proc.signalCode === null,
    async start() {
      if (d.running()) return;
      if (proc) past += proc.output();
      proc = startProcess(INFLUXD, ['-config', conf]);
      const p = proc;
      await waitFor(
        `influxd on ${url} answering /ping`,
        async () => {
          if (p.proc.exitCode !== null) throw new Error(`influxd exited ${p.proc.exitCode}:\n${p.output()}`);
          return ping();
        },
        30_000,
        100,
      );
    },
    async stop() {
      if (proc) await proc.stop('SIGTERM');
    },
    async query(q: string, db?: string) {
      const u = new URL('/query', url);
      u.searchParams.set('q', q);
      if (db) u.searchParams.set('db', db);
      // POST: InfluxQL that writes (CREATE, DROP) is refused over GET.
      const res = await fetch(u, { method: /^\s*(select|show)\b/i.test(q) ? 'GET' : 'POST' });
      const body = (await res.json()) as {
        error?: string;
        results?: { error?: string; series?: InfluxSeries[] }[];
      };
      const err = body.error ?? body.results?.[0]?.error;
      if (!res.ok || err) throw new Error(`InfluxQL ${q}: HTTP ${res.status} ${err ?? ''}`);
      return body.results?.[0]?.series ?? [];
    },
    async destroy() {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await d.start();
  return d;
}

/** `SELECT count(field) FROM measurement [WHERE ...]` as a number (0 when there are no points). */
export async function countPoints(d: Influxd, db: string, measurement: string, field: string, where = '') {
  const s = await d.query(`SELECT count("${field}") FROM "${measurement}"${where ? ` WHERE ${where}` : ''}`, db);
  const v = s[0]?.values[0]?.[1];
  return typeof v === 'number' ? v : 0;
}
