/**
 * A time-series chart (uPlot, drawn on a canvas): x in seconds since the epoch, shown in the
 * browser's zone; each series with its label and the chart's unit on the axis. The container
 * carries `data-points` (the samples drawn) for tests and a text summary for screen readers;
 * `onDrawn` is called after each time uPlot has drawn the canvas (the board page times its ranges
 * with it, docs/dashboard.md "Performance").
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './ui.js';

/** One line of a chart. */
export interface Line {
  label: string;
  values: (number | null)[];
}

const COLOURS = ['#2a7de1', '#e0662a', '#2aa36b', '#b04ad6', '#d6b32a', '#d62a5e', '#2ab8c8', '#7a7a7a'];

/** A chart of `lines` over `times` (s); recreated when the set of lines changes. */
export function Chart({
  title,
  unit,
  times,
  lines,
  onDrawn,
}: {
  title: string;
  unit: string;
  times: number[];
  lines: Line[];
  onDrawn?: (title: string) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const drawn = useRef(onDrawn);
  drawn.current = onDrawn;
  const shape = lines.map((l) => l.label).join('|');
  useEffect(() => {
    if (!box.current) return;
    const width = Math.max(280, box.current.clientWidth || 420);
    const opts: uPlot.Options = {
      width,
      height: 170,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      hooks: { draw: [() => drawn.current?.(title)] },
      axes: [
        {
          stroke: 'currentColor',
          grid: { stroke: 'rgba(128,128,128,0.2)' },
          // 24-hour clock in the browser's zone.
          values: [
            [3600 * 24, '{M}/{D}', null, null, null, null, null, null, 1],
            [3600, '{HH}:{mm}', '\n{M}/{D}', null, '\n{M}/{D}', null, null, null, 1],
            [60, '{HH}:{mm}', '\n{M}/{D}', null, '\n{M}/{D}', null, null, null, 1],
            [1, '{HH}:{mm}:{ss}', '\n{M}/{D}', null, '\n{M}/{D}', null, null, null, 1],
          ],
        },
        {
          stroke: 'currentColor',
          grid: { stroke: 'rgba(128,128,128,0.2)' },
          size: 70,
          values: (_u, vals) => vals.map((v) => `${v}${unit ? ` ${unit}` : ''}`),
        },
      ],
      series: [
        {},
        ...lines.map((l, i) => ({
          label: l.label,
          stroke: COLOURS[i % COLOURS.length],
          width: 1.5,
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null ? '–' : `${v.toFixed(1)} ${unit}`),
        })),
      ],
    };
    plot.current = new uPlot(opts, [times, ...lines.map((l) => l.values)] as uPlot.AlignedData, box.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, unit, title]);
  useEffect(() => {
    plot.current?.setData([times, ...lines.map((l) => l.values)] as uPlot.AlignedData);
  }, [times, lines]);
  const last = lines.map((l) => `${l.label} ${l.values.at(-1)?.toFixed(1) ?? '–'} ${unit}`).join(', ');
  const values = lines.reduce((a, l) => a + l.values.reduce((k: number, v) => (v === null ? k : k + 1), 0), 0);
  return html`<figure class="chart" data-points=${times.length} data-values=${values}>
    <figcaption>${title}</figcaption>
    <div ref=${box} role="img" aria-label=${`${title}: ${times.length} samples; latest ${last}`}></div>
  </figure>`;
}
