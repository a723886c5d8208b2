/**
 * The monitor's sampler: once a period it reads the GPUs from the backend and the live tasks
 * (with what the supervisor last read of their regions) from the daemon, builds one
 * MonitorSample and publishes it to the SampleHub every consumer reads. Decide, then commit:
 * `buildSample` is pure (inputs in, the sample out); `Sampler` is the timer around it.
 */
import { hostname } from 'node:os';
import type { GpuSample, MonitorSample, QueueSample, SliceSample } from '../contract/monitor.js';
import { SAMPLE_MEMORY_KINDS, type SampleMemoryKind } from '../contract/monitor.js';
import type { Task, TaskGpu } from '../contract/task.js';
import type { Gpu } from '../domain/index.js';
import type { DeviceUsage } from '../gpu/region/index.js';

const MHZ = 1e6;
const NS = 1e9;
const NO_BYTES: Readonly<Record<SampleMemoryKind, number>> = Object.freeze(Object.fromEntries(SAMPLE_MEMORY_KINDS.map((k) => [k, 0])) as Record<SampleMemoryKind, number>);

/**
 * What a task's processes hold on one of its GPUs, summed over them, as the supervisor last read
 * its region (src/gpu/region/usage.ts; the daemon and the node agent read regions the same way).
 */
export type TaskDeviceUsage = DeviceUsage;

/** A live task as the daemon hands it to the monitor (Daemon.monitoredTasks). */
export interface MonitoredTask {
  readonly task: Pick<Task, 'id' | 'state' | 'tenant' | 'computeLimitPercent' | 'submittedAt'>;
  /** The GPUs it holds, by CUDA ordinal inside the task. */
  readonly gpus: readonly TaskGpu[];
  /** null before its first CUDA call (no region yet). */
  readonly usage: readonly TaskDeviceUsage[] | null;
}

/**
 * A pod's container with GPU slices, as the node agent hands it to the monitor in Kubernetes
 * mode (src/k8s/agent/pod-slices.ts): who it is, the slice of each GPU it holds, and what its
 * processes hold now as its region says.
 */
export interface MonitoredContainer {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  /** Its pod is suspended (processes checkpointed and stopped) for preemption. */
  readonly suspended: boolean;
  /** Its GPUs by CUDA ordinal inside the container, with the slice of each. */
  readonly gpus: readonly { readonly uuid: string; readonly index: number; readonly memoryLimitBytes: number; readonly computeLimitPercent: number | null }[];
  /** null before its first CUDA call (no region yet). */
  readonly usage: readonly TaskDeviceUsage[] | null;
}

export interface SampleInputs {
  /** Unix ms. */
  readonly at: number;
  readonly hostname: string;
  readonly gpus: readonly Gpu[];
  /** Live tasks, queued ones included. */
  readonly tasks: readonly MonitoredTask[];
  /** Pods' containers with slices (the node agent; none in the daemon). */
  readonly containers?: readonly MonitoredContainer[];
  /** What the daemon holds against a GPU (the health book): an admin's cordon, a fault not yet recovered; absent: nothing. */
  readonly holds?: (uuid: string) => GpuHolds;
}

/** One sample from what was read. Pure. */
/** A GPU's holds as the sample shows them. */
export interface GpuHolds {
  readonly cordoned: boolean;
  /** An XID or uncorrectable ECC fault not yet recovered: the GPU reads `unhealthy` while the driver still reaches it. */
  readonly faulted: boolean;
}

export function buildSample(inputs: SampleInputs): MonitorSample {
  const byUuid = new Map(inputs.gpus.map((g) => [g.uuid, g]));
  return {
    at: inputs.at,
    hostname: inputs.hostname,
    gpus: inputs.gpus.map((g) => gpuSample(g, inputs.holds?.(g.uuid) ?? null)),
    slices: [...inputs.tasks.flatMap((t) => slicesOf(t, byUuid)), ...(inputs.containers ?? []).flatMap((c) => containerSlices(c, byUuid))],
    queue: queueSample(inputs.tasks, inputs.at),
  };
}

