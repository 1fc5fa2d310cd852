/**
 * A task runner (agent/exec/runner.ts) for tests and benchmarks: small bounds, short grace and
 * linger, a temp data dir and commands dir, a silent log and its own metrics registry.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { CommandSet } from '../agent/exec/commands.js';
import { ExecRunner, type RunnerOptions } from '../agent/exec/runner.js';

/** A runner over a fresh temp dir (or `opts.dataDir`), not yet `init`ed; its registry is `metrics`. */
export function testRunner(opts: Partial<RunnerOptions> = {}): ExecRunner & { metrics: Registry } {
  const dir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'muster-exec-'));
  const metrics = new Registry();
  const runner = new ExecRunner(
    {
      dataDir: dir,
      stepTimeoutMs: 60_000,
      keepMs: 3_600_000,
      killGraceMs: 500,
      poolSize: 8,
      maxRequests: 32,
      maxTasks: 100,
      maxOutputBytes: 64 * 1024,
      outputLines: 1000,
      logMaxBytes: 1 << 20,
      allowRaw: true,
      maxGenerateFileBytes: 1 << 20,
      commands: new CommandSet(path.join(dir, 'commands')),
      lingerMs: 60_000,
      ...opts,
    },
    pino({ level: 'silent' }),
    metrics,
  );
  return Object.assign(runner, { metrics });
}
