/** The CLI's tables for `muster alerts`, `alerts rules`, `alerts metrics` and `muster history` (cli/render.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { duration, figure, fitLastColumn, isoSeconds, oneLine, truncate } from '../../cli/format.js';
import { moreHint, shellWord } from '../../cli/list.js';
import {
  compactArgs,
  condition,
  describeRule,
  metricLabel,
  renderAlerts,
  renderHistory,
  renderMetrics,
  renderRecent,
  renderRules,
  sparkline,
} from '../../cli/render.js';
import type { AlertView, HistoryEntry, RuleView } from '../../manager/alerts/types.js';

const NOW = Date.parse('2026-11-21T09:00:00.000Z');

function alert(over: Partial<AlertView>): AlertView {
  return {
    id: 1,
    kind: 'threshold',
    rule: 'disk_usage_high',
    severity: 'warning',
    node: '1-3-0',
    metric: 'disk.usage_percent',
    instance: '/data',
    value: 91.234,
    threshold: 90,
    op: '>',
    message: 'disk.usage_percent[/data] 91.2 > 90 for 60s',
    source: 'manager',
    state: 'open',
    first_seen: '2026-11-21T08:50:00.123Z',
    last_seen: '2026-11-21T08:59:57.000Z',
    resolved_at: null,
    ...over,
  };
}

function entry(over: Partial<HistoryEntry>): HistoryEntry {
  return {
    id: 1,
    at: '2026-11-21T08:30:00.456Z',
    node: '1-1-0',
    kind: 'state',
    operation: 'suspect',
    args: { from: 'online', reason: 'missed 2 heartbeat rounds' },
    result: null,
    message: null,
    who: 'manager',
    ref: null,
    ...over,
  };
}

const lines = (s: string) => s.split('\n');
/** The cells of a table line (columns are separated by at least two spaces). */
const cells = (line: string) => line.split(/ {2,}/);

describe('format helpers', () => {
  it('isoSeconds drops the milliseconds and keeps UTC; null stays null', () => {
    assert.equal(isoSeconds('2026-11-21T08:50:00.123Z'), '2026-11-21T08:50:00Z');
    assert.equal(isoSeconds('2026-11-21T10:50:00+02:00'), '2026-11-21T08:50:00Z');
    assert.equal(isoSeconds(null), null);
  });

  it('figure prints at most two decimals and no trailing zeros', () => {
    assert.equal(figure(85), '85');
    assert.equal(figure(91.234), '91.23');
    assert.equal(figure(0.5), '0.5');
    assert.equal(figure(-3.1), '-3.1');
    assert.equal(figure(17179869184), '17179869184');
    assert.equal(figure(null), null);
  });

  it('duration prints the largest whole unit, which parseDuration reads back', () => {
    assert.equal(duration(0), '0');
    assert.equal(duration(30_000), '30s');
    assert.equal(duration(90_000), '90s');
    assert.equal(duration(300_000), '5m');
    assert.equal(duration(7_200_000), '2h');
    assert.equal(duration(172_800_000), '2d');
    assert.equal(duration(1500), '1500ms');
  });

  it('oneLine turns control characters into spaces; truncate marks a cut', () => {
    assert.equal(oneLine('a\nb\r\n\tc\x1b[31m'), 'a b c [31m');
    assert.equal(truncate('abcdef', 6), 'abcdef');
    assert.equal(truncate('abcdefg', 6), 'abcde…');
  });

  it('fitLastColumn cuts the last cell to the room left, never below the minimum', () => {
    const header = ['A', 'B'];
    const rows = [['xxxx', 'y'.repeat(50)]];
    // A is 4 wide, plus 2 spaces: 14 left of 20 columns.
    assert.equal(String(fitLastColumn(header, rows, 20, 5)[0]?.[1]), `${'y'.repeat(13)}…`);
    assert.equal(String(fitLastColumn(header, rows, 10, 8)[0]?.[1]).length, 8);
    assert.deepEqual(fitLastColumn(header, rows, undefined), rows);
  });
});