function gpuSample(g: Gpu, holds: GpuHolds | null): GpuSample {
  return {
    index: g.index,
    uuid: g.uuid,
    model: g.model,
    health: g.health === 'lost' ? 'lost' : holds?.faulted === true ? 'unhealthy' : g.health,
    cordoned: holds?.cordoned ?? false,
    memoryTotalBytes: g.memoryTotalBytes,
    memoryUsedBytes: g.memoryUsedBytes,
    memoryFreeBytes: g.memoryFreeBytes,
    memoryReservedBytes: g.memoryReservedBytes,
    utilizationGpu: g.utilizationGpu,
    utilizationMemory: g.utilizationMemory,
    clockSmHz: g.clockSmMHz === null ? null : g.clockSmMHz * MHZ,
    clockMemoryHz: g.clockMemoryMHz === null ? null : g.clockMemoryMHz * MHZ,
    temperatureCelsius: g.temperatureC,
    powerWatts: g.powerDrawWatts,
    powerLimitWatts: g.powerLimitWatts,
    energyJoules: g.energyJoules,
    throttleReasons: g.clockEventReasons,
    eccCorrectedErrors: g.eccErrors?.corrected ?? null,
    eccUncorrectedErrors: g.eccErrors?.uncorrected ?? null,
    xidErrors: g.xidErrors,
    lastXid: g.lastXid,
    pcieReplays: g.pcieReplays,
  };
}

/**
 * A task's slices, one per GPU it holds. The task's CUDA ordinal n is its n-th GPU (the launcher
 * sets CUDA_VISIBLE_DEVICES in that order), so the region's device n is that GPU's usage. A task
 * before its first CUDA call has no region yet: zero bytes, no share measured.
 */
function slicesOf(m: MonitoredTask, gpus: ReadonlyMap<string, Gpu>): SliceSample[] {
  const { task } = m;
  if (task.state === 'queued') return [];
  const owner = { task: task.id, tenant: task.tenant ?? '', state: task.state === 'suspended' ? 'suspended' : 'running', kubernetes: null } as const;
  const computeLimit = task.computeLimitPercent === null ? null : task.computeLimitPercent / 100;
  return m.gpus.map((held, ordinal) => sliceOf(owner, { uuid: held.uuid, index: gpus.get(held.uuid)?.index ?? held.index, memoryLimitBytes: held.memoryBytes, computeLimit }, ordinal, m.usage));
}

/**
 * A container's slices, one per GPU it holds, labelled with its pod. Its task is
 * `<namespace>/<pod>/<container>` (unique on the node, so history and the dashboard key it as
 * they key a task) and its tenant its namespace (as compat.ts shows a daemon task's tenant).
 */
function containerSlices(c: MonitoredContainer, gpus: ReadonlyMap<string, Gpu>): SliceSample[] {
  const owner = { task: `${c.namespace}/${c.pod}/${c.container}`, tenant: c.namespace, state: c.suspended ? 'suspended' : 'running', kubernetes: { namespace: c.namespace, pod: c.pod, container: c.container } } as const;
  return c.gpus.map((held, ordinal) =>
    sliceOf(owner, { uuid: held.uuid, index: gpus.get(held.uuid)?.index ?? held.index, memoryLimitBytes: held.memoryLimitBytes, computeLimit: held.computeLimitPercent === null ? null : held.computeLimitPercent / 100 }, ordinal, c.usage),
  );
}

