/**
 * The agent's task runner (agent/exec/runner.ts, docs/exec.md) with real processes: run modes
 * (sequence, async, DAG order), skips on failure, refusals naming the bad steps, timeouts, kill of
 * a whole process group, bounded output, the live line ring with long poll, persistence and a
 * restart that marks running tasks interrupted and leaves no process behind, and the exec log's
 * redaction of secret env vars.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { formatGoDuration, parseGoDuration, parseStepTimeout, rfc3339Local } from '../../agent/exec/duration.js';
import { LineRing, TailBuffer } from '../../agent/exec/output.js';
import { findInterpreter } from '../../agent/exec/plan.js';
import { type ExecRunner, markedProcesses } from '../../agent/exec/runner.js';
import type { ExecStatusReplyData, StepSpec } from '../../common/exec.js';
import { testRunner } from '../../testkit/exec.js';

async function started(opts: Parameters<typeof testRunner>[0] = {}) {
  const r = testRunner(opts);
  await r.init();
  return r;
}

/** Submits and returns the id; fails the test on a refusal. */
function submit(
  r: ExecRunner,
  steps: StepSpec[],
  extra: { async?: boolean; timeout_s?: number; task_id?: string } = {},
) {
  const out = r.submit({ steps, source: 'test', ...extra });
  assert.ok(out.ok, out.ok ? '' : out.message);
  return out.id;
}

/** Long-polls until the task ended; returns the last status. */
async function ended(r: ExecRunner, id: string, limitMs = 20_000): Promise<ExecStatusReplyData> {
  const until = Date.now() + limitMs;
  let since = 0;
  for (;;) {
    const st = await r.status(id, since, 1000);
    since = st.next;
    if (st.state !== 'queued' && st.state !== 'running') return st;
    if (Date.now() > until) assert.fail(`task ${id} still ${st.state}`);
  }
}

