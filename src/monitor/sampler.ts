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

const MHZ = 1e6;
const NS = 1e9;
const NO_BYTES: Readonly<Record<SampleMemoryKind, number>> = Object.freeze(Object.fromEntries(SAMPLE_MEMORY_KINDS.map((k) => [k, 0])) as Record<SampleMemoryKind, number>);

/**
 * What a task's processes hold on one of its GPUs, summed over them, as the supervisor last read
 * its region (src/node/supervisor.ts DeviceUsage has this shape; the monitor does not import the
 * daemon: DESIGN.md's layers).
 */
export interface TaskDeviceUsage {
  /** CUDA ordinal inside the task. */
  readonly device: number;
  /** Bytes of the limited kinds: what the limit sees. */
  readonly memoryBytes: number;
  readonly computeShare: number;
  readonly bytesByKind: Readonly<Record<SampleMemoryKind, number>>;
  readonly kernelsLaunched: number;
  readonly busyNs: number;
  readonly throttleNs: number;
}

/** A live task as the daemon hands it to the monitor (Daemon.monitoredTasks). */
export interface MonitoredTask {
  readonly task: Pick<Task, 'id' | 'state' | 'tenant' | 'computeLimitPercent' | 'submittedAt'>;
  /** The GPUs it holds, by CUDA ordinal inside the task. */
  readonly gpus: readonly TaskGpu[];
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
    slices: inputs.tasks.flatMap((t) => slicesOf(t, byUuid)),
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
  return m.gpus.map((held, ordinal) => {
    const used = m.usage?.find((u) => u.device === ordinal) ?? null;
    return {
      task: task.id,
      tenant: task.tenant ?? '',
      gpu: gpus.get(held.uuid)?.index ?? held.index,
      uuid: held.uuid,
      state: task.state === 'suspended' ? 'suspended' : 'running',
      memoryLimitBytes: held.memoryBytes,
      memoryUsedBytes: used?.memoryBytes ?? 0,
      memoryByKind: used === null ? NO_BYTES : { ...used.bytesByKind },
      computeLimit: task.computeLimitPercent === null ? null : task.computeLimitPercent / 100,
      computeShare: m.usage === null ? null : (used?.computeShare ?? 0),
      busySeconds: (used?.busyNs ?? 0) / NS,
      throttledSeconds: (used?.throttleNs ?? 0) / NS,
      kernelLaunches: used?.kernelsLaunched ?? 0,
      kubernetes: null,
    };
  });
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
  readonly daemon: { monitoredTasks(): MonitoredTask[] };
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
      const sample = buildSample({ at: this.now(), hostname: this.host, gpus: this.options.backend.gpus(), tasks: this.options.daemon.monitoredTasks(), ...(this.options.holds !== undefined ? { holds: this.options.holds } : {}) });
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
