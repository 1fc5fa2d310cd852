/** Targets (common/target.ts, docs/exec.md "Targets"): parsing, globs, attributes, labels, refusals. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matchesTarget, parseTarget, selectTarget, TargetError, type TargetNode } from '../../common/target.js';

const node = (id: string, attrs: Record<string, string>, labels: Record<string, string> = {}): TargetNode => {
  const [box, slot, cpu] = id.split('-');
  return { id, attrs: { box, slot, cpu, state: 'online', ...attrs }, labels };
};
const fleet = [
  node('1-1-0', { board_type: 'GPU', cpu_arch: 'aarch64' }, { rack: 'A' }),
  node('1-2-0', { board_type: 'CPU', cpu_arch: 'aarch64', state: 'offline' }),
  node('2-1-0', { board_type: 'GPU', cpu_arch: 'x86_64' }, { rack: 'B' }),
  node('2-1-1', { board_type: 'GPU', cpu_arch: 'x86_64' }),
];
const ids = (t: string) => selectTarget(parseTarget(t), fleet).map((n) => n.id);

test('node ids, globs and lists', () => {
  assert.deepEqual(ids('1-1-0'), ['1-1-0']);
  assert.deepEqual(ids('1-*-0'), ['1-1-0', '1-2-0']);
  assert.deepEqual(ids('1-1-0,2-1-?'), ['1-1-0', '2-1-0', '2-1-1']);
  assert.deepEqual(
    ids('all'),
    fleet.map((n) => n.id),
  );
});

test('attributes, negation, labels and their conjunction', () => {
  assert.deepEqual(ids('board_type=GPU'), ['1-1-0', '2-1-0', '2-1-1']);
  assert.deepEqual(ids('board_type=GPU cpu_arch=aarch64'), ['1-1-0']);
  assert.deepEqual(ids('box=2&cpu=1'), ['2-1-1']);
  assert.deepEqual(ids('state!=offline box=1'), ['1-1-0']);
  assert.deepEqual(ids('rack=A,B'), ['1-1-0', '2-1-0']);
  assert.deepEqual(ids('label.rack=B'), ['2-1-0']);
  assert.deepEqual(ids('BOX_ID=1 slot=2'), ['1-2-0']);
  assert.deepEqual(ids('rack!=A'), ['1-2-0', '2-1-0', '2-1-1']);
});

test('bad targets are refused with the term named', () => {
  assert.throws(() => parseTarget('   '), TargetError);
  assert.throws(() => parseTarget('1-1-0;rm'), /bad node pattern/);
  assert.throws(() => parseTarget('a b=c'.replace('a', '$x')), TargetError);
  assert.throws(() => parseTarget('box='), /no value/);
  assert.throws(() => parseTarget('x'.repeat(5000)), /longer than/);
  assert.throws(() => parseTarget(Array(70).fill('box=1').join(' ')), /more than 64 terms/);
});

test('an unknown attribute never matches (no accidental fleet-wide run)', () => {
  assert.equal(matchesTarget(parseTarget('colour=red'), fleet[0] as TargetNode), false);
  assert.deepEqual(ids('board_type=gpu'), []);
});
