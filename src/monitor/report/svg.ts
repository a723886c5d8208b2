/**
 * The report's charts as inline SVG text: no script, no font or stylesheet to fetch, so the one
 * HTML file draws the same in any browser, mail client or file viewer.
 */
import type { ChartLine } from './model.js';

/** Text for an HTML or SVG text node or attribute value. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export interface LineChartOptions {
  readonly line: ChartLine;
  readonly from: number;
  readonly to: number;
  /** The top of the y axis; the line's own max (rounded up) when larger. */
  readonly yMax: number;
  readonly yLabel: (v: number) => string;
  readonly title: string;
  readonly width?: number;
  readonly height?: number;
}

const PAD = { left: 64, right: 12, top: 22, bottom: 24 };

/** A time chart: the mean as a line, each point's max as a shaded band above it; a note where there is no data. */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 560;
  const height = o.height ?? 180;
  const w = width - PAD.left - PAD.right;
  const h = height - PAD.top - PAD.bottom;
  const top = Math.max(o.yMax, ...o.line.map(([, , max]) => max)) || 1;
  const x = (t: number): number => PAD.left + (o.to > o.from ? ((t - o.from) / (o.to - o.from)) * w : 0);
  const y = (v: number): number => PAD.top + h - (Math.max(0, v) / top) * h;
  const f = (n: number): string => n.toFixed(1);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(o.title)}">`);
  parts.push(`<text x="${PAD.left}" y="14" class="ct">${escapeXml(o.title)}</text>`);
  for (let i = 0; i <= 4; i += 1) {
    const v = (top * i) / 4;
    parts.push(`<line x1="${PAD.left}" x2="${PAD.left + w}" y1="${f(y(v))}" y2="${f(y(v))}" class="grid"/><text x="${PAD.left - 6}" y="${f(y(v) + 4)}" class="yl">${escapeXml(o.yLabel(v))}</text>`);
  }
  for (const t of [o.from, (o.from + o.to) / 2, o.to]) {
    const anchor = t === o.from ? 'start' : t === o.to ? 'end' : 'middle';
    parts.push(`<text x="${f(x(t))}" y="${height - 6}" text-anchor="${anchor}" class="xl">${escapeXml(new Date(t).toISOString().slice(5, 16).replace('T', ' '))}</text>`);
  }
  if (o.line.length === 0) {
    parts.push(`<text x="${PAD.left + w / 2}" y="${PAD.top + h / 2}" text-anchor="middle" class="none">no data recorded</text>`);
  } else {
    const band = [...o.line.map(([t, , max]) => `${f(x(t))},${f(y(max))}`), ...[...o.line].reverse().map(([t, mean]) => `${f(x(t))},${f(y(mean))}`)].join(' ');
    parts.push(`<polygon points="${band}" class="band"/>`);
    parts.push(`<polyline points="${o.line.map(([t, mean]) => `${f(x(t))},${f(y(mean))}`).join(' ')}" class="mean"/>`);
  }
  parts.push(`<rect x="${PAD.left}" y="${PAD.top}" width="${w}" height="${h}" class="frame"/></svg>`);
  return parts.join('');
}

/** Horizontal bars, one a row, labelled with `label` and the value's text. */
export function barChart(rows: readonly { readonly label: string; readonly value: number; readonly text: string }[], title: string, width = 560): string {
  const rowH = 22;
  const labelW = 140;
  const height = 24 + rows.length * rowH + 6;
  const max = Math.max(...rows.map((r) => r.value), 0) || 1;
  const barW = width - labelW - 90;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(title)}">`, `<text x="0" y="14" class="ct">${escapeXml(title)}</text>`];
  rows.forEach((r, i) => {
    const yy = 24 + i * rowH;
    const len = (r.value / max) * barW;
    parts.push(`<text x="${labelW - 6}" y="${yy + 15}" text-anchor="end" class="yl">${escapeXml(r.label.length > 20 ? `${r.label.slice(0, 19)}…` : r.label)}</text>`);
    parts.push(`<rect x="${labelW}" y="${yy + 3}" width="${len.toFixed(1)}" height="${rowH - 6}" class="bar"/>`);
    parts.push(`<text x="${(labelW + len + 6).toFixed(1)}" y="${yy + 15}" class="bv">${escapeXml(r.text)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
