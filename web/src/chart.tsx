/** A live uPlot line chart over a Series: redrawn when the series changed, sized to its box. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Series } from './series';

export interface Line {
  /** The series column. */
  readonly key: string;
  readonly label: string;
}

const COLORS = ['#2f6fde', '#e0762b', '#2a9d5b', '#c23b6f', '#7b52c7', '#8c6d1f', '#1b9aa8', '#d14b3a'];

/** Axis steps for bytes: 1, 2, 4, 8, ... KiB, MiB, GiB, TiB (uPlot's default steps are decimal). */
export const BYTE_STEPS = [10, 20, 30, 40].flatMap((shift) => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 2 ** shift));

export function Chart(props: { title: string; series: Series | undefined; lines: readonly Line[]; format: (v: number) => string; max?: number | undefined; steps?: number[]; version: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.lines.map((l) => l.key).join('\u0000');

  // A new plot when the lines change; data updates go through setData.
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const fmt = props.format;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: 180,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: props.max === undefined ? { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } : { range: [0, props.max] } },
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => fmt(t)), size: 70, ...(props.steps ? { incrs: props.steps } : {}) }],
      series: [{}, ...props.lines.map((l, i) => ({ label: l.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false, value: (_u: uPlot, v: number | null) => (v === null ? '–' : fmt(v)) }))],
    };
    const u = new uPlot(opts, data(props.series, props.lines), el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, props.series, props.max]);

  useEffect(() => {
    plot.current?.setData(data(props.series, props.lines));
  }, [props.version, props.series?.version]);

  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} />
      {props.series === undefined || props.series.times.length === 0 ? <p class="muted">No samples yet.</p> : null}
    </figure>
  );
}

function data(series: Series | undefined, lines: readonly Line[]): uPlot.AlignedData {
  if (series === undefined) return [[], ...lines.map(() => [])];
  return [series.times, ...lines.map((l) => series.column(l.key))] as uPlot.AlignedData;
}
