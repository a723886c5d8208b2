/**
 * The rules the daemon runs unless its config file says otherwise, and how the file's
 * `alerts.rules` changes them. Pure.
 *
 * The defaults follow what operators already run on GPUs, so they fire where people expect:
 * - memory at 75/85/95% (info/warning/critical), of a GPU and of each slice: the 85%/95%
 *   warning/critical pair of the rule sets commonly run on dcgm-exporter's
 *   `DCGM_FI_DEV_FB_USED / (FB_USED + FB_FREE)`, with the 75% heads-up HAMi users set on
 *   `hami_vgpu_memory_used_bytes / hami_vgpu_memory_limit_bytes` (a slice near its limit is
 *   about to see CUDA_ERROR_OUT_OF_MEMORY, so it gets the same tiers as a whole GPU);
 * - temperature above 80 °C for 2 minutes (warning) and 90 °C (critical): the usual
 *   `DCGM_FI_DEV_GPU_TEMP > 80` / `> 90` pair (data-centre GPUs slow down near 87-90 °C);
 * - power at 95% of its limit for 5 minutes: `DCGM_FI_DEV_POWER_USAGE` against
 *   `DCGM_FI_DEV_POWER_MGMT_LIMIT`, where the clocks are about to be capped;
 * - any new XID or uncorrectable ECC error, critical and at once (no `for`): the
 *   `DCGM_FI_DEV_XID_ERRORS > 0` and `DCGM_FI_DEV_ECC_DBE_VOL_TOTAL` increase rules; NVIDIA's XID
 *   guide treats each as needing attention (48 is a double-bit ECC error, 79 a GPU off the bus);
 * - a task waiting more than 30 minutes, and a slice pinned at its compute limit for
 *   10 minutes (it would go faster with more; info, a hint for whoever sized it).
 * Each has hysteresis (`clear`) so a figure wandering around its threshold fires once.
 */
import { ErrorCodes, GsError } from '../../domain/index.js';
import type { AlertRule, AlertRuleConfig, AlertsConfig, AlertWebhookConfig } from '../../contract/alerts.js';

const memoryTiers = (scope: 'gpu' | 'slice'): AlertRule[] =>
  (
    [
      ['info', 0.75, 0.7, 60],
      ['warning', 0.85, 0.8, 60],
      ['critical', 0.95, 0.9, 30],
    ] as const
  ).map(([severity, threshold, clear, forSeconds]) => ({
    name: `${scope}-memory-${severity}`,
    figure: scope === 'gpu' ? 'gpu_memory_used_ratio' : 'slice_memory_used_ratio',
    direction: 'above',
    threshold,
    clear,
    forSeconds,
    windowSeconds: 0,
    severity,
  }));

export const DEFAULT_ALERT_RULES: readonly AlertRule[] = [
  ...memoryTiers('gpu'),
  ...memoryTiers('slice'),
  { name: 'gpu-temperature-warning', figure: 'gpu_temperature_celsius', direction: 'above', threshold: 80, clear: 75, forSeconds: 120, windowSeconds: 0, severity: 'warning' },
  { name: 'gpu-temperature-critical', figure: 'gpu_temperature_celsius', direction: 'above', threshold: 90, clear: 85, forSeconds: 60, windowSeconds: 0, severity: 'critical' },
  { name: 'gpu-power-near-limit', figure: 'gpu_power_ratio', direction: 'above', threshold: 0.95, clear: 0.9, forSeconds: 300, windowSeconds: 0, severity: 'warning' },
  { name: 'gpu-xid', figure: 'gpu_xid_errors_increase', direction: 'above', threshold: 0, clear: 0, forSeconds: 0, windowSeconds: 900, severity: 'critical' },
  { name: 'gpu-ecc-uncorrected', figure: 'gpu_ecc_uncorrected_increase', direction: 'above', threshold: 0, clear: 0, forSeconds: 0, windowSeconds: 900, severity: 'critical' },
  { name: 'task-waiting-long', figure: 'queue_oldest_wait_seconds', direction: 'above', threshold: 1800, clear: 1800, forSeconds: 0, windowSeconds: 0, severity: 'warning' },
  { name: 'slice-compute-pinned', figure: 'slice_compute_pinned_ratio', direction: 'above', threshold: 0.95, clear: 0.85, forSeconds: 600, windowSeconds: 0, severity: 'info' },
];