describe('renderAlerts', () => {
  it('shows one row per alert in the order given, with value against threshold and the metric instance', () => {
    const out = renderAlerts(
      [
        alert({ id: 12 }),
        alert({
          id: 11,
          kind: 'node_offline',
          rule: 'node_offline',
          severity: 'critical',
          node: '1-4-0',
          metric: null,
          instance: null,
          value: null,
          threshold: null,
          op: null,
          message: 'node 1-4-0 is offline: missed 5 heartbeat rounds',
          state: 'resolved',
          first_seen: '2026-11-21T07:00:00.000Z',
          last_seen: '2026-11-21T07:10:00.000Z',
          resolved_at: '2026-11-21T08:00:00.000Z',
        }),
      ],
      { now: NOW },
    );
    const [head, first, second] = lines(out);
    assert.deepEqual(cells(head ?? ''), [
      'ID',
      'SEVERITY',
      'STATE',
      'NODE',
      'RULE',
      'METRIC',
      'VALUE',
      'FIRST SEEN',
      'LAST SEEN / RESOLVED',
      'MESSAGE',
    ]);
    assert.deepEqual(cells(first ?? ''), [
      '12',
      'warning',
      'open',
      '1-3-0',
      'disk_usage_high',
      'disk.usage_percent[/data]',
      '91.23 > 90',
      '2026-11-21T08:50:00Z',
      '3s ago',
      'disk.usage_percent[/data] 91.2 > 90 for 60s',
    ]);
    assert.deepEqual(cells(second ?? ''), [
      '11',
      'critical',
      'resolved',
      '1-4-0',
      'node_offline',
      '-',
      '-',
      '2026-11-21T07:00:00Z',
      'resolved 60m ago',
      'node 1-4-0 is offline: missed 5 heartbeat rounds',
    ]);
    // Columns line up: every row's MESSAGE starts where the header's does.
    const at = head?.indexOf('MESSAGE');
    assert.equal(first?.indexOf('disk.usage_percent[/data] 91.2'), at);
    assert.equal(second?.indexOf('node 1-4-0 is offline'), at);
  });

  it('shows an agent alert value without a threshold, and a missing latest value as -', () => {
    const out = renderAlerts(
      [
        alert({
          id: 3,
          kind: 'agent',
          source: 'agent',
          metric: 'fan.rpm',
          instance: null,
          op: null,
          threshold: null,
          value: null,
        }),
        alert({
          id: 2,
          kind: 'agent',
          source: 'agent',
          metric: 'fan.rpm',
          instance: null,
          op: null,
          threshold: null,
          value: 1200,
        }),
        alert({ id: 1, value: null }),
      ],
      { now: NOW },
    );
    const rows = lines(out).slice(1).map(cells);
    assert.equal(rows[0]?.[6], '-');
    assert.equal(rows[1]?.[6], '1200');
    assert.equal(rows[2]?.[6], '- > 90');
  });

  it('cuts a long message to the terminal width, keeps one line per alert, and says when there is none', () => {
    const long = `first line\n${'x'.repeat(300)}`;
    const out = renderAlerts([alert({ message: long })], { now: NOW, columns: 160 });
    const row = lines(out)[1] ?? '';
    assert.equal(lines(out).length, 2);
    assert.ok(row.length <= 160, `${row.length}: ${row}`);
    assert.ok(row.endsWith('…'));
    assert.ok(row.includes('first line x'));
    // Not a terminal: no width, but a very long message is still cut at 200 characters.
    const wide = lines(renderAlerts([alert({ message: long })], { now: NOW }))[1] ?? '';
    assert.ok(wide.endsWith('…'));
    assert.equal(cells(wide).at(-1)?.length, 200);
    assert.equal(renderAlerts([]), 'no alerts');
  });

  it('metricLabel puts the instance in brackets', () => {
    assert.equal(metricLabel('gpu.temperature', '1'), 'gpu.temperature[1]');
    assert.equal(metricLabel('cpu.temperature', null), 'cpu.temperature');
    assert.equal(metricLabel(null, 'radar-7f3a-0'), '[radar-7f3a-0]');
    assert.equal(metricLabel(null, null), null);
  });
});

describe('renderRules', () => {
  const rule = (over: Partial<RuleView>): RuleView => ({
    name: 'cpu_temperature_high',
    metric: 'cpu.temperature',
    op: '>',
    threshold: 85,
    for_ms: 30_000,
    severity: 'warning',
    enabled: true,
    source: 'config',
    updated_at: '2026-11-21T08:00:00.000Z',
    ...over,
  });

  it('shows the condition with its hold time, enabled as yes/no and the source', () => {
    const out = renderRules([
      rule({}),
      rule({
        name: 'gpu_cold',
        metric: 'gpu.temperature',
        op: '<=',
        threshold: 5.5,
        for_ms: 0,
        enabled: false,
        source: 'api',
        severity: 'info',
      }),
    ]);
    assert.deepEqual(lines(out).map(cells), [
      ['NAME', 'METRIC', 'CONDITION', 'SEVERITY', 'ENABLED', 'SOURCE'],
      ['cpu_temperature_high', 'cpu.temperature', '> 85 for 30s', 'warning', 'yes', 'config'],
      ['gpu_cold', 'gpu.temperature', '<= 5.5', 'info', 'no', 'api'],
    ]);
    assert.equal(renderRules([]), 'no alert rules');
  });

  it('describes one rule on one line', () => {
    assert.equal(
      describeRule(rule({ name: 'gpu_hot', metric: 'gpu.temperature', source: 'api', for_ms: 120_000 })),
      'rule gpu_hot: gpu.temperature > 85 for 2m, warning, enabled (source api)',
    );
    assert.equal(condition('>=', 1e9, 500), '>= 1000000000 for 500ms');
  });
});

describe('renderMetrics', () => {
  it('lists name, unit, what tells instances apart and the description', () => {
    const out = renderMetrics([
      { name: 'cpu.temperature', unit: '°C', instance: null, description: 'CPU temperature; null without a sensor' },
      { name: 'disk.usage_percent', unit: '%', instance: 'mount_point', description: 'used share of the filesystem' },
    ]);
    assert.deepEqual(lines(out).map(cells), [
      ['METRIC', 'UNIT', 'ONE PER', 'DESCRIPTION'],
      ['cpu.temperature', '°C', '-', 'CPU temperature; null without a sensor'],
      ['disk.usage_percent', '%', 'mount_point', 'used share of the filesystem'],
    ]);
  });
});

