/**
 * Which history series one MonitorSample holds, as (series, subject, value) triples: the pure
 * half of recording. A figure the backend could not read (null) is left out, never stored as 0.
 */
import type { HistorySeries, MonitorSample } from '../../contract/monitor.js';

/** Who a series is about; a key as the store files it: `gpu:0`, `task:ab12…`, `tenant:ml`, or `` (the queue). */
export type SubjectKey = string;

export interface SeriesValue {
  readonly series: HistorySeries;
  readonly subject: SubjectKey;
  readonly value: number;
  /** The tenant a task's series belongs to (authorization reads it after the task is gone); null otherwise. */
  readonly tenant: string | null;
}

export const gpuSubject = (index: number): SubjectKey => `gpu:${index}`;
export const taskSubject = (task: string): SubjectKey => `task:${task}`;
export const tenantSubject = (tenant: string): SubjectKey => `tenant:${tenant}`;
export const QUEUE_SUBJECT: SubjectKey = '';

/** Every series value in `sample`. A task's slice series sum over its GPUs; a tenant's over its slices. */
export function sampleValues(sample: MonitorSample): SeriesValue[] {
  const out: SeriesValue[] = [];
  const push = (series: HistorySeries, subject: SubjectKey, value: number | null, tenant: string | null = null): void => {
    if (value !== null && Number.isFinite(value)) out.push({ series, subject, value, tenant });
  };
  for (const g of sample.gpus) {
    if (g.health === 'lost') continue;
    const s = gpuSubject(g.index);
    push('gpu_utilization', s, g.utilizationGpu);
    push('gpu_memory_used_bytes', s, g.memoryUsedBytes);
    push('gpu_temperature_celsius', s, g.temperatureCelsius);
    push('gpu_power_watts', s, g.powerWatts);
  }
  const tasks = new Map<string, { tenant: string; memory: number; share: number | null }>();
  const tenants = new Map<string, { memory: number; share: number | null }>();
  const addShare = (a: number | null, b: number | null): number | null => (b === null ? a : (a ?? 0) + b);
  for (const sl of sample.slices) {
    const t = tasks.get(sl.task) ?? { tenant: sl.tenant, memory: 0, share: null };
    t.memory += sl.memoryUsedBytes;
    t.share = addShare(t.share, sl.computeShare);
    tasks.set(sl.task, t);
    const n = tenants.get(sl.tenant) ?? { memory: 0, share: null };
    n.memory += sl.memoryUsedBytes;
    n.share = addShare(n.share, sl.computeShare);
    tenants.set(sl.tenant, n);
  }
  for (const [task, t] of tasks) {
    push('slice_memory_used_bytes', taskSubject(task), t.memory, t.tenant);
    push('slice_compute_share', taskSubject(task), t.share, t.tenant);
  }
  for (const [tenant, n] of tenants) {
    push('tenant_memory_used_bytes', tenantSubject(tenant), n.memory);
    push('tenant_compute_share', tenantSubject(tenant), n.share);
  }
  push('queue_length', QUEUE_SUBJECT, sample.queue.queued);
  return out;
}
