/**
 * `muster instance` (docs/scheduling.md "The spec file", "Verbs"): the spec file reader (YAML,
 * sizes and durations as text, constraints checked before sending, bad files named) and the
 * plan, list and status renderings.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readSpec, renderInstance, renderInstances, renderPlan } from '../../cli/commands/instances.js';
import type { InstanceView } from '../../common/api/instances.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-cli-inst-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('muster instance: the spec file', () => {
  it('reads YAML with sizes and durations as text, gpu defaulting to 0', () => {
    const spec = readSpec(
      file(
        'app.yaml',
        [
          'instance_id: radar-1',
          'groups:',
          '  track:',
          '    count: 3',
          '    type: bar',
          '    url: http://files/b',
          '    file: t.bar',
          '    require: { cpu: 1, memory: 64M }',
          '    constraints: ["board_type = GPU", "slot in 1,2"]',
          '    reschedule_after: 30s',
          '    restart: { attempts: 2, interval: 5m, delay: 500ms, max_delay: 1m, backoff: 3 }',
          '    update: { max_parallel: 2, min_healthy: 10s }',
        ].join('\n'),
      ),
    );
    const g = spec.groups.track;
    assert.ok(g);
    assert.deepEqual(g.require, { cpu: 1, memory: 64 * 1024 * 1024, gpu: 0 });
    assert.equal(g.reschedule_after_ms, 30_000);
    assert.deepEqual(g.restart, { attempts: 2, interval_ms: 300_000, delay_ms: 500, max_delay_ms: 60_000, backoff: 3 });
    assert.deepEqual(g.update, { max_parallel: 2, min_healthy_ms: 10_000 });
  });

  it('names the file and what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['groups: {}\n', /instance_id is missing/],
      ['instance_id: "bad id"\ngroups: {}\n', /letters, digits/],
      [
        'instance_id: a\ngroups:\n  g: { count: 1, require: { cpu: 1, memory: 12Q } }\n',
        /groups\.g\.require\.memory "12Q": not a size/,
      ],
      [
        'instance_id: a\ngroups:\n  g: { count: 1, restart: { delay: soon } }\n',
        /groups\.g\.restart\.delay: cannot read "soon" as a duration/,
      ],
      [
        'instance_id: a\ngroups:\n  g: { count: 1, constraints: ["colour = red"] }\n',
        /groups\.g\.constraints\[0\]: unknown attribute "colour"/,
      ],
      ['instance_id: a\n  : : [\n', /not YAML/],
    ];
    for (const [i, [text, re]] of cases.entries()) {
      const f = file(`bad-${i}.yaml`, text);
      assert.throws(
        () => readSpec(f),
        (e: Error) => e.message.startsWith(f) && re.test(e.message),
        text,
      );
    }
    assert.throws(() => readSpec(path.join(dir, 'missing.yaml')), /ENOENT/);
    const big = file('big.yaml', `instance_id: a\n#${'x'.repeat(1 << 20)}\n`);
    assert.throws(() => readSpec(big), /larger than 1048576 bytes/);
  });
});

describe('muster instance: renderings', () => {
  const view: InstanceView = {
    instance_id: 'radar-1',
    status: 'running',
    version: 2,
    spec: {
      instance_id: 'radar-1',
      groups: {
        track: { count: 2, type: 'bar', url: 'u', file: 't-2.bar', require: { cpu: 1, memory: 67108864, gpu: 0 } },
      },
    },
    created_at: 0,
    updated_at: Date.now() - 5000,
    who: 'olga',
    groups: { track: { count: 2, running: 1, starting: 1, failed: 0, lost: 0, stopping: 0, outdated: 1 } },
    components: [
      {
        uuid: 'radar-1.track.0.1',
        group: 'track',
        index: 0,
        node: '1-1-0',
        version: 1,
        phase: 'running',
        reported: 'RUNNING',
        created_at: 0,
        running_since: Date.now() - 60_000,
        reason: null,
      },
      {
        uuid: 'radar-1.track.0.2',
        group: 'track',
        index: 0,
        node: '1-2-0',
        version: 2,
        phase: 'starting',
        reported: null,
        created_at: 0,
        running_since: null,
        reason: 'update',
      },
    ],
  };

  it('status shows groups and components; list the counts', () => {
    const s = renderInstance(view);
    assert.match(s, /instance radar-1: running, version 2, applied by olga/);
    assert.match(s, /track\s+2\s+1\s+1\s+0\s+0\s+0\s+1\s+bar\s+t-2\.bar/);
    assert.match(s, /radar-1\.track\.0\.2\s+1-2-0\s+2\s+starting\s+-/);
    assert.match(renderInstances([view]), /radar-1\s+running\s+2\s+track\s+1\s+2/);
    assert.equal(renderInstances([]), 'no instances');
  });

  it('a plan lists its steps, or says there is nothing to do', () => {
    const p = renderPlan({
      instance_id: 'radar-1',
      version: 3,
      changed: true,
      steps: [
        { action: 'update', group: 'track', index: 0, node: '1-4-0', message: 'replace x on 1-1-0 (file); on 1-4-0' },
        {
          action: 'start',
          group: 'track',
          index: 2,
          node: null,
          message: 'new; cannot be placed: 4 nodes: 4 exhausted on cpu',
        },
      ],
    });
    assert.match(p, /^instance radar-1: apply makes version 3\n {2}update {4}track\[0\]/);
    assert.match(p, /start {5}track\[2\] {7}new; cannot be placed/);
    assert.match(
      renderPlan({ instance_id: 'a', version: 1, changed: false, steps: [] }),
      /spec unchanged \(version 1\)\n {2}nothing to do/,
    );
  });
});
