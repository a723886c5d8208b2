import { describe, expect, it } from 'vitest';
import { AlertsConfigSchema } from '../../contract/alerts.js';
import { DEFAULT_ALERT_RULES, resolveAlertRules } from './rules.js';

/** The file's `alerts.rules` as the config loader parses them. */
const entries = (rules: unknown[]) => AlertsConfigSchema.parse({ rules }).rules ?? [];

describe('default alert rules', () => {
  it('cover memory tiers of GPUs and slices, temperature, power, XID, ECC, waits and pinned slices', () => {
    const byName = new Map(DEFAULT_ALERT_RULES.map((r) => [r.name, r]));
    expect([...byName.keys()]).toHaveLength(DEFAULT_ALERT_RULES.length);
    for (const scope of ['gpu', 'slice']) {
      expect([`${scope}-memory-info`, `${scope}-memory-warning`, `${scope}-memory-critical`].map((n) => [byName.get(n)?.threshold, byName.get(n)?.severity])).toEqual([
        [0.75, 'info'],
        [0.85, 'warning'],
        [0.95, 'critical'],
      ]);
    }
    for (const n of ['gpu-xid', 'gpu-ecc-uncorrected']) expect(byName.get(n)).toMatchObject({ severity: 'critical', forSeconds: 0, threshold: 0 });
    expect(byName.get('task-waiting-long')?.figure).toBe('queue_oldest_wait_seconds');
    expect(byName.get('slice-compute-pinned')?.figure).toBe('slice_compute_pinned_ratio');
    for (const r of DEFAULT_ALERT_RULES) expect(r.clear).toBeLessThanOrEqual(r.threshold);
  });
});

describe('resolveAlertRules', () => {
  it('changes a default, keeping what the entry leaves out, and moves its band with a new threshold', () => {
    const rules = resolveAlertRules(entries([{ name: 'gpu-temperature-warning', threshold: 85, for: '5m' }]));
    expect(rules.find((r) => r.name === 'gpu-temperature-warning')).toEqual({ name: 'gpu-temperature-warning', figure: 'gpu_temperature_celsius', direction: 'above', threshold: 85, clear: 80, forSeconds: 300, windowSeconds: 0, severity: 'warning' });
    expect(rules).toHaveLength(DEFAULT_ALERT_RULES.length);
  });

  it('turns a default off and adds a new rule', () => {
    const rules = resolveAlertRules(entries([{ name: 'gpu-memory-info', enabled: false }, { name: 'hot-util', figure: 'gpu_utilization', threshold: 0.99, severity: 'info', for: 600 }, { name: 'new-xid', figure: 'gpu_xid_errors_increase', threshold: 0, severity: 'critical' }]));
    expect(rules.some((r) => r.name === 'gpu-memory-info')).toBe(false);
    expect(rules.find((r) => r.name === 'hot-util')).toEqual({ name: 'hot-util', figure: 'gpu_utilization', direction: 'above', threshold: 0.99, clear: 0.99, forSeconds: 600, windowSeconds: 0, severity: 'info' });
    expect(rules.find((r) => r.name === 'new-xid')?.windowSeconds).toBe(900);
  });

  it.each([
    [[{ name: 'mine', threshold: 1 }], /alerts\.rules\.0 \(mine\): a new rule needs figure, severity/],
    [[{ name: 'nope', enabled: false }], /alerts\.rules\.0 \(nope\): turns off a rule that does not exist/],
    [[{ name: 'gpu-xid' }, { name: 'gpu-xid', threshold: 1 }], /alerts\.rules\.1 \(gpu-xid\): the name is given twice/],
    [[{ name: 'gpu-memory-warning', clear: 0.9 }], /clear \(0\.9\) must be at or below the threshold \(0\.85\)/],
    [[{ name: 'low', figure: 'gpu_utilization', direction: 'below', threshold: 0.1, clear: 0.05, severity: 'info' }], /must be at or above the threshold/],
  ])('refuses %j', (rules, message) => {
    expect(() => resolveAlertRules(entries(rules))).toThrow(message);
  });

  it('the schema refuses bad names, figures and lengths of time', () => {
    expect(AlertsConfigSchema.safeParse({ rules: [{ name: 'Bad Name' }] }).success).toBe(false);
    expect(AlertsConfigSchema.safeParse({ rules: [{ name: 'x', figure: 'gpu_mood' }] }).success).toBe(false);
    expect(AlertsConfigSchema.safeParse({ rules: [{ name: 'x', for: '5 fortnights' }] }).success).toBe(false);
    expect(AlertsConfigSchema.safeParse({ webhooks: [{ url: 'ftp://x' }] }).success).toBe(false);
    expect(AlertsConfigSchema.parse({ rules: [{ name: 'x', for: '2h', window: 30 }] }).rules?.[0]).toMatchObject({ for: 7200, window: 30 });
  });
});

describe("the README's alerts example", () => {
  it('validates and resolves', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const block = /```json\n([\s\S]*?)```/.exec(text.slice(text.indexOf('### Alerts')))?.[1] as string;
    const { alerts } = JSON.parse(block) as { alerts: unknown };
    const rules = resolveAlertRules(AlertsConfigSchema.parse(alerts).rules ?? []);
    expect(rules.find((r) => r.name === 'gpu-busy')).toMatchObject({ figure: 'gpu_utilization', forSeconds: 1800 });
    expect(rules.some((r) => r.name === 'gpu-memory-info')).toBe(false);
  });
});
