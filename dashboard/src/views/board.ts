/**
 * A board's page (docs/dashboard.md "Board"): identity, liveness and transitions, what is free,
 * the components with stop (operator) and a start form (operator) through POST
 * /api/v1/deployments, the recent deployments, the board's open alerts, and live charts.
 *
 * Charts: the manager's in-memory window (GET /nodes/:id/recent: CPU %, memory %, CPU and hottest
 * GPU temperature, CPU power, busiest GPU, fullest disk) seeds them; while the page is open every
 * new resource report (GET /nodes/:id, polled every 2 s) adds a sample with every figure: load,
 * CPU voltage / current / power, per-GPU usage / memory / temperature / power, network rx/tx rates
 * per interface (from the byte counters), per-mount disk use.
 *
 * With InfluxDB on (GET /telemetry says so), buttons choose 1 h, 24 h or 7 d instead: the charts
 * then show GET /nodes/:id/series?range= (aggregated by the manager's InfluxDB query to at most
 * telemetry.influxdb.query.max_points buckets). The page times each choice from the click to the
 * last chart drawn: the `muster:range` performance measure, and `data-drawn-ms` on the charts
 * section (docs/dashboard.md "Performance").
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { DeploymentListReply, DeploymentReply } from '../../../common/api/deploy.js';
import type { NodeDetail } from '../../../common/api/nodes.js';
import type {
  RecentView,
  SeriesLine,
  SeriesRange,
  SeriesReply,
  TelemetryStatus,
} from '../../../common/api/telemetry.js';
import type { ResourceData } from '../../../common/protocol.js';
import { api, get, qs } from '../api.js';
import { Chart, type Line } from '../chart.js';
import { bytes, fmt } from '../format.js';
import { live, useLive } from '../live.js';
import { can } from '../session.js';
import { ErrorLine, html, StateBadge, Time, useLoad } from '../ui.js';

type Res = ResourceData['resource'];

/** One point of the charts: time (s) and the figures; `r` is the whole report when it came live. */
interface Point {
  t: number;
  cpu: number | null;
  mem: number | null;
  temp: number | null;
  power: number | null;
  gpuTemp: number | null;
  gpuUse: number | null;
  disk: number | null;
  r?: Res;
}

const maxOf = (xs: (number | null)[]) => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? Math.max(...v) : null;
};

function pointOf(t: number, r: Res): Point {
  return {
    t,
    cpu: r.cpu.usage_percent,
    mem: r.memory.usage_percent,
    temp: r.cpu.temperature,
    power: r.cpu.power,
    gpuTemp: maxOf(r.gpu.map((g) => g.temperature)),
    gpuUse: maxOf(r.gpu.map((g) => g.compute_usage)),
    disk: maxOf(r.disk.map((d) => d.usage_percent)),
    r,
  };
}

/** Most points kept on the page (30 min of 2 s samples). */
const MAX_POINTS = 900;

/** A chart of the board page: a title, the unit of its axis, its lines. */
interface ChartSpec {
  title: string;
  unit: string;
  lines: Line[];
}

