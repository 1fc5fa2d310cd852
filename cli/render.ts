/**
 * Human-readable renderings of the manager's views: `muster nodes`, `muster node`, `muster alerts`
 * (and its `rules` and `metrics`), `muster history`.
 */
import type { AlertView, CatalogMetric, RuleOp, RuleView } from '../common/api/alerts.js';
import type { HistoryEntry } from '../common/api/history.js';
import type { NodeDetail, NodeSummary } from '../common/api/nodes.js';
import type { RecentField, RecentView } from '../common/api/telemetry.js';
import { ago, bytes, duration, figure, fitLastColumn, isoSeconds, num, oneLine, table, truncate } from './format.js';

/** The `muster nodes` table: one row per node, one per claimant when a position is in conflict. */
export function renderNodes(nodes: NodeSummary[], now = Date.now()): string {
  if (nodes.length === 0) return 'no nodes have reported yet';
  const rows: (string | number | null)[][] = [];
  for (const n of nodes) {
    const base = [num(n.cpu_percent), num(n.memory_percent), num(n.temperature), n.gpu_count, n.component_count];
    if (n.conflict) {
      for (const c of n.conflict) {
        rows.push([
          n.id,
          c.hostname,
          c.host_ip,
          'CONFLICT',
          ...(c.host_ip === n.host_ip ? base : [null, null, null, null, null]),
          ago(c.last_seen, now),
          n.link,
        ]);
      }
    } else {
      rows.push([n.id, n.hostname, n.host_ip, n.state.toUpperCase(), ...base, ago(n.last_seen, now), n.link]);
    }
  }
  const counts = { online: 0, suspect: 0, offline: 0 };
  for (const n of nodes) counts[n.state]++;
  return `${table(['NODE', 'HOSTNAME', 'IP', 'STATE', 'CPU%', 'MEM%', 'TEMP°C', 'GPUS', 'COMPS', 'LAST SEEN', 'LINK'], rows)}\n\n${nodes.length} nodes: ${counts.online} online, ${counts.suspect} suspect, ${counts.offline} offline`;
}

/** The `muster node <id>` report: identity, liveness and everything last reported. */
export function renderNode(n: NodeDetail, now = Date.now()): string {
  const out: string[] = [];
  const h = n.heartbeat;
  out.push(`node ${n.id}  (box ${n.box_id}, slot ${n.slot_id}, cpu ${n.cpu_id})`);
  out.push(
    `state      ${n.state.toUpperCase()} since ${n.state_since} (${ago(n.state_since, now)}), last heartbeat ${ago(n.last_seen, now) ?? 'never'}, missed rounds ${n.missed_rounds}`,
  );
  if (n.conflict)
    out.push(
      `CONFLICT   position claimed by ${n.conflict.map((c) => `${c.host_ip} (${c.hostname ?? '?'})`).join(', ')}`,
    );
  if (h) {
    out.push(`host       ${h.hostname}  ${h.host_ip}  service port ${h.service_port}  srio ${h.srio_id}`);
    out.push(
      `hardware   ${h.cpu_type} (${h.cpu_arch}), box type ${h.box_type || '-'}, board ${h.board_type || '-'}, resource ${h.resource_type || '-'}`,
    );
    out.push(`os         ${h.os_type}`);
  }
  const r = n.resource?.resource;
  if (!r) {
    out.push('resource   no report yet');
  } else {
    const c = r.cpu;
    out.push(
      `cpu        ${num(c.usage_percent)}% of ${c.core_count} cores, load ${num(c.load_avg_1m, 2)} ${num(c.load_avg_5m, 2)} ${num(c.load_avg_15m, 2)}, allocated ${c.core_allocated}/${c.core_count} (free ${c.core_count - c.core_allocated})`,
    );
    out.push(
      `sensors    temperature ${num(c.temperature) ?? '-'} °C, voltage ${num(c.voltage, 2) ?? '-'} V, current ${num(c.current, 2) ?? '-'} A, power ${num(c.power) ?? '-'} W`,
    );
    out.push(
      `memory     ${bytes(r.memory.used)} used of ${bytes(r.memory.total)} (${num(r.memory.usage_percent)}%), ${bytes(r.memory.free)} free`,
    );
    if (n.free)
      out.push(
        `free       ${n.free.cores} of ${c.core_count} cores, ${bytes(n.free.memory_bytes)} memory, GPUs: ${n.free.gpus_total} present (how many are free is not reported)`,
      );
    out.push(`reported   ${n.resource_at} (${ago(n.resource_at, now)})`);
    out.push('', 'network');
    out.push(
      table(
        ['INTERFACE', 'RX', 'TX', 'RX PKTS', 'TX PKTS', 'RX ERR', 'TX ERR'],
        r.network.map((x) => [
          x.interface,
          bytes(x.rx_bytes),
          bytes(x.tx_bytes),
          x.rx_packets,
          x.tx_packets,
          x.rx_errors,
          x.tx_errors,
        ]),
      ),
    );
    out.push('', 'disks');
    out.push(
      table(
        ['DEVICE', 'MOUNT', 'SIZE', 'USED', 'FREE', 'USE%'],
        r.disk.map((d) => [
          d.device,
          d.mount_point,
          bytes(d.total),
          bytes(d.used),
          bytes(d.free),
          num(d.usage_percent),
        ]),
      ),
    );
    out.push('', 'gpus');
    out.push(
      r.gpu.length === 0
        ? 'none'
        : table(
            ['INDEX', 'NAME', 'UTIL%', 'MEM%', 'MEM USED', 'MEM TOTAL', 'TEMP°C', 'POWER W'],
            r.gpu.map((g) => [
              g.index,
              g.name,
              num(g.compute_usage),
              num(g.mem_usage),
              bytes(g.mem_used),
              bytes(g.mem_total),
              num(g.temperature),
              num(g.power),
            ]),
          ),
    );
    const comps = n.resource?.component ?? [];
    out.push('', 'components');
    out.push(
      comps.length === 0
        ? 'none'
        : table(
            ['UUID', 'INSTANCE', 'INDEX', 'NAME', 'ID', 'STATE', 'CPU%', 'MEM USED', 'MEM LIMIT', 'TX', 'RX'],
            comps.map((x) => [
              x.uuid,
              x.instance_id,
              x.index,
              x.config.name,
              x.config.id.slice(0, 12),
              x.state,
              num(x.resource.cpu.load),
              bytes(x.resource.memory.mem_used),
              bytes(x.resource.memory.mem_limit),
              bytes(x.resource.network.tx),
              bytes(x.resource.network.rx),
            ]),
          ),
    );
  }
  if (n.transitions.length > 0) {
    out.push('', 'recent transitions');
    out.push(
      table(
        ['AT', 'FROM', 'TO', 'REASON'],
        n.transitions.slice(-10).map((t) => [t.at, t.from, t.to, t.reason]),
      ),
    );
  }
  return out.join('\n');
}

