/**
 * How long the daemon's history keeps each resolution (config `monitor.history.retention`):
 * raw samples, per-minute and per-hour rollups, each a duration as people write one (`90m`,
 * `7d`). Without zod, so the config schema and the history store share it and `--help` loads
 * none. Checked as a whole: each resolution within its bounds and no finer one kept longer than
 * a coarser one (a range query picks the finest resolution that still covers its start).
 */
import { parseDuration } from './duration.js';

/** How long each resolution is kept, in milliseconds. */
export interface HistoryRetention {
  readonly rawMs: number;
  readonly minuteMs: number;
  readonly hourMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The figures: raw for the last hour, minutes for a week, hours for 90 days. */
export const DEFAULT_HISTORY_RETENTION: HistoryRetention = { rawMs: HOUR, minuteMs: 7 * DAY, hourMs: 90 * DAY };

/**
 * Bounds per resolution. Raw: at least 5 minutes (the open minute is rebuilt from raw rows after
 * a restart), at most a day (a row per series per second: 86,400 a day). Minute: at least an
 * hour (the open hour is rebuilt from minute rows), at most 90 days. Hour: a day to ten years.
 */
export const HISTORY_RETENTION_BOUNDS: Readonly<Record<'raw' | 'minute' | 'hour', readonly [min: number, max: number, text: string]>> = {
  raw: [5 * MINUTE, DAY, '5m to 24h'],
  minute: [HOUR, 90 * DAY, '1h to 90d'],
  hour: [DAY, 3650 * DAY, '1d to 3650d'],
};

/** The settings as the config file writes them. */
export interface HistoryRetentionSettings {
  readonly raw?: string;
  readonly minute?: string;
  readonly hour?: string;
}

/** The retention the settings give over the defaults, or the one problem with them (naming the key). */
export function historyRetention(settings: HistoryRetentionSettings): { readonly ok: true; readonly value: HistoryRetention } | { readonly ok: false; readonly problem: string } {
  const out: Record<'raw' | 'minute' | 'hour', number> = { raw: DEFAULT_HISTORY_RETENTION.rawMs, minute: DEFAULT_HISTORY_RETENTION.minuteMs, hour: DEFAULT_HISTORY_RETENTION.hourMs };
  for (const key of ['raw', 'minute', 'hour'] as const) {
    const text = settings[key];
    if (text === undefined) continue;
    const ms = parseDuration(text);
    const [min, max, range] = HISTORY_RETENTION_BOUNDS[key];
    if (ms === null) return { ok: false, problem: `monitor.history.retention.${key}: "${text}" is not a duration (a whole number and s, m, h, d or w: "2h", "14d")` };
    if (ms < min || ms > max) return { ok: false, problem: `monitor.history.retention.${key}: ${text} is out of range (${range})` };
    out[key] = ms;
  }
  if (out.raw > out.minute) return { ok: false, problem: `monitor.history.retention: raw samples (${settings.raw ?? '1h'}) kept longer than minute rollups (${settings.minute ?? '7d'}): a finer resolution cannot outlive a coarser one` };
  if (out.minute > out.hour) return { ok: false, problem: `monitor.history.retention: minute rollups (${settings.minute ?? '7d'}) kept longer than hour rollups (${settings.hour ?? '90d'}): a finer resolution cannot outlive a coarser one` };
  return { ok: true, value: { rawMs: out.raw, minuteMs: out.minute, hourMs: out.hour } };
}