/** The charts of an InfluxDB series answer, in the order and with the titles of the live charts. */
function seriesCharts(s: SeriesReply): ChartSpec[] {
  const of = (m: string, f: string) => s.lines.filter((l) => l.measurement === m && l.field === f);
  const line = (l: SeriesLine, label: string, scale = 1): Line => ({
    label,
    values: scale === 1 ? l.values : l.values.map((v) => (v === null ? null : v / scale)),
  });
  const one = (m: string, f: string, label: string) => of(m, f).map((l) => line(l, label));
  const perGpu = (f: string) => of('gpu', f).map((l) => line(l, `gpu${l.tag}`));
  return [
    {
      title: 'CPU and memory',
      unit: '%',
      lines: [...one('cpu', 'usage_percent', 'cpu'), ...one('memory', 'usage_percent', 'memory')],
    },
    {
      title: 'Load average',
      unit: '',
      lines: [
        ...one('cpu', 'load_avg_1m', '1 min'),
        ...one('cpu', 'load_avg_5m', '5 min'),
        ...one('cpu', 'load_avg_15m', '15 min'),
      ],
    },
    { title: 'Temperature', unit: '°C', lines: [...one('cpu', 'temperature', 'cpu'), ...perGpu('temperature')] },
    { title: 'CPU power', unit: 'W', lines: one('cpu', 'power', 'power') },
    {
      title: 'CPU voltage and current',
      unit: '',
      lines: [...one('cpu', 'voltage', 'V'), ...one('cpu', 'current', 'A')],
    },
    { title: 'GPU usage', unit: '%', lines: perGpu('compute_usage') },
    { title: 'GPU memory', unit: '%', lines: perGpu('mem_usage') },
    { title: 'GPU power', unit: 'W', lines: perGpu('power') },
    {
      title: 'Network',
      unit: 'KiB/s',
      lines: [
        ...of('network', 'rx_rate').map((l) => line(l, `${l.tag} rx`, 1024)),
        ...of('network', 'tx_rate').map((l) => line(l, `${l.tag} tx`, 1024)),
      ],
    },
    { title: 'Disk use', unit: '%', lines: of('disk', 'usage_percent').map((l) => line(l, l.tag ?? 'disk')) },
  ];
}

const RANGES: SeriesRange[] = ['1h', '24h', '7d'];
const RANGE_TEXT: Record<SeriesRange, string> = { '1h': '1 h', '24h': '24 h', '7d': '7 d' };