const SPARK = '▁▂▃▄▅▆▇█';

/**
 * One line of sparkline for `values` (null = no reading, shown as a space), at most `width`
 * characters: the samples are split into `width` buckets and each shows its bucket's mean.
 */
export function sparkline(values: readonly (number | null)[], width = 40): string {
  const nums = values.filter((v): v is number => v !== null);
  if (nums.length === 0) return '';
  const lo = Math.min(...nums);
  const hi = Math.max(...nums);
  const buckets = Math.min(width, values.length);
  let out = '';
  for (let b = 0; b < buckets; b++) {
    const part = values
      .slice(Math.floor((b * values.length) / buckets), Math.floor(((b + 1) * values.length) / buckets))
      .filter((v): v is number => v !== null);
    if (part.length === 0) {
      out += ' ';
      continue;
    }
    const mean = part.reduce((a, v) => a + v, 0) / part.length;
    const k = hi === lo ? 0 : Math.round(((mean - lo) / (hi - lo)) * (SPARK.length - 1));
    out += SPARK[k];
  }
  return out;
}

/** The trend lines of `muster node`: the in-memory recent history (GET /api/v1/nodes/:id/recent). */
export function renderRecent(view: RecentView): string {
  const s = view.samples;
  if (s.length < 2) return '';
  const span = Math.round((Date.parse(s[s.length - 1]?.at ?? '') - Date.parse(s[0]?.at ?? '')) / 60_000);
  const rows: [string, RecentField, string][] = [
    ['cpu', 'cpu_usage_percent', '%'],
    ['memory', 'memory_usage_percent', '%'],
    ['cpu temp', 'cpu_temperature', '°C'],
    ['cpu power', 'cpu_power', 'W'],
    ['gpu temp max', 'gpu_temperature_max', '°C'],
    ['gpu use max', 'gpu_usage_max', '%'],
    ['disk use max', 'disk_usage_percent_max', '%'],
  ];
  const out = [`recent (${s.length} samples, last ${span} min; min / last / max)`];
  for (const [label, field, unit] of rows) {
    const values = s.map((x) => x[field]);
    const nums = values.filter((v): v is number => v !== null);
    if (nums.length === 0) continue;
    const last = values.findLast((v) => v !== null) as number;
    out.push(
      `  ${label.padEnd(13)} ${sparkline(values)}  ${num(Math.min(...nums))} / ${num(last)} / ${num(Math.max(...nums))} ${unit}`,
    );
  }
  return out.join('\n');
}

/** How the list tables are laid out: `columns` is the terminal width the last column is cut to fit (none: not cut). */
export interface ListLayout {
  now?: number;
  columns?: number;
}

