/**
 * The gpushare_* metrics that come from the monitor's latest sample (per GPU, per slice, the
 * queue's length), written from the sample at scrape time (text.ts says why not through
 * prom-client's objects), so a value is at most one sampling period old. Names and labels:
 * DESIGN.md "Metrics" (base units: bytes, seconds, hertz, watts, joules, ratios 0..1).
 */
import { SAMPLE_MEMORY_KINDS, type GpuSample, type MonitorSample, type SliceSample } from '../../contract/monitor.js';
import { CLOCK_EVENT_REASONS } from '../../gpu/nvml/codes.js';
import { labelText, writeFamilies, writeFamily, type Family } from './text.js';

/** Every reason NVML can name, so a reason that ends reads 0 rather than vanishing. */
const THROTTLE_REASONS = CLOCK_EVENT_REASONS.map(([, name]) => name);

const KIND_LABELS = SAMPLE_MEMORY_KINDS.map((kind) => [kind, `kind="${kind}"`] as const);

/** A GPU's families; a figure the backend could not read (null) is left out of the scrape. */
const GPU_FAMILIES: readonly Family<GpuSample>[] = [
  // How busy, in the driver's sampling.
  ['gpushare_gpu_utilization_ratio', 'Fraction of the last driver sample period a kernel ran on the GPU (0..1).', 'gauge', (g) => g.utilizationGpu],
  ['gpushare_gpu_memory_utilization_ratio', 'Fraction of the last driver sample period device memory was read or written (0..1).', 'gauge', (g) => g.utilizationMemory],
  // Device memory, as the driver counts it (slices' own accounting is below).
  ['gpushare_gpu_memory_total_bytes', 'Device memory in total.', 'gauge', (g) => g.memoryTotalBytes],
  ['gpushare_gpu_memory_used_bytes', 'Device memory in use, as the driver counts it.', 'gauge', (g) => g.memoryUsedBytes],
  ['gpushare_gpu_memory_free_bytes', 'Device memory free.', 'gauge', (g) => g.memoryFreeBytes],
  ['gpushare_gpu_memory_reserved_bytes', 'Device memory the driver keeps for itself.', 'gauge', (g) => g.memoryReservedBytes],
  // Clocks, heat and power (dcgm-exporter's default set).
  ['gpushare_gpu_sm_clock_hertz', 'SM clock.', 'gauge', (g) => g.clockSmHz],
  ['gpushare_gpu_memory_clock_hertz', 'Memory clock.', 'gauge', (g) => g.clockMemoryHz],
  ['gpushare_gpu_temperature_celsius', 'GPU temperature.', 'gauge', (g) => g.temperatureCelsius],
  ['gpushare_gpu_power_watts', 'Power draw.', 'gauge', (g) => g.powerWatts],
  ['gpushare_gpu_power_limit_watts', 'Enforced power limit.', 'gauge', (g) => g.powerLimitWatts],
  // Health and faults.
  // 0 while watched and none seen (as DCGM_FI_DEV_XID_ERRORS); absent where XIDs cannot be watched.
  ['gpushare_gpu_last_xid', 'Code of the last critical XID error seen since the daemon started (0: none yet).', 'gauge', (g) => (g.xidErrors === null ? null : (g.lastXid ?? 0))],
  ['gpushare_gpu_healthy', '1 when the GPU is healthy; 0 when lost or faulted (XID, uncorrectable ECC).', 'gauge', (g) => (g.health === 'ok' ? 1 : 0)],
  ['gpushare_gpu_cordoned', '1 when an admin cordoned the GPU (no new placements).', 'gauge', (g) => (g.cordoned ? 1 : 0)],
  // Counters since the driver loaded or the daemon started.
  ['gpushare_gpu_energy_joules_total', 'Energy used since the driver loaded.', 'counter', (g) => g.energyJoules],
  ['gpushare_gpu_xid_errors_total', 'Critical XID errors seen since the daemon started.', 'counter', (g) => g.xidErrors],
  ['gpushare_gpu_pcie_replays_total', 'PCIe replays since the driver loaded.', 'counter', (g) => g.pcieReplays],
  ['gpushare_gpu_throttle_reason', "1 for each reason the GPU's clocks are held down now, in NVML's words.", 'gauge', (g) => {
    if (g.throttleReasons === null) return null;
    const active = new Set(g.throttleReasons);
    return [...new Set([...THROTTLE_REASONS, ...active])].map((reason) => [`reason="${reason}"`, active.has(reason) ? 1 : 0] as const);
  }],
  ['gpushare_gpu_ecc_errors_total', 'Volatile ECC errors since the driver loaded, by type (corrected, uncorrected).', 'counter', (g) => [
    ...(g.eccCorrectedErrors === null ? [] : [['type="corrected"', g.eccCorrectedErrors] as const]),
    ...(g.eccUncorrectedErrors === null ? [] : [['type="uncorrected"', g.eccUncorrectedErrors] as const]),
  ]],
];

