/**
 * The gpushare_* metrics that come from the monitor's latest sample (per GPU, per slice, the
 * queue's length), written from the sample at scrape time (text.ts says why not through
 * prom-client's objects), so a value is at most one sampling period old. Names and labels:
 * DESIGN.md "Metrics" (base units: bytes, seconds, hertz, watts, joules, ratios 0..1).
 */
import { SAMPLE_MEMORY_KINDS, type GpuSample, type MonitorSample, type SliceSample } from '../../contract/monitor.js';
import { CLOCK_EVENT_REASONS } from '../../gpu/nvml/codes.js';
import { labelText, seriesOf, withLabel, writeFamily, type Series } from './text.js';



/** Every reason NVML can name, so a reason that ends reads 0 rather than vanishing. */
const THROTTLE_REASONS = CLOCK_EVENT_REASONS.map(([, name]) => name);

/** A GPU figure that maps one sample field to one gauge; null fields are left out of the scrape. */
const GPU_GAUGES: ReadonlyArray<readonly [name: string, help: string, read: (g: GpuSample) => number | null]> = [
  ['gpushare_gpu_utilization_ratio', 'Fraction of the last driver sample period a kernel ran on the GPU (0..1).', (g) => g.utilizationGpu],
  ['gpushare_gpu_memory_utilization_ratio', 'Fraction of the last driver sample period device memory was read or written (0..1).', (g) => g.utilizationMemory],
  ['gpushare_gpu_memory_total_bytes', 'Device memory in total.', (g) => g.memoryTotalBytes],
  ['gpushare_gpu_memory_used_bytes', 'Device memory in use, as the driver counts it.', (g) => g.memoryUsedBytes],
  ['gpushare_gpu_memory_free_bytes', 'Device memory free.', (g) => g.memoryFreeBytes],
  ['gpushare_gpu_memory_reserved_bytes', 'Device memory the driver keeps for itself.', (g) => g.memoryReservedBytes],
  ['gpushare_gpu_sm_clock_hertz', 'SM clock.', (g) => g.clockSmHz],
  ['gpushare_gpu_memory_clock_hertz', 'Memory clock.', (g) => g.clockMemoryHz],
  ['gpushare_gpu_temperature_celsius', 'GPU temperature.', (g) => g.temperatureCelsius],
  ['gpushare_gpu_power_watts', 'Power draw.', (g) => g.powerWatts],
  ['gpushare_gpu_power_limit_watts', 'Enforced power limit.', (g) => g.powerLimitWatts],
  // 0 while watched and none seen (as DCGM_FI_DEV_XID_ERRORS); absent where XIDs cannot be watched.
  ['gpushare_gpu_last_xid', 'Code of the last critical XID error seen since the daemon started (0: none yet).', (g) => (g.xidErrors === null ? null : (g.lastXid ?? 0))],
  ['gpushare_gpu_healthy', '1 when the GPU is healthy; 0 when lost or faulted (XID, uncorrectable ECC).', (g) => (g.health === 'ok' ? 1 : 0)],
  ['gpushare_gpu_cordoned', '1 when an admin cordoned the GPU (no new placements).', (g) => (g.cordoned ? 1 : 0)],
];

const GPU_COUNTERS: ReadonlyArray<readonly [name: string, help: string, read: (g: GpuSample) => number | null]> = [
  ['gpushare_gpu_energy_joules_total', 'Energy used since the driver loaded.', (g) => g.energyJoules],
  ['gpushare_gpu_xid_errors_total', 'Critical XID errors seen since the daemon started.', (g) => g.xidErrors],
  ['gpushare_gpu_pcie_replays_total', 'PCIe replays since the driver loaded.', (g) => g.pcieReplays],
];

const SLICE_GAUGES: ReadonlyArray<readonly [name: string, help: string, read: (s: SliceSample) => number | null]> = [
  ['gpushare_slice_memory_used_bytes', "Bytes the slice's processes hold of the kinds its limit counts (its region's accounting, to the byte).", (s) => s.memoryUsedBytes],
  ['gpushare_slice_memory_limit_bytes', 'Memory the slice reserved.', (s) => s.memoryLimitBytes],
  ['gpushare_slice_compute_limit_ratio', "The slice's compute share limit (0..1); absent when compute is not limited.", (s) => s.computeLimit],
  ['gpushare_slice_compute_share_ratio', 'Achieved share of the GPU over about the last second, as the gate measures it (0..1).', (s) => s.computeShare],
];

