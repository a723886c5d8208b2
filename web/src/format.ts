/** Figures as people read them: the API's base units (bytes, ratios 0..1, ms) in short words. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`;
}

/** A ratio 0..1 as a percentage. */
export function percent(r: number | null | undefined, digits = 0): string {
  return r === null || r === undefined ? '–' : `${(r * 100).toFixed(digits)}%`;
}

/** Milli-GPU (1000 = a whole GPU) as a percentage of one GPU. */
export function milli(m: number | null | undefined): string {
  return m === null || m === undefined ? '–' : `${Math.round(m / 10)}%`;
}

export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return '–';
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** How long ago (or for how long until now) an epoch-ms time was. */
export function since(ms: number | null | undefined, now: number): string {
  return ms === null || ms === undefined ? '–' : seconds(Math.max(0, (now - ms) / 1000));
}

export function clock(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '–' : new Date(ms).toLocaleString();
}

export function unit(v: number | null | undefined, suffix: string, digits = 0): string {
  return v === null || v === undefined ? '–' : `${v.toFixed(digits)} ${suffix}`;
}