const SLICE_FAMILIES: readonly Family<SliceSample>[] = [
  // Memory: what the region counts against what was reserved, and by kind.
  ['gpushare_slice_memory_used_bytes', "Bytes the slice's processes hold of the kinds its limit counts (its region's accounting, to the byte).", 'gauge', (s) => s.memoryUsedBytes],
  ['gpushare_slice_memory_limit_bytes', 'Memory the slice reserved.', 'gauge', (s) => s.memoryLimitBytes],
  ['gpushare_slice_memory_bytes', `Bytes the slice's processes hold, by kind (${SAMPLE_MEMORY_KINDS.join(', ')}).`, 'gauge', (s) => KIND_LABELS.map(([kind, label]) => [label, s.memoryByKind[kind]] as const)],
  // Compute: the share given against the share the gate measured.
  ['gpushare_slice_compute_limit_ratio', "The slice's compute share limit (0..1); absent when compute is not limited.", 'gauge', (s) => s.computeLimit],
  ['gpushare_slice_compute_share_ratio', 'Achieved share of the GPU over about the last second, as the gate measures it (0..1).', 'gauge', (s) => s.computeShare],
  ['gpushare_slice_state', '1 for the state the slice is in (running, suspended), 0 for the other.', 'gauge', (s) => [['state="running"', s.state === 'running' ? 1 : 0], ['state="suspended"', s.state === 'suspended' ? 1 : 0]]],
  // The gate's counters, summed over the processes attached now.
  ['gpushare_slice_busy_seconds_total', "GPU busy time of the slice's processes attached now, as the gate measures it.", 'counter', (s) => s.busySeconds],
  ['gpushare_slice_throttled_seconds_total', "Time the gate held the slice's launches back to keep it to its share.", 'counter', (s) => s.throttledSeconds],
  ['gpushare_slice_kernel_launches_total', "Kernel launches by the slice's processes attached now.", 'counter', (s) => s.kernelLaunches],
];

/** `gpu`, `uuid`, `model`, `hostname` of a GPU, written once per sample. */
export function gpuLabels(g: GpuSample, hostname: string): string {
  return labelText({ gpu: String(g.index), uuid: g.uuid, model: g.model, hostname });
}

/**
 * A slice's labels, written once per sample: `gpu`, `uuid`, `hostname`, `task`, `tenant`, and
 * Kubernetes' `namespace`, `pod`, `container`, empty for a daemon task (Prometheus drops empty labels).
 */
export function sliceLabels(s: SliceSample, hostname: string): string {
  const k = s.kubernetes;
  return labelText({ gpu: String(s.gpu), uuid: s.uuid, hostname, task: s.task, tenant: s.tenant, namespace: k?.namespace ?? '', pod: k?.pod ?? '', container: k?.container ?? '' });
}


/** Every sample-derived gpushare_* family, appended to `out`. */
export function writeSampleFamilies(out: string[], sample: MonitorSample, openMetrics: boolean): void {
  const host = sample.hostname;
  writeFamilies(out, openMetrics, sample.gpus.map((g) => [gpuLabels(g, host), g] as const), GPU_FAMILIES);
  writeFamilies(out, openMetrics, sample.slices.map((s) => [sliceLabels(s, host), s] as const), SLICE_FAMILIES);
  writeFamily(out, openMetrics, 'gpushare_queue_length', 'Tasks queued, waiting to start.', 'gauge', [['', sample.queue.queued]]);
  writeFamily(out, openMetrics, 'gpushare_queue_oldest_wait_seconds', 'How long the longest-waiting queued task has waited (0 when none waits).', 'gauge', [['', sample.queue.oldestWaitSeconds ?? 0]]);
  writeFamily(out, openMetrics, 'gpushare_sample_timestamp_seconds', 'When the sample these figures come from was taken (Unix time).', 'gauge', [[labelText({ hostname: host }), sample.at / 1000]]);
}
