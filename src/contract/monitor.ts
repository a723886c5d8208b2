/**
 * Monitoring's shared vocabulary (issue 19): one sample of the machine, as the daemon's monitor
 * takes it about once a second. The Prometheus exporter, the history store, the alert engine, the
 * dashboard and `gpushare report` all read this one shape, so a figure means the same thing
 * everywhere. Part of the API contract. Units are base units: bytes, seconds, watts, joules, and
 * ratios 0..1 (never percent). A figure a backend cannot read is null, never a made-up 0.
 */

/** Kinds of GPU memory libgpushare counts in a task's region (native/region/gpushare_region.h). */
export const SAMPLE_MEMORY_KINDS = ['context', 'alloc', 'vmm', 'array', 'pool', 'host', 'graph'] as const;
export type SampleMemoryKind = (typeof SAMPLE_MEMORY_KINDS)[number];

/** One physical GPU at the sample's time. */
export interface GpuSample {
  readonly index: number;
  readonly uuid: string;
  readonly model: string;
  /** `ok`; `lost` (the driver cannot reach it); `unhealthy` (an XID or uncorrectable ECC fault seen, until it recovers or is cleared). */
  readonly health: 'ok' | 'lost' | 'unhealthy';
  /** An admin's `gpushare gpu cordon`: no new placements, running work untouched. */
  readonly cordoned: boolean;
  readonly memoryTotalBytes: number;
  readonly memoryUsedBytes: number;
  readonly memoryFreeBytes: number;
  readonly memoryReservedBytes: number | null;
  readonly utilizationGpu: number | null;
  readonly utilizationMemory: number | null;
  readonly clockSmHz: number | null;
  readonly clockMemoryHz: number | null;
  readonly temperatureCelsius: number | null;
  readonly powerWatts: number | null;
  readonly powerLimitWatts: number | null;
  /** Energy since the driver loaded (NVML total energy consumption). */
  readonly energyJoules: number | null;
  /** Why clocks are held down now, in NVML's words (`sw_power_cap`, `hw_thermal_slowdown`, ...). */
  readonly throttleReasons: readonly string[] | null;
  readonly eccCorrectedErrors: number | null;
  readonly eccUncorrectedErrors: number | null;
  /** XID errors seen since the daemon started watching, and the last one's code. */
  readonly xidErrors: number | null;
  readonly lastXid: number | null;
  readonly pcieReplays: number | null;
}

/** One task's slice of one GPU. Memory figures equal the region's accounting to the byte. */
export interface SliceSample {
  readonly task: string;
  readonly tenant: string;
  /** Index of the physical GPU (GpuSample.index). */
  readonly gpu: number;
  readonly uuid: string;
  readonly state: 'running' | 'suspended';
  /** What the slice reserved. */
  readonly memoryLimitBytes: number;
  /** Bytes of the limited kinds: what the limit sees. */
  readonly memoryUsedBytes: number;
  readonly memoryByKind: Readonly<Record<SampleMemoryKind, number>>;
  /** The compute share it was given, 0..1; null when compute is not limited. */
  readonly computeLimit: number | null;
  /** Achieved share of the GPU over about the last second, as the gate measures it (busy time). */
  readonly computeShare: number | null;
  /** Totals since the task started, summed over its processes (counters). */
  readonly busySeconds: number;
  readonly throttledSeconds: number;
  readonly kernelLaunches: number;
  /** In Kubernetes mode, who the slice belongs to; null for a daemon task. */
  readonly kubernetes: { readonly namespace: string; readonly pod: string; readonly container: string } | null;
}

/** The queue at the sample's time. */
export interface QueueSample {
  readonly queued: number;
  /** The longest-waiting task and how long it has waited, in seconds; null when none waits. */
  readonly oldestTask: string | null;
  readonly oldestWaitSeconds: number | null;
}

export interface MonitorSample {
  /** Unix time in milliseconds. */
  readonly at: number;
  readonly hostname: string;
  readonly gpus: readonly GpuSample[];
  readonly slices: readonly SliceSample[];
  readonly queue: QueueSample;
}

/** A function that gets every sample; returns nothing, must not throw (a listener's fault is its own). */
export type SampleListener = (sample: MonitorSample) => void;

/** Where samples come from: the daemon's monitor, or a test's hand-made feed. */
export interface SampleSource {
  /** The newest sample, or null before the first. */
  latest(): MonitorSample | null;
  /** Calls `listener` with each new sample; returns the unsubscribe. */
  subscribe(listener: SampleListener): () => void;
}

/**
 * History (GET /v1/history): series the daemon keeps, raw for the last hour, then downsampled
 * (min, mean, max) per minute for a week and per hour for 90 days. `gpu_*` series take `gpu`,
 * `slice_*` take `task` (summed over the task's GPUs), `tenant_*` take `tenant`.
 */
export const HISTORY_SERIES = [
  'gpu_utilization',
  'gpu_memory_used_bytes',
  'gpu_temperature_celsius',
  'gpu_power_watts',
  'slice_memory_used_bytes',
  'slice_compute_share',
  'tenant_memory_used_bytes',
  'tenant_compute_share',
  'queue_length',
] as const;
export type HistorySeries = (typeof HISTORY_SERIES)[number];

/** One point of a range: over [t, t + step) of the response. A raw point has min = mean = max. */
export interface HistoryPoint {
  /** Unix ms, the start of the point's interval. */
  readonly t: number;
  readonly min: number;
  readonly mean: number;
  readonly max: number;
}

export interface HistoryResponse {
  readonly series: HistorySeries;
  readonly subject: { readonly gpu?: number; readonly task?: string; readonly tenant?: string };
  /** Seconds each point covers (1 for raw samples). */
  readonly step: number;
  readonly from: number;
  readonly to: number;
  readonly points: readonly HistoryPoint[];
}

/** An alert as GET /v1/alerts returns it and the event stream and webhooks carry it. */
export interface AlertEvent {
  /** Stable over the alert's life: firing and resolved carry the same id. */
  readonly id: string;
  readonly rule: string;
  readonly severity: 'info' | 'warning' | 'critical';
  readonly state: 'firing' | 'resolved';
  readonly subject: { readonly gpu?: number; readonly uuid?: string; readonly task?: string; readonly tenant?: string };
  /** The figure that crossed, and the threshold it crossed (in the rule's unit). */
  readonly value: number;
  readonly threshold: number;
  /** Unix ms. */
  readonly startedAt: number;
  readonly resolvedAt: number | null;
  /** One line for people, e.g. `GPU 0 memory at 91% (threshold 85%) for 2m`. */
  readonly summary: string;
  /** Matched by an active silence: kept and listed, but not sent to webhooks. */
  readonly silenced: boolean;
}
