/** What the daemon has placed on each GPU, whoever's it is (the API hides what a caller may not see). Pure: the caller brings tasks and usage. */
import type { Gpu } from '../domain/index.js';
import type { GpuSlice, GpuWithSlices } from '../contract/gpus.js';
import type { Task, TaskGpu } from '../contract/task.js';
import type { GpuHealthState } from './gpu-health.js';
import type { DeviceUsage } from './supervisor.js';

export interface SliceSources {
  /** Tasks that hold GPUs now. */
  readonly holding: readonly Task[];
  /** The GPUs a task holds (a resuming task: its targets). */
  readonly gpusOf: (task: Task) => readonly TaskGpu[];
  /** What the task's processes hold now, per device ordinal; null before its first CUDA call. */
  readonly usageOf: (id: string) => readonly DeviceUsage[] | null;
  /** The GPU's cordon and fault (gpu-health.ts). */
  readonly healthOf: (uuid: string) => GpuHealthState;
}

/** GPUs with their slices. */
export function gpusWithSlices(gpus: readonly Gpu[], from: SliceSources): GpuWithSlices[] {
  return gpus.map((g) => {
    const slices = from.holding.flatMap((t) => {
      const usage = from.usageOf(t.id);
      return from.gpusOf(t).flatMap((x, ordinal): GpuSlice[] => {
        if (x.uuid !== g.uuid) return [];
        const used = usage === null ? null : (usage.find((u) => u.device === ordinal) ?? { memoryBytes: 0, computeShare: 0 });
        const sm = t.smRanges?.[ordinal];
        return [
          {
            taskId: t.id,
            tenant: t.tenant,
            priority: t.priority,
            memoryBytes: x.memoryBytes,
            computeMilli: x.computeMilli,
            usedMemoryBytes: used?.memoryBytes ?? null,
            computeShare: used?.computeShare ?? null,
            smRange: sm === undefined ? null : { offset: sm.offset, count: sm.count },
          },
        ];
      });
    });
    const health = from.healthOf(g.uuid);
    const fault = health.fault === null ? null : { kind: health.fault.kind, code: health.fault.code, at: health.fault.at };
    return {
      ...g,
      cordoned: health.cordoned,
      cordon: health.cordon,
      fault,
      slices,
      allocatedMemoryBytes: slices.reduce((s, x) => s + x.memoryBytes, 0),
      allocatedComputeMilli: slices.reduce((s, x) => s + x.computeMilli, 0),
    };
  });
}
