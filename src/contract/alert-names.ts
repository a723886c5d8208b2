/**
 * The names alerts use, with no zod behind them: the CLI imports these while every command is
 * registered (`gpushare --help`), which must not load zod (test/cli-startup.test.ts).
 */

/**
 * What a rule can watch, each read from one MonitorSample. `gpu_*` are per GPU, `slice_*` per
 * task and GPU, `queue_*` for the longest-waiting task. The two `_increase` figures count new
 * errors over the rule's `window` (a counter that drops is a reset, as Prometheus' increase()).
 */
export const ALERT_FIGURES = [
  'gpu_memory_used_ratio',
  'gpu_utilization',
  'gpu_temperature_celsius',
  'gpu_power_ratio',
  'gpu_xid_errors_increase',
  'gpu_ecc_uncorrected_increase',
  'slice_memory_used_ratio',
  'slice_compute_pinned_ratio',
  'queue_oldest_wait_seconds',
] as const;
export type AlertFigure = (typeof ALERT_FIGURES)[number];

export const ALERT_SEVERITIES = ['info', 'warning', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** What a silence matcher can name: the alert's rule, severity and subject fields. */
export const SILENCE_FIELDS = ['rule', 'severity', 'gpu', 'uuid', 'task', 'tenant'] as const;
export type SilenceField = (typeof SILENCE_FIELDS)[number];
