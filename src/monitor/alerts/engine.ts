/**
 * The alert rules engine: pure and deterministic. It is fed samples in time order and answers
 * with the alerts that changed state (fired or resolved); time is the sample's own `at`.
 *
 * Per rule and subject: a figure past the threshold starts a pending period; still past it
 * after `for`, the alert fires (at once when `for` is 0). A pending one that falls back is
 * forgotten (as Prometheus does). A firing one resolves only when the figure is back past
 * `clear` (hysteresis: inside the band between clear and threshold it stays as it is), or when
 * the figure is gone (the slice ended, the task started, the GPU stopped reporting it). Its id
 * is made once when it fires and is the same on its resolution.
 */
import type { AlertRule } from '../../contract/alerts.js';
import type { AlertEvent, MonitorSample } from '../../contract/monitor.js';
import { COUNTER_OF, gpuKey, readings, subjectKey, summarize, type Reading } from './figures.js';

interface Tracked {
  readonly phase: 'pending' | 'firing';
  /** When the condition began to hold (pending), or when it fired. */
  readonly since: number;
  readonly alert: AlertEvent | null;
}

interface CounterPoint {
  readonly at: number;
  readonly value: number;
}

export class AlertEngine {
  private rules: readonly AlertRule[] = [];
  /** rule name -> subject key -> state. */
  private readonly tracked = new Map<string, Map<string, Tracked>>();
  /** `figure|uuid` -> the counter's recent values, oldest first. */
  private readonly counters = new Map<string, CounterPoint[]>();
  /** Firing alerts whose rule went away (a reload, or a restart with other rules): resolved at the next sample. */
  private orphans: AlertEvent[] = [];

  /** `tenantOf`: a queued task's tenant, for alerts about the queue (the sample names the task only). */
  constructor(rules: readonly AlertRule[], private readonly tenantOf: (task: string) => string | null | undefined = () => undefined) {
    this.setRules(rules);
  }

  /**
   * Swaps in new rules. A rule kept exactly as it was keeps its pending and firing alerts; one
   * removed or changed has its firing alerts resolved at the next sample (a changed one may
   * then fire again under its new definition, with a new id).
   */
  setRules(rules: readonly AlertRule[]): void {
    const next = new Map(rules.map((r) => [r.name, r] as const));
    for (const old of this.rules) {
      const kept = next.get(old.name);
      if (kept !== undefined && sameRule(kept, old)) continue;
      for (const t of this.tracked.get(old.name)?.values() ?? []) if (t.phase === 'firing' && t.alert !== null) this.orphans.push(t.alert);
      this.tracked.delete(old.name);
    }
    this.rules = [...rules];
  }

  /**
   * Takes back alerts that were firing when the daemon stopped (from its database): they keep
   * their ids and resolve, or go on firing, by the next samples. One whose rule is gone resolves.
   */
  restore(firing: readonly AlertEvent[]): void {
    for (const alert of firing) {
      if (alert.state !== 'firing') continue;
      if (!this.rules.some((r) => r.name === alert.rule)) {
        this.orphans.push(alert);
        continue;
      }
      this.stateOf(alert.rule).set(subjectKey(alert.subject), { phase: 'firing', since: alert.startedAt, alert });
    }
  }

  /** Sets a firing alert's `silenced` flag (whether it was silenced when it fired), which its resolution carries. */
  markSilenced(id: string, silenced: boolean): void {
    for (const states of this.tracked.values()) {
      for (const [key, t] of states) if (t.alert !== null && t.alert.id === id) states.set(key, { ...t, alert: { ...t.alert, silenced } });
    }
  }

  /** The alerts firing now. */
  firing(): AlertEvent[] {
    const out: AlertEvent[] = [];
    for (const states of this.tracked.values()) for (const t of states.values()) if (t.phase === 'firing' && t.alert !== null) out.push(t.alert);
    return out;
  }