/** A threshold condition: `> 85 for 30s`, or `<= 10` without a hold time. */
export function condition(op: RuleOp, threshold: number, forMs = 0): string {
  return `${op} ${figure(threshold)}${forMs > 0 ? ` for ${duration(forMs)}` : ''}`;
}

/** `disk.usage_percent[/data]`, `gpu.temperature[1]`, `cpu.temperature`, `[uuid]` without a metric, or null. */
export const metricLabel = (metric: string | null, instance: string | null): string | null =>
  metric === null && instance === null
    ? null
    : oneLine(instance === null ? `${metric}` : `${metric ?? ''}[${instance}]`);

/** Longest message or detail a list table shows even when not cut to the terminal (--json has it all). */
const MAX_CELL = 200;

const ALERT_HEADER = [
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
];

/**
 * The `muster alerts` table, in the order given (the API's: newest first). VALUE is the latest
 * value against the rule (`91.2 > 90`); the last time is how long ago an open alert was last
 * seen, or when a resolved one was resolved.
 */
export function renderAlerts(alerts: AlertView[], layout: ListLayout = {}): string {
  if (alerts.length === 0) return 'no alerts';
  const now = layout.now ?? Date.now();
  const rows = alerts.map((a) => [
    a.id,
    a.severity,
    a.state,
    a.node,
    oneLine(a.rule),
    metricLabel(a.metric, a.instance),
    a.op !== null && a.threshold !== null
      ? `${figure(a.value) ?? '-'} ${a.op} ${figure(a.threshold)}`
      : figure(a.value),
    isoSeconds(a.first_seen),
    a.state === 'resolved' ? `resolved ${ago(a.resolved_at ?? a.last_seen, now)}` : ago(a.last_seen, now),
    truncate(oneLine(a.message), MAX_CELL),
  ]);
  return table(ALERT_HEADER, fitLastColumn(ALERT_HEADER, rows, layout.columns));
}

/** The `muster alerts rules` table. */
export function renderRules(rules: RuleView[]): string {
  if (rules.length === 0) return 'no alert rules';
  return table(
    ['NAME', 'METRIC', 'CONDITION', 'SEVERITY', 'ENABLED', 'SOURCE'],
    rules.map((r) => [
      r.name,
      oneLine(r.metric),
      condition(r.op, r.threshold, r.for_ms),
      r.severity,
      r.enabled ? 'yes' : 'no',
      r.source,
    ]),
  );
}

/** One line about a rule, as `muster alerts rule set` prints it. */
export function describeRule(r: RuleView): string {
  return `rule ${r.name}: ${oneLine(r.metric)} ${condition(r.op, r.threshold, r.for_ms)}, ${r.severity}, ${r.enabled ? 'enabled' : 'disabled'} (source ${r.source})`;
}

/** A metric a threshold rule may use (GET /api/v1/metrics-catalog; common/api/alerts.ts). */
export type { CatalogMetric };

/** The `muster alerts metrics` table. */
export function renderMetrics(metrics: CatalogMetric[], layout: ListLayout = {}): string {
  if (metrics.length === 0) return 'no metrics';
  const header = ['METRIC', 'UNIT', 'ONE PER', 'DESCRIPTION'];
  const rows = metrics.map((m) => [m.name, m.unit, m.instance, oneLine(m.description)]);
  return table(header, fitLastColumn(header, rows, layout.columns));
}

/** A value of a history entry's args, compact: bare when it is a plain word, JSON otherwise. */
function argValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=,{}[\]]+$/.test(v) ? v : JSON.stringify(v);
  if (v === undefined) return 'null';
  return JSON.stringify(v) ?? String(v);
}

/** A history entry's args as `key=value` pairs: `from=suspect reason="heartbeat received"`. */
export function compactArgs(args: Record<string, unknown> | null): string | null {
  if (args === null) return null;
  const text = Object.entries(args)
    .map(([k, v]) => `${k}=${argValue(v)}`)
    .join(' ');
  return text === '' ? null : oneLine(text);
}

const HISTORY_HEADER = ['ID', 'TIME', 'NODE', 'KIND', 'OPERATION', 'RESULT', 'WHO', 'DETAIL'];

/** The `muster history` table, in the order given (newest first). DETAIL is the message, else the args. */
export function renderHistory(entries: HistoryEntry[], layout: ListLayout = {}): string {
  if (entries.length === 0) return 'no history';
  const rows = entries.map((h) => [
    h.id,
    isoSeconds(h.at),
    h.node,
    h.kind,
    oneLine(h.operation),
    h.result,
    oneLine(h.who),
    truncate(h.message ? oneLine(h.message) : (compactArgs(h.args) ?? ''), MAX_CELL),
  ]);
  return table(HISTORY_HEADER, fitLastColumn(HISTORY_HEADER, rows, layout.columns));
}