/** Whether `pid` runs (a zombie waiting for its parent to reap it does not count). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('Go durations and times', () => {
  it('parses and writes durations as Go does', () => {
    assert.equal(parseGoDuration('24h'), 86_400_000);
    assert.equal(parseGoDuration('1h30m'), 5_400_000);
    assert.equal(parseGoDuration('500ms'), 500);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.throws(() => parseGoDuration('5 minutes'), /not a duration/);
    assert.throws(() => parseGoDuration('-1s'), /not a duration/);
    assert.equal(parseStepTimeout(30), 30_000);
    assert.equal(parseStepTimeout('30'), 30_000);
    assert.equal(parseStepTimeout('2m'), 120_000);
    assert.equal(formatGoDuration(0), '0s');
    assert.equal(formatGoDuration(500), '500ms');
    assert.equal(formatGoDuration(1500), '1.5s');
    assert.equal(formatGoDuration(60_000), '1m0s');
    assert.equal(formatGoDuration(3_600_000), '1h0m0s');
    assert.equal(formatGoDuration(47 * 3_600_000 + 59 * 60_000 + 46_135.436), '47h59m46.135436s');
  });

  it('writes RFC 3339 with the offset of the board', () => {
    const s = rfc3339Local(Date.parse('2022-11-16T13:59:49Z'));
    assert.match(s, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
    assert.equal(Date.parse(s), Date.parse('2022-11-16T13:59:49Z'));
  });
});

describe('bounded output', () => {
  it('keeps the tail and counts the cut', () => {
    const t = new TailBuffer(10);
    t.push(Buffer.from('0123456'));
    t.push(Buffer.from('789abc'));
    assert.equal(t.text(), '3456789abc');
    assert.equal(t.cut, 3);
    t.push(Buffer.alloc(25, 'x'));
    assert.equal(t.text(), 'x'.repeat(10));
    assert.equal(t.cut, 28);
  });

  it('numbers lines and says how many a slow reader lost', () => {
    const ring = new LineRing(4);
    for (let i = 1; i <= 10; i++) ring.add(0, 'stdout', `l${i}`);
    const a = ring.after(0);
    assert.deepEqual(
      a.lines.map((l) => l.line),
      ['l7', 'l8', 'l9', 'l10'],
    );
    assert.equal(a.dropped, 6);
    const b = ring.after(8);
    assert.deepEqual(
      b.lines.map((l) => [l.seq, l.line]),
      [
        [9, 'l9'],
        [10, 'l10'],
      ],
    );
    assert.equal(b.dropped, 0);
    assert.equal(ring.after(10).lines.length, 0);
  });
});

describe('task runner', () => {
  it('runs steps in sequence by default, and a failure skips the rest', async () => {
    const r = await started();
    const dir = r.opts.dataDir;
    const id = submit(r, [
      { command_content: `echo one >> ${dir}/order` },
      { command_type: 'bash', command_content: `echo two >> ${dir}/order; exit 100` },
      { command_content: `echo three >> ${dir}/order` },
    ]);
    const st = await ended(r, id);
    assert.equal(st.state, 'failed');
    assert.deepEqual(
      st.steps.map((s) => [s.name, s.state, s.exit_code]),
      [
        [`${id}-0`, 'done', 0],
        [`${id}-1`, 'failed', 100],
        [`${id}-2`, 'skipped', null],
      ],
    );
    assert.equal(readFileSync(path.join(dir, 'order'), 'utf8'), 'one\ntwo\n');
    assert.match(st.steps[1]?.message ?? '', /exit status 100/);
    assert.match(st.steps[2]?.message ?? '', /skipped/);
    await r.stop();
  });

  it('runs all steps at once with async', async () => {
    const r = await started();
    const t0 = Date.now();
    const id = submit(
      r,
      [0, 1, 2].map(() => ({ command_content: 'sleep 0.6' })),
      { async: true },
    );
    const st = await ended(r, id);
    assert.equal(st.state, 'done');
    // Three 0.6 s sleeps at once end well before 1.8 s in sequence would.
    assert.ok(Date.now() - t0 < 1700, `took ${Date.now() - t0} ms`);
    await r.stop();
  });

  it('orders a DAG by its dependencies and skips the dependants of a failed step', async () => {
    const r = await started();
    const dir = r.opts.dataDir;
    const id = submit(r, [
      { name: 'step2', command_content: `echo step2 >> ${dir}/dag`, depends_on: ['step0'] },
      { name: 'step1', command_content: `echo step1 >> ${dir}/dag`, depends_on: ['step0'] },
      { name: 'step0', command_content: `sleep 0.2; echo step0 >> ${dir}/dag` },
      { name: 'step3', command_content: `echo step3 >> ${dir}/dag`, depends_on: ['step1', 'step2'] },
    ]);
    const st = await ended(r, id);
    assert.equal(st.state, 'done');
    const lines = readFileSync(path.join(dir, 'dag'), 'utf8').trim().split('\n');
    assert.equal(lines[0], 'step0');
    assert.equal(lines[3], 'step3');
    assert.deepEqual(lines.slice(1, 3).sort(), ['step1', 'step2']);

    const id2 = submit(r, [
      { name: 'a', command_content: 'exit 3' },
      { name: 'b', command_content: 'true', depends_on: ['a'] },
      { name: 'c', command_content: 'true' },
      { name: 'd', command_content: 'true', depends_on: ['b', 'c'] },
    ]);
    const st2 = await ended(r, id2);
    assert.equal(st2.state, 'failed');
    assert.deepEqual(
      st2.steps.map((s) => s.state),
      ['failed', 'skipped', 'done', 'skipped'],
    );
    assert.match(st2.steps[1]?.message ?? '', /dependency a failed/);
    await r.stop();
  });

  it('refuses cycles, unknown dependencies, duplicate names and bad command types, naming them', async () => {
    const r = await started();
    const refused = (steps: StepSpec[]) => {
      const out = r.submit({ steps, source: 'test' });
      assert.equal(out.ok, false);
      return out.ok ? '' : out.message;
    };
    assert.match(
      refused([
        { name: 'x', command_content: 'true', depends_on: ['z'] },
        { name: 'y', command_content: 'true', depends_on: ['x'] },
        { name: 'z', command_content: 'true', depends_on: ['y'] },
      ]),
      // Named in dependency order (x waits for z), as the manager names it (common/exec-dag.ts).
      /dependency cycle: (x → z → y → x|z → y → x → z|y → x → z → y)/,
    );
    assert.match(refused([{ name: 'self', command_content: 'true', depends_on: ['self'] }]), /cycle: self → self/);
    assert.match(
      refused([{ name: 'a', command_content: 'true', depends_on: ['nope'] }]),
      /unknown dependencies: a → nope/,
    );
    assert.match(
      refused([
        { name: 'a', command_content: 'true' },
        { name: 'a', command_content: 'true' },
      ]),
      /duplicate step names: a/,
    );
    assert.match(refused([{ command_type: 'cmd', command_content: 'dir' }]), /cmd is a Windows type/);
    assert.match(refused([{ command_type: 'powershell', command_content: 'ls' }]), /powershell is a Windows type/);
    assert.match(refused([{ command_type: 'ruby', command_content: 'p 1' }]), /unknown command_type "ruby"/);
    assert.match(refused([{ command_type: 'sh' }]), /command_content .* is required/);
    assert.match(refused([{ command_content: 'true', env_vars: ['1BAD=x'] }]), /NAME=value/);
    assert.match(refused([{ command_content: 'true', timeout: '5 minutes' }]), /not a duration/);
    assert.equal(r.activeCount(), 0);
    await r.stop();
  });

  it('passes env_vars as environment, never into the script text', async () => {
    const r = await started();
    const id = submit(r, [
      { command_content: 'printf "%s|%s" "$A" "$B"', env_vars: ['A=$(echo injected)', 'B=two words'] },
    ]);
    const st = await ended(r, id);
    assert.equal(st.steps[0]?.stdout_tail, '$(echo injected)|two words');
    await r.stop();
  });

  it('runs python3 where it is installed, and says so where it is not', async () => {
    const r = await started();
    const out = r.submit({
      steps: [{ command_type: 'python3', command_content: 'import os; print(os.environ["X"])', env_vars: ['X=py'] }],
      source: 'test',
    });
    if (findInterpreter('python3')) {
      assert.ok(out.ok);
      const st = await ended(r, out.ok ? out.id : '');
      assert.equal(st.steps[0]?.stdout_tail, 'py\n');
    } else {
      assert.equal(out.ok, false);
      assert.match(out.ok ? '' : out.message, /python3 is not installed/);
    }
    await r.stop();
  });

  it('ends a task at its timeout_s, killing running steps and skipping the rest', async () => {
    const r = await started();
    const id = submit(r, [{ command_content: 'sleep 30' }, { command_content: 'true' }], { timeout_s: 1 });
    const st = await ended(r, id);
    assert.equal(st.state, 'timeout');
    assert.deepEqual(
      st.steps.map((s) => s.state),
      ['timeout', 'skipped'],
    );
    assert.match(st.steps[0]?.message ?? '', /task timed out after 1s/);
    await r.stop();
  });

  it('kills one step by name: its dependants are skipped, the others run on', async () => {
    const r = await started();
    const id = submit(r, [
      { name: 'slow', command_content: 'sleep 30' },
      { name: 'after-slow', command_content: 'true', depends_on: ['slow'] },
      { name: 'other', command_content: 'sleep 0.3' },
    ]);
    await new Promise((x) => setTimeout(x, 200));
    assert.equal(r.kill(id, 'slow').result, 0);
    assert.equal(r.kill(id, 'nope').result, 5);
    const st = await ended(r, id);
    assert.equal(st.state, 'killed');
    assert.deepEqual(
      st.steps.map((s) => s.state),
      ['killed', 'skipped', 'done'],
    );
    await r.stop();
  });

  it('kills a step at its timeout with its whole process group', async () => {
    const r = await started();
    const dir = r.opts.dataDir;
    const id = submit(r, [{ command_content: `sleep 30 & echo $! > ${dir}/child; wait`, timeout: '1s' }]);
    const st = await ended(r, id);
    assert.equal(st.state, 'failed');
    assert.equal(st.steps[0]?.state, 'timeout');
    assert.match(st.steps[0]?.message ?? '', /timed out after 1s/);
    const child = Number(readFileSync(path.join(dir, 'child'), 'utf8'));
    // The group was signalled when the step ended; the kernel delivers and the child exits a
    // moment later (on a loaded machine, not always before the shell is reaped): allow 2 s.
    for (let i = 0; i < 40 && alive(child); i++) await new Promise((x) => setTimeout(x, 50));
    assert.equal(alive(child), false, 'the background child died with the group');
    await r.stop();
  });

  it('kills a task: the running group dies, pending steps are skipped', async () => {
    const r = await started();
    const dir = r.opts.dataDir;
    const id = submit(r, [
      { name: 'long', command_content: `sleep 30 & echo $! > ${dir}/kchild; trap '' TERM; wait` },
      { name: 'after', command_content: 'true' },
    ]);
    await r.status(id, 0, 0);
    // Wait for the child pid to be written.
    for (let i = 0; i < 50 && !existsSync(path.join(dir, 'kchild')); i++) await new Promise((x) => setTimeout(x, 50));
    const k = r.kill(id);
    assert.equal(k.result, 0);
    const st = await ended(r, id);
    assert.equal(st.state, 'killed');
    assert.deepEqual(
      st.steps.map((s) => s.state),
      ['killed', 'skipped'],
    );
    assert.equal(alive(Number(readFileSync(path.join(dir, 'kchild'), 'utf8'))), false);
    assert.equal(r.kill('no-such-task').result, 5);
    await r.stop();
  });

  it('bounds a huge output, keeping the tail and saying how much was cut', async () => {
    const r = await started({ maxOutputBytes: 4096 });
    const id = submit(r, [{ command_content: 'head -c 3000000 /dev/zero | tr "\\0" x; echo; echo END' }]);
    const st = await ended(r, id);
    const s = st.steps[0];
    assert.equal(s?.state, 'done');
    assert.equal(s?.stdout_tail.length, 4096);
    assert.ok(s?.stdout_tail.endsWith('x\nEND\n'));
    assert.equal(s?.stdout_cut_bytes, 3_000_000 + 5 - 4096);
    await r.stop();
  });

  it('streams numbered lines with a long poll, stdout and stderr apart', async () => {
    const r = await started();
    const id = submit(r, [{ command_content: 'echo a; echo b >&2; sleep 0.5; echo c' }]);
    let since = 0;
    const lines: [string, string][] = [];
    for (;;) {
      const st = await r.status(id, since, 5000);
      for (const l of st.output) lines.push([l.stream, l.line]);
      assert.ok(st.next >= since);
      since = st.next;
      if (st.state === 'done') break;
    }
    assert.deepEqual(lines.sort(), [
      ['stderr', 'b'],
      ['stdout', 'a'],
      ['stdout', 'c'],
    ]);
    assert.equal((await r.status('nope')).result, 5);
    await r.stop();
  });

  it('bounds the steps running at once with the pool and queues the rest', async () => {
    const r = await started({ poolSize: 2 });
    const dir = r.opts.dataDir;
    const script = `n=$(ls ${dir}/slots 2>/dev/null | wc -l); echo $n >> ${dir}/peak; touch ${dir}/slots/$$; sleep 0.3; rm ${dir}/slots/$$`;
    submit(r, [{ command_content: `mkdir -p ${dir}/slots` }]);
    await new Promise((x) => setTimeout(x, 300));
    const id = submit(
      r,
      [0, 1, 2, 3, 4, 5].map(() => ({ command_content: script })),
      { async: true },
    );
    assert.ok(r.runningSteps() <= 2);
    const st = await ended(r, id);
    assert.equal(st.state, 'done');
    const peak = Math.max(...readFileSync(path.join(dir, 'peak'), 'utf8').trim().split('\n').map(Number));
    assert.ok(peak <= 1, `at most one other step ran alongside, saw ${peak}`);
    await r.stop();
  });

  it('refuses submissions beyond exec.max_requests', async () => {
    const r = await started({ maxRequests: 1 });
    const id = submit(r, [{ command_content: 'sleep 5' }]);
    const out = r.submit({ steps: [{ command_content: 'true' }], source: 'test' });
    assert.equal(out.ok, false);
    assert.equal(out.ok ? 0 : out.result, 7);
    assert.match(out.ok ? '' : out.message, /exec.max_requests/);
    const text = await r.metrics.metrics();
    assert.match(text, /muster_agent_exec_refused_total\{reason="max_requests"\} 1/);
    r.kill(id);
    await ended(r, id);
    await r.stop();
  });

  it('keeps results on disk (0600) and marks a task running at a crash interrupted, killing what it left', async () => {
    const r = await started();
    const dir = r.opts.dataDir;
    const done = submit(r, [{ command_content: 'echo kept' }], { task_id: 'kept-task' });
    await ended(r, done);
    const id = submit(
      r,
      [{ command_content: `sleep 60 & echo $! > ${dir}/orphan; sleep 60` }, { command_content: 'true' }],
      {
        task_id: 'crash-task',
      },
    );
    for (let i = 0; i < 50 && !existsSync(path.join(dir, 'orphan')); i++) await new Promise((x) => setTimeout(x, 50));
    await new Promise((x) => setTimeout(x, 100));
    const file = path.join(dir, 'exec', 'tasks', `${id}.json`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const onDisk = JSON.parse(readFileSync(file, 'utf8')) as { steps: { pgid: number | null; state: string }[] };
    assert.equal(onDisk.steps[0]?.state, 'running');
    const pgid = onDisk.steps[0]?.pgid as number;
    assert.ok(pgid > 0);
    const orphan = Number(readFileSync(path.join(dir, 'orphan'), 'utf8'));
    assert.ok(alive(orphan));
    const marked = markedProcesses(new Set([id])).get(id) ?? [];
    assert.ok(marked.includes(pgid) && marked.includes(orphan), `marked ${marked}`);

    // A "crash": a second runner on the same data dir, the first never stopped.
    const r2 = await started({ dataDir: dir });
    const st = await r2.status(id);
    assert.equal(st.state, 'interrupted');
    assert.deepEqual(
      st.steps.map((s) => s.state),
      ['interrupted', 'skipped'],
    );
    for (let i = 0; i < 40 && (alive(orphan) || alive(pgid)); i++) await new Promise((x) => setTimeout(x, 50));
    assert.equal(alive(orphan), false, 'the background child is gone');
    assert.equal(alive(pgid), false, 'the step is gone');
    assert.deepEqual((markedProcesses(new Set([id])).get(id) ?? []).filter(alive), []);
    assert.equal((await r2.status('kept-task')).steps[0]?.stdout_tail, 'kept\n');
    // The first runner's process ended too; stop it quietly.
    await r.stop();
    await r2.stop();
  });

  it('on stop kills running steps and records running and queued tasks interrupted', async () => {
    const r = await started({ poolSize: 1 });
    const dir = r.opts.dataDir;
    const a = submit(r, [{ command_content: `sleep 30 & echo $! > ${dir}/stopchild; wait` }]);
    const b = submit(r, [{ command_content: 'true' }]);
    for (let i = 0; i < 50 && !existsSync(path.join(dir, 'stopchild')); i++)
      await new Promise((x) => setTimeout(x, 50));
    await r.stop();
    const r2 = await started({ dataDir: dir });
    const sa = await r2.status(a);
    const sb = await r2.status(b);
    assert.deepEqual([sa.state, sa.steps[0]?.state], ['interrupted', 'interrupted']);
    assert.deepEqual([sb.state, sb.steps[0]?.state], ['interrupted', 'skipped']);
    assert.equal(alive(Number(readFileSync(path.join(dir, 'stopchild'), 'utf8'))), false);
    await r2.stop();
  });

  it('expires results after exec.keep', async () => {
    const r = await started({ keepMs: 300 });
    const id = submit(r, [{ command_content: 'true' }]);
    await ended(r, id);
    await new Promise((x) => setTimeout(x, 800));
    assert.equal((await r.status(id)).result, 5);
    assert.equal(existsSync(path.join(r.opts.dataDir, 'exec', 'tasks', `${id}.json`)), false);
    await r.stop();
  });

  it('logs step start and end to the exec log with secret env vars redacted', async () => {
    const r = await started();
    const id = submit(r, [
      {
        name: 'deploy-db',
        command_content: 'curl -s http://admin:pw@db.local/x >/dev/null 2>&1; true',
        env_vars: ['DB_PASSWORD=hunter2', 'API_TOKEN=tok-123', 'MODE=fast', 'aws_secret_access_key=k'],
      },
    ]);
    await ended(r, id);
    await r.execLog.write({
      event: 'end',
      task: 'flush',
      step: 0,
      name: '',
      command_type: '',
      command: '',
      source: '',
    });
    const text = readFileSync(path.join(r.opts.dataDir, 'exec.log'), 'utf8');
    assert.equal(statSync(path.join(r.opts.dataDir, 'exec.log')).mode & 0o777, 0o600);
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.task === id);
    assert.deepEqual(
      lines.map((l) => l.event),
      ['start', 'end'],
    );
    assert.deepEqual(lines[0]?.env, ['DB_PASSWORD=***', 'API_TOKEN=***', 'MODE=fast', 'aws_secret_access_key=***']);
    for (const secret of ['hunter2', 'tok-123', 'admin:pw']) assert.ok(!text.includes(secret), secret);
    const rec = readFileSync(path.join(r.opts.dataDir, 'exec', 'tasks', `${id}.json`), 'utf8');
    for (const secret of ['hunter2', 'tok-123']) assert.ok(!rec.includes(secret), `record holds ${secret}`);
    await r.stop();
  });

  it('rotates the exec log past exec.log_max_bytes', async () => {
    const r = await started({ logMaxBytes: 2048 });
    for (let i = 0; i < 40; i++)
      await r.execLog.write({
        event: 'start',
        task: `t${i}`,
        step: 0,
        name: 'n',
        command_type: 'sh',
        command: 'x'.repeat(40),
        source: 't',
      });
    const dir = r.opts.dataDir;
    assert.ok(statSync(path.join(dir, 'exec.log')).size <= 2048);
    assert.ok(existsSync(path.join(dir, 'exec.log.1')));
    await r.stop();
  });

  it('runs command-set entries with their arguments, refuses raw commands with allow_raw false', async () => {
    const r = await started({ allowRaw: false });
    const dir = r.opts.dataDir;
    const script = Buffer.from(`#!/bin/sh\necho "args:$*" > ${dir}/gen.txt\necho ran "$@"\n`);
    const sha = createHash('sha256').update(script).digest('hex');
    await r.opts.commands.put('shot', script, sha, 2, `${dir}/gen.txt`);
    await assert.rejects(r.opts.commands.put('bad', script, '0'.repeat(64), 0, null), /does not match/);
    assert.deepEqual(
      r.opts.commands.list().map((e) => [e.name, e.argument_count]),
      [['shot', 2]],
    );
    const raw = r.submit({ steps: [{ command_content: 'id' }], source: 'test' });
    assert.equal(raw.ok, false);
    assert.match(raw.ok ? '' : raw.message, /exec.allow_raw is false/);
    const wrong = r.submit({ steps: [{ command: 'shot', args: ['one'] }], source: 'test' });
    assert.match(wrong.ok ? '' : wrong.message, /takes 2 arguments, got 1/);
    const none = r.submit({ steps: [{ command: 'nope' }], source: 'test' });
    assert.match(none.ok ? '' : none.message, /no command "nope"/);
    const id = submit(r, [{ command: 'shot', args: ['a', 'b c'], kwargs: { mode: 'x' } }]);
    const st = await ended(r, id);
    assert.equal(st.steps[0]?.stdout_tail, 'ran a b c --mode=x\n');
    const f = await r.file(id, 0);
    assert.equal(f.result, 0);
    assert.equal(Buffer.from(f.content_b64 ?? '', 'base64').toString(), 'args:a b c --mode=x\n');
    // A command changed by hand is refused rather than run.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(dir, 'commands', 'shot'), '#!/bin/sh\necho evil\n');
    const tampered = r.submit({ steps: [{ command: 'shot', args: ['a', 'b'] }], source: 'test' });
    assert.equal(tampered.ok, false);
    assert.ok(readdirSync(path.join(dir, 'exec', 'run')).length === 0, 'no script left behind');
    await r.stop();
  });
});
