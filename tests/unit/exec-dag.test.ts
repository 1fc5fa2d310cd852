/** Step checks shared by the manager, the agent and the CLI (common/exec-dag.ts; docs/exec.md "Task format"). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StepSpec } from '../../common/exec.js';
import { checkSteps, findCycle, runMode, stepName } from '../../common/exec-dag.js';

const s = (name: string | undefined, deps: string[] = []): StepSpec => ({
  ...(name !== undefined ? { name } : {}),
  command_content: 'true',
  ...(deps.length ? { depends_on: deps } : {}),
});

test('good steps pass; unnamed steps are <task id>-<n>; run modes', () => {
  assert.equal(checkSteps([s('a'), s('b', ['a']), s('c', ['a'])]), null);
  assert.equal(checkSteps([s(undefined), s(undefined)], 't1'), null);
  assert.equal(stepName({}, 2, 't1'), 't1-2');
  assert.equal(runMode([s('a')]), 'sequence');
  assert.equal(runMode([s('a')], true), 'parallel');
  assert.equal(runMode([s('a'), s('b', ['a'])], true), 'dag');
});

test('cycles are named in dependency order, self-dependencies too', () => {
  assert.deepEqual(checkSteps([s('a', ['b']), s('b', ['c']), s('c', ['a'])]), {
    field: '/steps/0/depends_on',
    message: 'dependency cycle: a → b → c → a',
  });
  assert.match(checkSteps([s('a', ['a'])])?.message ?? '', /dependency cycle: a → a/);
  assert.match(checkSteps([s('x'), s('a', ['b']), s('b', ['a'])])?.message ?? '', /a → b → a/);
});

test('unknown dependencies, duplicates, and steps with both or neither of script and command', () => {
  assert.deepEqual(checkSteps([s('a', ['nope'])]), {
    field: '/steps/0/depends_on/0',
    message: 'step "a" depends on unknown step "nope"',
  });
  assert.match(checkSteps([s('a'), s('a')])?.message ?? '', /duplicate step name "a" \(steps 0 and 1\)/);
  assert.match(checkSteps([s(undefined), s('t-0')], 't')?.message ?? '', /duplicate step name "t-0"/);
  assert.match(checkSteps([{ name: 'a' }])?.message ?? '', /exactly one of/);
  assert.match(checkSteps([{ name: 'a', command: 'x', command_content: 'y' }])?.message ?? '', /exactly one of/);
});

test('a 10,000-step chain is checked without a stack overflow', () => {
  const deps = Array.from({ length: 10_000 }, (_, i) => (i === 0 ? [] : [i - 1]));
  assert.equal(findCycle(deps), null);
  deps[0] = [9999];
  assert.equal(findCycle(deps)?.length, 10_000);
});