function Charts({ id, detail }: { id: string; detail: NodeDetail | null }) {
  const influx = useLoad(() => get<TelemetryStatus>('/telemetry'), []);
  const [range, setRange] = useState<SeriesRange | 'live'>('live');
  const [series, setSeries] = useState<SeriesReply | null>(null);
  const [seriesError, setSeriesError] = useState<unknown>(null);
  const [drawnMs, setDrawnMs] = useState<number | null>(null);
  /** The range being timed: the charts not drawn yet since its answer arrived. */
  const timing = useRef<{ range: string; waiting: Set<string> | null } | null>(null);
  const choose = (r: SeriesRange | 'live') => {
    performance.clearMarks('muster:range-start');
    performance.mark('muster:range-start');
    timing.current = { range: r, waiting: null };
    setDrawnMs(null);
    setRange(r);
    setSeriesError(null);
    if (r === 'live') {
      setSeries(null);
      return;
    }
    get<SeriesReply>(`/nodes/${id}/series${qs({ range: r })}`)
      .then((s) => {
        performance.mark('muster:range-data');
        if (timing.current?.range === r) setSeries(s);
      })
      .catch((e) => {
        if (timing.current?.range === r) setSeriesError(e);
      });
  };
  useEffect(() => {
    setRange('live');
    setSeries(null);
  }, [id]);
  const [points, setPoints] = useState<Point[]>([]);
  const lastAt = useRef<string | null>(null);
  useEffect(() => {
    lastAt.current = null;
    setPoints([]);
    get<RecentView>(`/nodes/${id}/recent`)
      .then((v) => {
        const seeded = v.samples.map((s) => ({
          t: Date.parse(s.at) / 1000,
          cpu: s.cpu_usage_percent,
          mem: s.memory_usage_percent,
          temp: s.cpu_temperature,
          power: s.cpu_power,
          gpuTemp: s.gpu_temperature_max,
          gpuUse: s.gpu_usage_max,
          disk: s.disk_usage_percent_max,
        }));
        setPoints((live) => [...seeded.filter((p) => live.length === 0 || p.t < live[0]!.t), ...live]);
      })
      .catch(() => undefined);
  }, [id]);
  useEffect(() => {
    const at = detail?.resource_at ?? null;
    const r = detail?.resource?.resource;
    if (!at || !r || at === lastAt.current) return;
    lastAt.current = at;
    const p = pointOf(Date.parse(at) / 1000, r);
    setPoints((ps) => (ps.length && ps.at(-1)!.t >= p.t ? ps : [...ps, p].slice(-MAX_POINTS)));
  }, [detail?.resource_at]);

  const liveCharts = useMemo(() => {
    const times = points.map((p) => p.t);
    const col = (f: (p: Point) => number | null | undefined) => points.map((p) => f(p) ?? null);
    const liveOnly = points.filter((p) => p.r);
    const lastR = liveOnly.at(-1)?.r;
    const out: ChartSpec[] = [
      {
        title: 'CPU and memory',
        unit: '%',
        lines: [
          { label: 'cpu', values: col((p) => p.cpu) },
          { label: 'memory', values: col((p) => p.mem) },
        ],
      },
      {
        title: 'Load average',
        unit: '',
        lines: [
          { label: '1 min', values: col((p) => p.r?.cpu.load_avg_1m) },
          { label: '5 min', values: col((p) => p.r?.cpu.load_avg_5m) },
          { label: '15 min', values: col((p) => p.r?.cpu.load_avg_15m) },
        ],
      },
      {
        title: 'Temperature',
        unit: '°C',
        lines: [
          { label: 'cpu', values: col((p) => p.temp) },
          ...(lastR?.gpu.length || points.some((p) => p.gpuTemp !== null)
            ? [{ label: 'hottest gpu', values: col((p) => p.gpuTemp) }]
            : []),
        ],
      },
      { title: 'CPU power', unit: 'W', lines: [{ label: 'power', values: col((p) => p.power) }] },
      {
        title: 'CPU voltage and current',
        unit: '',
        lines: [
          { label: 'V', values: col((p) => p.r?.cpu.voltage) },
          { label: 'A', values: col((p) => p.r?.cpu.current) },
        ],
      },
    ];
    for (const [title, unit, f] of [
      ['GPU usage', '%', (g: Res['gpu'][number]) => g.compute_usage],
      ['GPU memory', '%', (g: Res['gpu'][number]) => g.mem_usage],
      ['GPU temperature', '°C', (g: Res['gpu'][number]) => g.temperature],
      ['GPU power', 'W', (g: Res['gpu'][number]) => g.power],
    ] as const) {
      if (!lastR?.gpu.length) break;
      out.push({
        title,
        unit,
        lines: lastR.gpu.map((g, i) => ({
          label: `gpu${i} ${g.name}`,
          values: col((p) => (p.r?.gpu[i] ? f(p.r.gpu[i]!) : null)),
        })),
      });
    }
    if (lastR?.network.length) {
      const rate = (name: string, dir: 'rx_bytes' | 'tx_bytes') =>
        points.map((p, i) => {
          const prev = i > 0 ? points[i - 1] : undefined;
          const a = prev?.r?.network.find((n) => n.interface === name)?.[dir];
          const b = p.r?.network.find((n) => n.interface === name)?.[dir];
          if (a === undefined || b === undefined || !prev || p.t <= prev.t || b < a) return null;
          return (b - a) / (p.t - prev.t) / 1024;
        });
      out.push({
        title: 'Network',
        unit: 'KiB/s',
        lines: lastR.network.slice(0, 4).flatMap((n) => [
          { label: `${n.interface} rx`, values: rate(n.interface, 'rx_bytes') },
          { label: `${n.interface} tx`, values: rate(n.interface, 'tx_bytes') },
        ]),
      });
    }
    out.push({
      title: 'Disk use',
      unit: '%',
      lines: lastR?.disk.length
        ? lastR.disk.slice(0, 6).map((d) => ({
            label: d.mount_point,
            values: col((p) =>
              p.r ? (p.r.disk.find((x) => x.mount_point === d.mount_point)?.usage_percent ?? null) : null,
            ),
          }))
        : [{ label: 'fullest', values: col((p) => p.disk) }],
    });
    return { times, all: out };
  }, [points]);

  const charts = useMemo(() => {
    const src = range !== 'live' && series ? { times: series.times, all: seriesCharts(series) } : liveCharts;
    // A figure this board never reported (null in every sample) gets no chart: a note says so.
    const drawn = src.all.filter((c) => c.lines.some((l) => l.values.some((v) => v !== null)));
    const missing = src.all.filter((c) => !drawn.includes(c)).map((c) => c.title);
    return { times: src.times, out: drawn, missing };
  }, [liveCharts, series, range]);

  // Timing a range choice: from the click to the last of its charts drawn (with its data).
  useEffect(() => {
    const t = timing.current;
    // Wait for the chosen range's answer (the previous range stays drawn meanwhile).
    if (!t || t.waiting || (t.range !== 'live' && series?.range !== t.range)) return;
    t.waiting = new Set(charts.out.map((c) => c.title));
    if (t.waiting.size === 0) finish();
  }, [charts]);
  const finish = () => {
    const t = timing.current;
    if (!t) return;
    timing.current = null;
    const m = performance.measure('muster:range', 'muster:range-start');
    setDrawnMs(Math.round(m.duration));
  };
  const onDrawn = (title: string) => {
    const w = timing.current?.waiting;
    if (!w?.delete(title)) return;
    if (w.size === 0) finish();
  };

  const enabled = influx.data?.influxdb.enabled === true;
  const samples =
    range === 'live'
      ? `${points.length} samples`
      : series
        ? `${series.times.length} buckets of ${series.step_s} s from InfluxDB`
        : 'loading…';
  return html`<section aria-labelledby="charts-h" class="charts-section" data-range=${range} data-drawn-ms=${drawnMs ?? ''}>
    <h2 id="charts-h">Charts <small>(${range === 'live' ? "the manager's recent window, then live every report" : `the last ${RANGE_TEXT[range]}`}; ${samples})</small></h2>
    ${
      enabled
        ? html`<div class="ranges" role="group" aria-label="time range">
      <button type="button" aria-pressed=${range === 'live'} onClick=${() => choose('live')}>live</button>
      ${RANGES.map((r) => html`<button type="button" key=${r} aria-pressed=${range === r} onClick=${() => choose(r)}>${RANGE_TEXT[r]}</button>`)}
      ${drawnMs !== null ? html`<small class="drawn">drawn in ${drawnMs} ms</small>` : ''}
    </div>`
        : ''
    }
    <${ErrorLine} error=${seriesError} />
    ${charts.missing.length && charts.times.length ? html`<p class="note">Not reported by this board${range === 'live' ? '' : ` in the last ${RANGE_TEXT[range]}`}: ${charts.missing.join(', ')}.</p>` : ''}
    <div class="charts">${charts.out.map((c) => html`<${Chart} key=${c.title} title=${c.title} unit=${c.unit} times=${charts.times} lines=${c.lines} onDrawn=${onDrawn} />`)}</div>
  </section>`;
}

