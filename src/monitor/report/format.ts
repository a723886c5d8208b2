/** How a report writes its figures for people; the renderers share these so markdown and HTML say the same. */
import { formatBytes } from '../../domain/index.js';
import type { SeriesStats } from './model.js';

export const dash = '-';

export function bytes(v: number | null | undefined): string {
  return v === null || v === undefined ? dash : formatBytes(Math.round(v));
}

/** A 0..1 ratio as a percent. */
export function percent(v: number | null | undefined): string {
  return v === null || v === undefined ? dash : `${(v * 100).toFixed(1)}%`;
}

/** Seconds as people read a length of time: 45s, 12m 5s, 3h 20m, 2d 4h. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return dash;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** GPU-seconds as GPU-hours: two decimals, or three significant digits under one hour (a short window's 0.167, not 0.00). */
export function gpuHours(seconds: number): string {
  const h = seconds / 3600;
  return h >= 1 || h === 0 ? h.toFixed(2) : h.toPrecision(3);
}

/** UTC, to the second: a report is read in other time zones than it was made in. */
export function utc(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** `mean / p95 / max` of a series in `unit`'s words. */
export function triple(s: SeriesStats | null, unit: (v: number) => string): [string, string, string] {
  return s === null ? [dash, dash, dash] : [unit(s.mean), unit(s.p95), unit(s.max)];
}
