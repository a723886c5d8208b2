/**
 * A rule's figure read from one sample, once per subject (each GPU, each slice, the queue's
 * oldest task). Pure. A figure a backend cannot read (null) is left out: no reading, no alert.
 */
import type { AlertFigure } from '../../contract/alerts.js';
import type { AlertEvent, GpuSample, MonitorSample } from '../../contract/monitor.js';

export type Subject = AlertEvent['subject'];

export interface Reading {
  /** Names the subject among one rule's alerts (a GPU by UUID, a slice by task and UUID). */
  readonly key: string;
  readonly subject: Subject;
  readonly value: number;
}

/** The counters behind the `_increase` figures. */
export const COUNTER_OF: Partial<Record<AlertFigure, (g: GpuSample) => number | null>> = {
  gpu_xid_errors_increase: (g) => g.xidErrors,
  gpu_ecc_uncorrected_increase: (g) => g.eccUncorrectedErrors,
};

export const gpuKey = (uuid: string): string => `gpu:${uuid}`;

/** The key of an alert's subject, as readings name it (for alerts restored from the database). */
export function subjectKey(subject: Subject): string {
  if (subject.task !== undefined && subject.uuid !== undefined) return `slice:${subject.task}:${subject.uuid}`;
  if (subject.task !== undefined) return `queue:${subject.task}`;
  return gpuKey(subject.uuid ?? `#${subject.gpu ?? '?'}`);
}

const ratio = (part: number | null, whole: number | null): number | null => (part === null || whole === null || !(whole > 0) ? null : part / whole);

const GPU_FIGURES: Partial<Record<AlertFigure, (g: GpuSample) => number | null>> = {
  gpu_memory_used_ratio: (g) => ratio(g.memoryUsedBytes, g.memoryTotalBytes),
  gpu_utilization: (g) => g.utilizationGpu,
  gpu_temperature_celsius: (g) => g.temperatureCelsius,
  gpu_power_ratio: (g) => ratio(g.powerWatts, g.powerLimitWatts),
};

/**
 * Every reading of `figure` in `sample`, except the `_increase` figures (the engine counts
 * those over time). `tenantOf` fills in the queue's oldest task's tenant where it is known.
 */
export function readings(figure: AlertFigure, sample: MonitorSample, tenantOf: (task: string) => string | null | undefined): Reading[] {
  const out: Reading[] = [];
  const gpuFigure = GPU_FIGURES[figure];
  if (gpuFigure !== undefined) {
    for (const g of sample.gpus) {
      const value = gpuFigure(g);
      if (value !== null && Number.isFinite(value)) out.push({ key: gpuKey(g.uuid), subject: { gpu: g.index, uuid: g.uuid }, value });
    }
    return out;
  }
  if (figure === 'slice_memory_used_ratio' || figure === 'slice_compute_pinned_ratio') {
    for (const s of sample.slices) {
      const value = figure === 'slice_memory_used_ratio' ? ratio(s.memoryUsedBytes, s.memoryLimitBytes) : ratio(s.computeShare, s.computeLimit);
      // A task of no tenant (sampled as tenant "") names none: no `tenant ""` in subjects or webhook labels.
      if (value !== null && Number.isFinite(value)) out.push({ key: `slice:${s.task}:${s.uuid}`, subject: { gpu: s.gpu, uuid: s.uuid, task: s.task, ...(s.tenant !== '' ? { tenant: s.tenant } : {}) }, value });
    }
    return out;
  }
  if (figure === 'queue_oldest_wait_seconds') {
    const { oldestTask, oldestWaitSeconds } = sample.queue;
    if (oldestTask !== null && oldestWaitSeconds !== null) {
      const tenant = tenantOf(oldestTask);
      out.push({ key: `queue:${oldestTask}`, subject: { task: oldestTask, ...(typeof tenant === 'string' ? { tenant } : {}) }, value: oldestWaitSeconds });
    }
  }
  return out;
}

/** How a figure's value reads to people: percent for ratios, °C, W, counts, lengths of time. */
export function formatFigure(figure: AlertFigure, value: number): string {
  if (figure.endsWith('_ratio') || figure === 'gpu_utilization') return `${Math.round(value * 1000) / 10}%`;
  if (figure === 'gpu_temperature_celsius') return `${Math.round(value * 10) / 10} °C`;
  if (figure === 'queue_oldest_wait_seconds') return formatSeconds(value);
  return String(value);
}

export function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 360) / 10}h`;
}

const WHAT: Record<AlertFigure, string> = {
  gpu_memory_used_ratio: 'memory',
  gpu_utilization: 'utilization',
  gpu_temperature_celsius: 'temperature',
  gpu_power_ratio: 'power (of its limit)',
  gpu_xid_errors_increase: 'new XID errors',
  gpu_ecc_uncorrected_increase: 'new uncorrectable ECC errors',
  slice_memory_used_ratio: 'memory (of its slice)',
  slice_compute_pinned_ratio: 'compute (of its limit)',
  queue_oldest_wait_seconds: 'waiting',
};

/** One line for people: `GPU 0 memory at 91% (threshold 85%) for 2m`. */
export function summarize(figure: AlertFigure, subject: Subject, value: number, threshold: number, forSeconds: number, windowSeconds: number): string {
  const who = subject.task !== undefined ? `task ${subject.task}${subject.gpu !== undefined ? ` on GPU ${subject.gpu}` : ''}` : `GPU ${subject.gpu ?? subject.uuid ?? '?'}`;
  if (figure.endsWith('_increase')) return `${who}: ${value} ${WHAT[figure]} in the last ${formatSeconds(windowSeconds)}`;
  const held = forSeconds > 0 ? ` for ${formatSeconds(forSeconds)}` : '';
  return `${who} ${WHAT[figure]} at ${formatFigure(figure, value)} (threshold ${formatFigure(figure, threshold)})${held}`;
}