const SLICE_COUNTERS: ReadonlyArray<readonly [name: string, help: string, read: (s: SliceSample) => number]> = [
  ['gpushare_slice_busy_seconds_total', "GPU busy time of the slice's processes attached now, as the gate measures it.", (s) => s.busySeconds],
  ['gpushare_slice_throttled_seconds_total', "Time the gate held the slice's launches back to keep it to its share.", (s) => s.throttledSeconds],
  ['gpushare_slice_kernel_launches_total', "Kernel launches by the slice's processes attached now.", (s) => s.kernelLaunches],
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
  const gpus = sample.gpus.map((g) => [gpuLabels(g, host), g] as const);
  for (const [name, help, read] of GPU_GAUGES) writeFamily(out, openMetrics, name, help, 'gauge', seriesOf(gpus, read));
  for (const [name, help, read] of GPU_COUNTERS) writeFamily(out, openMetrics, name, help, 'counter', seriesOf(gpus, read));
  const throttle: Series[] = [];
  const ecc: Series[] = [];
  for (const [labels, g] of gpus) {
    if (g.throttleReasons !== null) {
      const active = new Set(g.throttleReasons);
      for (const reason of new Set([...THROTTLE_REASONS, ...active])) throttle.push([withLabel(labels, 'reason', reason), active.has(reason) ? 1 : 0]);
    }
    if (g.eccCorrectedErrors !== null) ecc.push([withLabel(labels, 'type', 'corrected'), g.eccCorrectedErrors]);
    if (g.eccUncorrectedErrors !== null) ecc.push([withLabel(labels, 'type', 'uncorrected'), g.eccUncorrectedErrors]);
  }
  writeFamily(out, openMetrics, 'gpushare_gpu_throttle_reason', "1 for each reason the GPU's clocks are held down now, in NVML's words.", 'gauge', throttle);
  writeFamily(out, openMetrics, 'gpushare_gpu_ecc_errors_total', 'Volatile ECC errors since the driver loaded, by type (corrected, uncorrected).', 'counter', ecc);

  const slices = sample.slices.map((s) => [sliceLabels(s, host), s] as const);
  for (const [name, help, read] of SLICE_GAUGES) writeFamily(out, openMetrics, name, help, 'gauge', seriesOf(slices, read));
  for (const [name, help, read] of SLICE_COUNTERS) writeFamily(out, openMetrics, name, help, 'counter', seriesOf(slices, read));
  const bytes: Series[] = [];
  const state: Series[] = [];
  for (const [labels, s] of slices) {
    for (const kind of SAMPLE_MEMORY_KINDS) bytes.push([withLabel(labels, 'kind', kind), s.memoryByKind[kind]]);
    state.push([withLabel(labels, 'state', 'running'), s.state === 'running' ? 1 : 0], [withLabel(labels, 'state', 'suspended'), s.state === 'suspended' ? 1 : 0]);
  }
  writeFamily(out, openMetrics, 'gpushare_slice_memory_bytes', `Bytes the slice's processes hold, by kind (${SAMPLE_MEMORY_KINDS.join(', ')}).`, 'gauge', bytes);
  writeFamily(out, openMetrics, 'gpushare_slice_state', '1 for the state the slice is in (running, suspended), 0 for the other.', 'gauge', state);

  writeFamily(out, openMetrics, 'gpushare_queue_length', 'Tasks queued, waiting to start.', 'gauge', [['', sample.queue.queued]]);
  writeFamily(out, openMetrics, 'gpushare_queue_oldest_wait_seconds', 'How long the longest-waiting queued task has waited (0 when none waits).', 'gauge', [['', sample.queue.oldestWaitSeconds ?? 0]]);
  writeFamily(out, openMetrics, 'gpushare_sample_timestamp_seconds', 'When the sample these figures come from was taken (Unix time).', 'gauge', [[labelText({ hostname: host }), sample.at / 1000]]);
}