/** The `_increase` figures' window when a new rule gives none. */
const DEFAULT_WINDOW_SECONDS = 900;

/**
 * The defaults with the config file's entries applied, in order: an entry naming a default
 * changes it (or turns it off), a new name adds a rule. Throws GS_ERR_INVALID_ARGUMENT naming
 * the entry (`alerts.rules.3 (my-rule): ...`) for a new rule missing a field, a name given twice,
 * or a `clear` on the wrong side of the threshold (which would make the alert flap).
 */
export function resolveAlertRules(entries: readonly AlertRuleConfig[], defaults: readonly AlertRule[] = DEFAULT_ALERT_RULES): AlertRule[] {
  const rules = new Map(defaults.map((r) => [r.name, r] as const));
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const where = `alerts.rules.${i} (${entry.name})`;
    const fail = (problem: string): never => {
      throw new GsError(ErrorCodes.invalidArgument, `${where}: ${problem}`);
    };
    if (seen.has(entry.name)) fail('the name is given twice');
    seen.add(entry.name);
    if (entry.enabled === false) {
      if (!rules.delete(entry.name) && !defaults.some((d) => d.name === entry.name)) fail('turns off a rule that does not exist (no default has this name)');
      return;
    }
    const base = rules.get(entry.name);
    if (base === undefined) {
      const missing = (['figure', 'threshold', 'severity'] as const).filter((k) => entry[k] === undefined);
      if (missing.length > 0) fail(`a new rule needs ${missing.join(', ')} (no default has this name; defaults: ${defaults.map((d) => d.name).join(', ')})`);
    }
    const direction = entry.direction ?? base?.direction ?? 'above';
    const threshold = entry.threshold ?? (base?.threshold as number);
    // A changed threshold without its own clear moves the default's band along with it.
    const clear = entry.clear ?? (base !== undefined && entry.threshold !== undefined ? threshold - (base.threshold - base.clear) : (base?.clear ?? threshold));
    if (direction === 'above' ? clear > threshold : clear < threshold) fail(`clear (${clear}) must be at or ${direction === 'above' ? 'below' : 'above'} the threshold (${threshold}) for a rule that fires ${direction} it`);
    const figure = entry.figure ?? (base?.figure as AlertRule['figure']);
    rules.set(entry.name, {
      name: entry.name,
      figure,
      direction,
      threshold,
      clear,
      forSeconds: entry.for ?? base?.forSeconds ?? 0,
      windowSeconds: entry.window ?? (base?.windowSeconds || (figure.endsWith('_increase') ? DEFAULT_WINDOW_SECONDS : 0)),
      severity: entry.severity ?? (base?.severity as AlertRule['severity']),
    });
  });
  return [...rules.values()];
}

/** What the alert service runs with: the config file's `alerts` section, resolved. */
export interface AlertSettings {
  /** false: no rule is evaluated (firing alerts resolve); faults still reach the health book. */
  readonly enabled: boolean;
  readonly rules: readonly AlertRule[];
  readonly webhooks: readonly AlertWebhookConfig[];
  readonly keepResolved: number;
}

/** The config file's `alerts` section with the defaults filled in; throws as resolveAlertRules does. */
export function alertSettings(config: AlertsConfig): AlertSettings {
  return { enabled: config.enabled ?? true, rules: resolveAlertRules(config.rules ?? []), webhooks: config.webhooks ?? [], keepResolved: config.keepResolved ?? 1000 };
}