describe('renderHistory', () => {
  it('shows the message as the detail, else the args as key=value pairs', () => {
    const out = renderHistory([
      entry({
        id: 9,
        at: '2026-11-21T08:40:00.000Z',
        kind: 'operation',
        operation: 'deploy.start',
        args: { type: 'bar', uuid: 'radar-1', require: { cpu: 1, memory: 33554432, gpu: 0 } },
        result: 0,
        message: 'started bar app as 30937 on cores 1, memory 32 MiB',
        who: 'alice',
        ref: 'b8951565',
      }),
      entry({ id: 8 }),
      entry({ id: 7, node: null, kind: 'manager', operation: 'start', args: null, who: 'manager' }),
    ]);
    assert.deepEqual(lines(out).map(cells), [
      ['ID', 'TIME', 'NODE', 'KIND', 'OPERATION', 'RESULT', 'WHO', 'DETAIL'],
      [
        '9',
        '2026-11-21T08:40:00Z',
        '1-1-0',
        'operation',
        'deploy.start',
        '0',
        'alice',
        'started bar app as 30937 on cores 1, memory 32 MiB',
      ],
      [
        '8',
        '2026-11-21T08:30:00Z',
        '1-1-0',
        'state',
        'suspect',
        '-',
        'manager',
        'from=online reason="missed 2 heartbeat rounds"',
      ],
      ['7', '2026-11-21T08:30:00Z', '-', 'manager', 'start', '-', 'manager', '-'],
    ]);
    assert.equal(renderHistory([]), 'no history');
  });

  it('compactArgs quotes what is not a plain word and writes objects as JSON', () => {
    assert.equal(
      compactArgs({ a: 'x', b: 'two words', c: 3, d: null, e: { f: [1, 2] }, g: true, h: '' }),
      'a=x b="two words" c=3 d=null e={"f":[1,2]} g=true h=""',
    );
    assert.equal(compactArgs({}), null);
    assert.equal(compactArgs(null), null);
    assert.equal(compactArgs({ m: 'a\nb' }), 'm="a\\nb"');
  });

  it('cuts a long detail to the terminal width', () => {
    const out = renderHistory([entry({ message: 'm'.repeat(400) })], { columns: 100 });
    const row = lines(out)[1] ?? '';
    assert.ok(row.length <= 100, row);
    assert.ok(row.endsWith('…'));
  });
});

describe('the more: line', () => {
  it('repeats the selection and adds --before, quoting for the shell when needed', () => {
    assert.equal(
      moreHint(['alerts'], ['--open', '--node', '1-1-0', '--limit', 20], 123),
      'more: muster alerts --open --node 1-1-0 --limit 20 --before 123',
    );
    assert.equal(
      moreHint(['history'], ['--since', '2026-11-21 08:00'], 7, 'http://10.0.0.1:3926'),
      "more: muster --manager http://10.0.0.1:3926 history --since '2026-11-21 08:00' --before 7",
    );
    assert.equal(shellWord("it's"), `'it'\\''s'`);
  });
});

describe('muster node trend lines', () => {
  it('sparkline: one character per bucket of means, a gap for no reading, flat when constant', () => {
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), '▁▂▃▄▅▆▇█');
    assert.equal(sparkline([5, 5, 5]), '▁▁▁');
    assert.equal(sparkline([0, null, 7]), '▁ █');
    assert.equal(sparkline([null, null]), '');
    assert.equal(
      sparkline(
        Array.from({ length: 400 }, (_, i) => i),
        40,
      ).length,
      40,
    );
  });

  it('renderRecent: min / last / max per figure; figures never reported are left out', () => {
    const sample = (i: number, temp: number | null) => ({
      at: new Date(Date.UTC(2026, 10, 21, 8, i)).toISOString(),
      cpu_usage_percent: 10 * i,
      cpu_temperature: temp,
      memory_usage_percent: 50,
      cpu_power: null,
      gpu_temperature_max: null,
      gpu_usage_max: null,
      disk_usage_percent_max: 40,
    });
    const text = renderRecent({
      node: '1-1-0',
      window_ms: 1800000,
      samples: [sample(0, 40), sample(1, null), sample(2, 60)],
    });
    assert.match(text, /^recent \(3 samples, last 2 min; min \/ last \/ max\)$/m);
    assert.match(text, /^ {2}cpu {11}▁▅█ {2}0\.0 \/ 20\.0 \/ 20\.0 %$/m);
    assert.match(text, /^ {2}cpu temp {6}▁ █ {2}40\.0 \/ 60\.0 \/ 60\.0 °C$/m);
    assert.doesNotMatch(text, /cpu power|gpu/);
    assert.equal(renderRecent({ node: '1-1-0', window_ms: 1, samples: [sample(0, 1)] }), '', 'one sample is no trend');
  });
});