function StartForm({ id, onDone }: { id: string; onDone: (m: string) => void }) {
  const [f, setF] = useState({ type: 'bar', url: '', file: '', cpu: '1', memory: '64', gpu: '0' });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const r = await api<DeploymentReply>('POST', '/deployments', {
        node: id,
        mode: 'start',
        type: f.type,
        url: f.url,
        file: f.file,
        require: { cpu: Number(f.cpu), memory: Math.round(Number(f.memory) * 1048576), gpu: Number(f.gpu) },
      });
      setError(null);
      onDone(`start ${r.deployment.uuid} sent (deployment ${r.deployment.id.slice(0, 8)})`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="start-form" onSubmit=${submit} aria-labelledby="start-h">
    <h3 id="start-h">Start a component</h3>
    <label>Type <select name="type" value=${f.type} onChange=${set('type')}><option value="bar">bar</option><option value="docker">docker</option></select></label>
    <label>URL <input name="url" required value=${f.url} onInput=${set('url')} placeholder="http://files/bundles or host:5000" /></label>
    <label>File <input name="file" required value=${f.file} onInput=${set('file')} placeholder="app-1.0.tgz or image:tag" /></label>
    <label>Cores <input name="cpu" type="number" min="0" value=${f.cpu} onInput=${set('cpu')} /></label>
    <label>Memory (MiB) <input name="memory" type="number" min="1" value=${f.memory} onInput=${set('memory')} /></label>
    <label>GPUs <input name="gpu" type="number" min="0" value=${f.gpu} onInput=${set('gpu')} /></label>
    <button type="submit" disabled=${busy}>Start</button>
    <${ErrorLine} error=${error} />
  </form>`;
}

/** The board page. */
export function Board({ id }: { id: string }) {
  useLive();
  const { data: d, error, reload } = useLoad(() => get<NodeDetail>(`/nodes/${id}`), [id], 2000);
  const deps = useLoad(() => get<DeploymentListReply>(`/deployments${qs({ node: id, limit: 10 })}`), [id], 3000);
  const [note, setNote] = useState('');
  const [actionError, setActionError] = useState<unknown>(null);
  const operator = can('operator');
  const stop = async (uuid: string) => {
    try {
      const r = await api<DeploymentReply>('POST', '/deployments', { node: id, mode: 'stop', uuid });
      setActionError(null);
      setNote(`stop ${uuid} sent (deployment ${r.deployment.id.slice(0, 8)})`);
      void deps.reload();
      void reload();
    } catch (e) {
      setActionError(e);
    }
  };
  const alerts = live.open.filter((a) => a.node === id);
  if (!d)
    return html`<section><h1>Board ${id}</h1>${error ? html`<${ErrorLine} error=${error} />` : html`<p>Loading…</p>`}</section>`;
  const hb = d.heartbeat;
  const r = d.resource;
  return html`<section aria-labelledby="board-h" class="board">
    <h1 id="board-h">Board ${d.id} <${StateBadge} state=${d.state} conflict=${d.conflict !== null} /></h1>
    <p class="toolbar"><a href=${`#/node/${d.id}/screen`} id="screen-link">Screen</a> <a href=${`#/exec`}>Run a command</a> <a href=${`#/files`}>Files</a></p>
    <${ErrorLine} error=${error} />
    <div class="cards">
      <div class="card"><h2>Identity</h2><dl>
        <dt>Hostname</dt><dd>${d.hostname ?? '–'}</dd>
        <dt>Address</dt><dd>${d.host_ip}</dd>
        <dt>Box / slot / cpu</dt><dd>${d.box_id} / ${d.slot_id} / ${d.cpu_id}</dd>
        ${hb ? html`<dt>Board</dt><dd>${hb.board_type} (${hb.box_type})</dd><dt>CPU</dt><dd>${hb.cpu_type}, ${hb.cpu_arch}</dd><dt>OS</dt><dd>${hb.os_type}</dd>` : ''}
        <dt>State since</dt><dd><${Time} at=${d.state_since} /></dd>
        <dt>Last heartbeat</dt><dd><${Time} at=${d.last_seen} /></dd>
        <dt>Last resource report</dt><dd><${Time} at=${d.resource_at} /></dd>
      </dl></div>
      <div class="card"><h2>Now</h2><dl>
        <dt>CPU</dt><dd>${fmt(d.cpu_percent, '%')}</dd>
        <dt>Memory</dt><dd>${fmt(d.memory_percent, '%')}${r ? ` (${bytes(r.resource.memory.used)} of ${bytes(r.resource.memory.total)})` : ''}</dd>
        <dt>Temperature</dt><dd>${fmt(d.temperature, '°C')}</dd>
        <dt>Load</dt><dd>${r ? `${r.resource.cpu.load_avg_1m.toFixed(2)} / ${r.resource.cpu.load_avg_5m.toFixed(2)} / ${r.resource.cpu.load_avg_15m.toFixed(2)}` : '–'}</dd>
        <dt>Power</dt><dd>${fmt(r?.resource.cpu.power, 'W')}, ${fmt(r?.resource.cpu.voltage, 'V', 2)}, ${fmt(r?.resource.cpu.current, 'A', 2)}</dd>
      </dl></div>
      <div class="card"><h2>Free</h2>${
        d.free
          ? html`<dl><dt>Cores</dt><dd>${d.free.cores} of ${r?.resource.cpu.core_count ?? '–'}</dd><dt>Memory</dt><dd>${bytes(d.free.memory_bytes)}</dd><dt>GPUs</dt><dd>${d.free.gpus_total} present</dd></dl>`
          : html`<p>No resource report yet.</p>`
      }</div>
    </div>
    ${alerts.length ? html`<div class="card alerts-card" role="status"><h2>Open alerts</h2><ul>${alerts.map((a) => html`<li key=${a.id}><span class=${`sev sev-${a.severity}`}>${a.severity}</span> ${a.message}</li>`)}</ul></div>` : ''}
    <section aria-labelledby="comp-h">
      <h2 id="comp-h">Components</h2>
      ${note ? html`<p class="note" role="status">${note}</p>` : ''}
      <${ErrorLine} error=${actionError} />
      <table class="grid" id="components">
        <thead><tr><th>Name</th><th>UUID</th><th>State</th><th>Id</th><th class="num">CPU load</th><th class="num">Memory</th>${operator ? html`<th>Action</th>` : ''}</tr></thead>
        <tbody>${(r?.component ?? []).map(
          (c) => html`<tr key=${c.uuid} data-uuid=${c.uuid}>
            <td>${c.config.name}</td><td><code>${c.uuid}</code></td><td><span class=${`badge cs-${c.state}`}>${c.state}</span></td><td>${c.config.id}</td>
            <td class="num">${fmt(c.resource.cpu.load, '%')}</td><td class="num">${bytes(c.resource.memory.mem_used)}</td>
            ${operator ? html`<td>${c.state === 'STOPPED' ? '' : html`<button type="button" class="stop" onClick=${() => stop(c.uuid)} aria-label=${`stop ${c.config.name} ${c.uuid}`}>Stop</button>`}</td>` : ''}
          </tr>`,
        )}</tbody>
      </table>
      ${(r?.component.length ?? 0) === 0 ? html`<p>No component runs here.</p>` : ''}
      ${
        operator
          ? html`<${StartForm} id=${id} onDone=${(m: string) => {
              setNote(m);
              void deps.reload();
            }} />`
          : ''
      }
    </section>
    <section aria-labelledby="dep-h">
      <h2 id="dep-h">Recent deployments</h2>
      <table class="grid"><thead><tr><th>When</th><th>Mode</th><th>UUID</th><th>Who</th><th>Result</th><th>Message</th></tr></thead>
      <tbody>${(deps.data?.deployments ?? [])
        .slice()
        .reverse()
        .map(
          (x) =>
            html`<tr key=${x.id}><td><${Time} at=${x.at} /></td><td>${x.mode}</td><td><code>${x.uuid}</code></td><td>${x.who}</td><td>${x.result === null ? 'running' : x.result === 0 ? 'ok' : `failed (${x.result})`}</td><td>${x.message ?? ''}</td></tr>`,
        )}</tbody></table>
    </section>
    <${Charts} id=${id} detail=${d} />
    <section aria-labelledby="tr-h">
      <h2 id="tr-h">Recent transitions</h2>
      <ul class="transitions">${d.transitions
        .slice()
        .reverse()
        .map((t, i) => html`<li key=${i}><${Time} at=${t.at} /> ${t.from ?? 'new'} → ${t.to}: ${t.reason}</li>`)}</ul>
    </section>
  </section>`;
}
