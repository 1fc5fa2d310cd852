/**
 * Task-runner overhead per step (docs/exec.md "The task runner"): `n` one-step tasks running
 * `true`, one after the other, through the agent's runner (agent/exec/runner.ts: plan, temp
 * script file, detached spawn with a process group, output capture, record written atomically at
 * accept, start and end, exec log lines) against the baseline in the same run: a bare
 * `child_process.spawn('sh', ['-c', 'true'])` awaited to its close, the same number of times.
 * Also: the same through the runner with an all-at-once task of `n` steps (pool 30), for the
 * pool's throughput. Target: runner ÷ bare ≤ 1.5 per step.
 *   node --import tsx bench/exec-step.ts [--n 200]
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { ExecRunner } from '../agent/exec/runner.js';
import { testRunner } from '../testkit/exec.js';
import { isMain, removeDir } from './common.js';

/** Figures of one run, ms per step. */
export interface ExecStepResult {
  n: number;
  bareMs: number;
  runnerMs: number;
  ratio: number;
  asyncMsPerStep: number;
}

async function untilEnded(r: ExecRunner, id: string): Promise<void> {
  for (;;) {
    const st = await r.status(id, 0, 5000);
    if (st.state !== 'queued' && st.state !== 'running') {
      if (st.state !== 'done') throw new Error(`task ${id} ended ${st.state}: ${st.message}`);
      return;
    }
  }
}

function bare(): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', 'true'], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout.resume();
    c.stderr.resume();
    c.on('error', reject);
    c.on('close', () => resolve());
  });
}

/** Runs the benchmark (see the module comment). */
export async function runExecStep(n = 200): Promise<ExecStepResult> {
  const r = testRunner({ poolSize: 30, maxTasks: n + 10, maxRequests: n + 10 });
  await r.init();
  try {
    for (let i = 0; i < 10; i++) await bare(); // warm-up
    for (let i = 0; i < 10; i++) {
      const s = r.submit({ steps: [{ command_content: 'true' }], source: 'bench' });
      if (s.ok) await untilEnded(r, s.id);
    }
    let t0 = performance.now();
    for (let i = 0; i < n; i++) await bare();
    const bareMs = (performance.now() - t0) / n;
    t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = r.submit({ steps: [{ command_content: 'true' }], source: 'bench' });
      if (!s.ok) throw new Error(s.message);
      await untilEnded(r, s.id);
    }
    const runnerMs = (performance.now() - t0) / n;
    t0 = performance.now();
    const s = r.submit({
      steps: Array.from({ length: Math.min(n, 256) }, () => ({ command_content: 'true' })),
      async: true,
      source: 'bench',
    });
    if (!s.ok) throw new Error(s.message);
    await untilEnded(r, s.id);
    const asyncMsPerStep = (performance.now() - t0) / Math.min(n, 256);
    return { n, bareMs, runnerMs, ratio: runnerMs / bareMs, asyncMsPerStep };
  } finally {
    await r.stop();
    removeDir(r.opts.dataDir);
  }
}

/** The result as text. */
export function formatExecStep(x: ExecStepResult): string {
  return [
    `steps: ${x.n} one-step tasks running \`true\`, one after the other`,
    `bare spawn (sh -c true):  ${x.bareMs.toFixed(2)} ms/step`,
    `task runner:              ${x.runnerMs.toFixed(2)} ms/step`,
    `ratio runner ÷ bare:      ${x.ratio.toFixed(2)}  (target ≤ 1.5)`,
    `all at once (pool 30):    ${x.asyncMsPerStep.toFixed(2)} ms/step`,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { n: { type: 'string', default: '200' } } });
  console.log(formatExecStep(await runExecStep(Number(values.n))));
}