  /** Evaluates every rule on `sample`; returns the alerts that fired or resolved on it. */
  evaluate(sample: MonitorSample): AlertEvent[] {
    const at = sample.at;
    const out: AlertEvent[] = this.orphans.map((a) => resolved(a, at));
    this.orphans = [];
    this.recordCounters(sample);
    for (const rule of this.rules) {
      const current = COUNTER_OF[rule.figure] !== undefined ? this.increases(rule, sample) : readings(rule.figure, sample, this.tenantOf);
      const states = this.stateOf(rule.name);
      const seen = new Set<string>();
      for (const r of current) {
        seen.add(r.key);
        const state = states.get(r.key);
        const over = rule.direction === 'above' ? r.value > rule.threshold : r.value < rule.threshold;
        if (state === undefined || state.phase === 'pending') {
          if (!over) {
            states.delete(r.key);
            continue;
          }
          const since = state?.since ?? at;
          if (at - since >= rule.forSeconds * 1000) {
            const alert = fire(rule, r, at);
            states.set(r.key, { phase: 'firing', since: at, alert });
            out.push(alert);
          } else if (state === undefined) states.set(r.key, { phase: 'pending', since, alert: null });
          continue;
        }
        const cleared = rule.direction === 'above' ? r.value <= rule.clear : r.value >= rule.clear;
        if (cleared) {
          states.delete(r.key);
          if (state.alert !== null) out.push(resolved(state.alert, at));
        }
      }
      for (const [key, state] of states) {
        if (seen.has(key)) continue;
        states.delete(key);
        if (state.phase === 'firing' && state.alert !== null) out.push(resolved(state.alert, at));
      }
    }
    return out;
  }

  private stateOf(rule: string): Map<string, Tracked> {
    let states = this.tracked.get(rule);
    if (states === undefined) {
      states = new Map();
      this.tracked.set(rule, states);
    }
    return states;
  }

  /** Keeps each counter's values over the longest window any rule counts back, plus one before it (the baseline). */
  private recordCounters(sample: MonitorSample): void {
    const windows = new Map<string, number>();
    for (const r of this.rules) if (COUNTER_OF[r.figure] !== undefined) windows.set(r.figure, Math.max(windows.get(r.figure) ?? 0, r.windowSeconds));
    const live = new Set<string>();
    for (const [figure, windowSeconds] of windows) {
      const read = COUNTER_OF[figure as AlertRule['figure']] as NonNullable<(typeof COUNTER_OF)[AlertRule['figure']]>;
      for (const g of sample.gpus) {
        const value = read(g);
        if (value === null) continue;
        const key = `${figure}|${g.uuid}`;
        live.add(key);
        const points = this.counters.get(key) ?? [];
        points.push({ at: sample.at, value });
        const from = sample.at - windowSeconds * 1000;
        // Drop points older than the window, keeping the newest of them as the baseline.
        let drop = 0;
        while (drop + 1 < points.length && (points[drop + 1] as CounterPoint).at <= from) drop++;
        if (drop > 0) points.splice(0, drop);
        this.counters.set(key, points);
      }
    }
    for (const key of this.counters.keys()) if (!live.has(key)) this.counters.delete(key);
  }

  /** How much each GPU's counter rose over the rule's window (a drop is a reset: the new value counts). */
  private increases(rule: AlertRule, sample: MonitorSample): Reading[] {
    const out: Reading[] = [];
    const from = sample.at - rule.windowSeconds * 1000;
    for (const g of sample.gpus) {
      const points = this.counters.get(`${rule.figure}|${g.uuid}`);
      if (points === undefined) continue;
      let start = 0;
      while (start + 1 < points.length && (points[start + 1] as CounterPoint).at <= from) start++;
      let increase = 0;
      for (let i = start + 1; i < points.length; i++) {
        const before = (points[i - 1] as CounterPoint).value;
        const now = (points[i] as CounterPoint).value;
        increase += now >= before ? now - before : now;
      }
      out.push({ key: gpuKey(g.uuid), subject: { gpu: g.index, uuid: g.uuid }, value: increase });
    }
    return out;
  }
}

function sameRule(a: AlertRule, b: AlertRule): boolean {
  return a.figure === b.figure && a.direction === b.direction && a.threshold === b.threshold && a.clear === b.clear && a.forSeconds === b.forSeconds && a.windowSeconds === b.windowSeconds && a.severity === b.severity;
}

function fire(rule: AlertRule, reading: Reading, at: number): AlertEvent {
  return {
    id: alertId(rule.name, reading.key, at),
    rule: rule.name,
    severity: rule.severity,
    state: 'firing',
    subject: reading.subject,
    value: reading.value,
    threshold: rule.threshold,
    startedAt: at,
    resolvedAt: null,
    summary: summarize(rule.figure, reading.subject, reading.value, rule.threshold, rule.forSeconds, rule.windowSeconds),
    silenced: false,
  };
}

function resolved(alert: AlertEvent, at: number): AlertEvent {
  return { ...alert, state: 'resolved', resolvedAt: at };
}

/** 16 hex digits of FNV-1a (64 bit) over the rule, the subject and when it fired: one alert's life, the same on every daemon. */
export function alertId(rule: string, key: string, at: number): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(`${rule}\u0000${key}\u0000${at}`)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}