/** One slice: a GPU held at CUDA ordinal `ordinal`, whose usage is the region's device `ordinal`. */
function sliceOf(
  owner: Pick<SliceSample, 'task' | 'tenant' | 'state' | 'kubernetes'>,
  held: { readonly uuid: string; readonly index: number; readonly memoryLimitBytes: number; readonly computeLimit: number | null },
  ordinal: number,
  usage: readonly TaskDeviceUsage[] | null,
): SliceSample {
  const used = usage?.find((u) => u.device === ordinal) ?? null;
  return {
    task: owner.task,
    tenant: owner.tenant,
    gpu: held.index,
    uuid: held.uuid,
    state: owner.state,
    memoryLimitBytes: held.memoryLimitBytes,
    memoryUsedBytes: used?.memoryBytes ?? 0,
    memoryByKind: used === null ? NO_BYTES : { ...used.bytesByKind },
    computeLimit: held.computeLimit,
    computeShare: usage === null ? null : (used?.computeShare ?? 0),
    busySeconds: (used?.busyNs ?? 0) / NS,
    throttledSeconds: (used?.throttleNs ?? 0) / NS,
    kernelLaunches: used?.kernelsLaunched ?? 0,
    kubernetes: owner.kubernetes,
  };
}

function queueSample(tasks: readonly MonitoredTask[], at: number): QueueSample {
  let oldest: { id: string; since: number } | null = null;
  let queued = 0;
  for (const { task } of tasks) {
    if (task.state !== 'queued') continue;
    queued += 1;
    if (oldest === null || task.submittedAt < oldest.since) oldest = { id: task.id, since: task.submittedAt };
  }
  return { queued, oldestTask: oldest?.id ?? null, oldestWaitSeconds: oldest === null ? null : Math.max(0, at - oldest.since) / 1000 };
}

/** Where the sampler reads and what it publishes to. */
export interface SamplerOptions {
  readonly backend: { gpus(): Gpu[] };
  /** The daemon's live tasks; absent in the node agent. */
  readonly daemon?: { monitoredTasks(): MonitoredTask[] };
  /** Pods' containers with slices (the node agent); absent in the daemon. */
  readonly containers?: () => readonly MonitoredContainer[];
  readonly publish: (sample: MonitorSample) => void;
  /** Milliseconds between samples (config monitor.sampleSeconds). */
  readonly periodMs: number;
  /** A sample that could not be taken (the backend threw): reported, and the next period tries again. */
  readonly onError: (err: unknown) => void;
  readonly now?: () => number;
  readonly hostname?: string;
  /** The health book's holds per GPU (SampleInputs.holds). */
  readonly holds?: (uuid: string) => GpuHolds;
}

/** Takes a sample now and then every period until closed. */
export class Sampler {
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly host: string;
  /** CPU time spent sampling, for the benchmark and the daemon's own metrics. */
  private cpuMicros = 0;
  private samples = 0;

  constructor(private readonly options: SamplerOptions) {
    this.now = options.now ?? Date.now;
    this.host = options.hostname ?? hostname();
    this.sampleNow();
    this.timer = setInterval(() => this.sampleNow(), options.periodMs);
    this.timer.unref();
  }

  /** Reads and publishes one sample; never throws (onError hears of failures). */
  sampleNow(): MonitorSample | null {
    const start = process.cpuUsage();
    try {
      const sample = buildSample({ at: this.now(), hostname: this.host, gpus: this.options.backend.gpus(), tasks: this.options.daemon?.monitoredTasks() ?? [], ...(this.options.containers !== undefined ? { containers: this.options.containers() } : {}), ...(this.options.holds !== undefined ? { holds: this.options.holds } : {}) });
      this.options.publish(sample);
      return sample;
    } catch (err) {
      this.options.onError(err);
      return null;
    } finally {
      const used = process.cpuUsage(start);
      this.cpuMicros += used.user + used.system;
      this.samples += 1;
    }
  }

  /** Samples taken and the CPU seconds they cost (this thread's, publishing to listeners included). */
  cost(): { readonly samples: number; readonly cpuSeconds: number } {
    return { samples: this.samples, cpuSeconds: this.cpuMicros / 1e6 };
  }

  close(): void {
    clearInterval(this.timer);
  }
}
