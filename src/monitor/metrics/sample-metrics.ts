/**
 * The gpushare_* metrics that come from the monitor's latest sample (per GPU, per slice, the
 * queue's length): one set of gauges and counters on one registry, refreshed from a sample at
 * scrape time, so a value is at most one sampling period old. Names and labels: DESIGN.md
 * "Metrics" (base units: bytes, seconds, hertz, watts, joules, ratios 0..1).
 */
import { Counter, Gauge } from 'prom-client';
import type { AnyRegistry } from './registry.js';
import { SAMPLE_MEMORY_KINDS, type GpuSample, type MonitorSample, type SliceSample } from '../../contract/monitor.js';
import { CLOCK_EVENT_REASONS } from '../../gpu/nvml/codes.js';

export const GPU_LABELS = ['gpu', 'uuid', 'model', 'hostname'] as const;
/** Kubernetes' namespace, pod and container are empty for a daemon task (Prometheus drops empty labels). */
export const SLICE_LABELS = ['gpu', 'uuid', 'hostname', 'task', 'tenant', 'namespace', 'pod', 'container'] as const;

type GpuLabel = (typeof GPU_LABELS)[number];
type SliceLabel = (typeof SLICE_LABELS)[number];
type Labels<K extends string> = Record<K, string>;

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

export function gpuLabels(g: GpuSample, hostname: string): Labels<GpuLabel> {
  return { gpu: String(g.index), uuid: g.uuid, model: g.model, hostname };
}

export function sliceLabels(s: SliceSample, hostname: string): Labels<SliceLabel> {
  const k = s.kubernetes;
  return { gpu: String(s.gpu), uuid: s.uuid, hostname, task: s.task, tenant: s.tenant, namespace: k?.namespace ?? '', pod: k?.pod ?? '', container: k?.container ?? '' };
}

/** The sample-derived metrics on one registry. */
export class SampleMetrics {
  private readonly gpuGauges: [Gauge<GpuLabel>, (g: GpuSample) => number | null][];
  private readonly gpuCounters: [Counter<GpuLabel>, (g: GpuSample) => number | null][];
  private readonly throttle: Gauge<GpuLabel | 'reason'>;
  private readonly ecc: Counter<GpuLabel | 'type'>;
  private readonly sliceGauges: [Gauge<SliceLabel>, (s: SliceSample) => number | null][];
  private readonly sliceCounters: [Counter<SliceLabel>, (s: SliceSample) => number][];
  private readonly sliceBytes: Gauge<SliceLabel | 'kind'>;
  private readonly sliceState: Gauge<SliceLabel | 'state'>;
  private readonly queueLength: Gauge;
  private readonly oldestWait: Gauge;
  private readonly sampledAt: Gauge<'hostname'>;

  constructor(registry: AnyRegistry) {
    const r = [registry];
    this.gpuGauges = GPU_GAUGES.map(([name, help, read]) => [new Gauge({ name, help, labelNames: GPU_LABELS, registers: r }), read]);
    this.gpuCounters = GPU_COUNTERS.map(([name, help, read]) => [new Counter({ name, help, labelNames: GPU_LABELS, registers: r }), read]);
    this.throttle = new Gauge({ name: 'gpushare_gpu_throttle_reason', help: "1 for each reason the GPU's clocks are held down now, in NVML's words.", labelNames: [...GPU_LABELS, 'reason'], registers: r });
    this.ecc = new Counter({ name: 'gpushare_gpu_ecc_errors_total', help: 'Volatile ECC errors since the driver loaded, by type (corrected, uncorrected).', labelNames: [...GPU_LABELS, 'type'], registers: r });
    this.sliceGauges = SLICE_GAUGES.map(([name, help, read]) => [new Gauge({ name, help, labelNames: SLICE_LABELS, registers: r }), read]);
    this.sliceCounters = SLICE_COUNTERS.map(([name, help, read]) => [new Counter({ name, help, labelNames: SLICE_LABELS, registers: r }), read]);
    this.sliceBytes = new Gauge({ name: 'gpushare_slice_memory_bytes', help: `Bytes the slice's processes hold, by kind (${SAMPLE_MEMORY_KINDS.join(', ')}).`, labelNames: [...SLICE_LABELS, 'kind'], registers: r });
    this.sliceState = new Gauge({ name: 'gpushare_slice_state', help: '1 for the state the slice is in (running, suspended), 0 for the other.', labelNames: [...SLICE_LABELS, 'state'], registers: r });
    this.queueLength = new Gauge({ name: 'gpushare_queue_length', help: 'Tasks queued, waiting to start.', registers: r });
    this.oldestWait = new Gauge({ name: 'gpushare_queue_oldest_wait_seconds', help: 'How long the longest-waiting queued task has waited (0 when none waits).', registers: r });
    this.sampledAt = new Gauge({ name: 'gpushare_sample_timestamp_seconds', help: 'When the sample these figures come from was taken (Unix time).', labelNames: ['hostname'], registers: r });
  }

  /** Replaces every value with the sample's: GPUs and slices gone since the last one disappear. */
  apply(sample: MonitorSample): void {
    const host = sample.hostname;
    for (const [m] of this.gpuGauges) m.reset();
    for (const [m] of this.gpuCounters) m.reset();
    this.throttle.reset();
    this.ecc.reset();
    for (const g of sample.gpus) {
      const labels = gpuLabels(g, host);
      for (const [m, read] of this.gpuGauges) setIf(m, labels, read(g));
      for (const [m, read] of this.gpuCounters) incIf(m, labels, read(g));
      if (g.throttleReasons !== null) {
        const active = new Set(g.throttleReasons);
        for (const reason of new Set([...THROTTLE_REASONS, ...active])) this.throttle.set({ ...labels, reason }, active.has(reason) ? 1 : 0);
      }
      incIf(this.ecc, { ...labels, type: 'corrected' }, g.eccCorrectedErrors);
      incIf(this.ecc, { ...labels, type: 'uncorrected' }, g.eccUncorrectedErrors);
    }
    for (const [m] of this.sliceGauges) m.reset();
    for (const [m] of this.sliceCounters) m.reset();
    this.sliceBytes.reset();
    this.sliceState.reset();
    for (const s of sample.slices) {
      const labels = sliceLabels(s, host);
      for (const [m, read] of this.sliceGauges) setIf(m, labels, read(s));
      for (const [m, read] of this.sliceCounters) incIf(m, labels, read(s));
      for (const kind of SAMPLE_MEMORY_KINDS) this.sliceBytes.set({ ...labels, kind }, s.memoryByKind[kind]);
      this.sliceState.set({ ...labels, state: 'running' }, s.state === 'running' ? 1 : 0);
      this.sliceState.set({ ...labels, state: 'suspended' }, s.state === 'suspended' ? 1 : 0);
    }
    this.queueLength.set(sample.queue.queued);
    this.oldestWait.set(sample.queue.oldestWaitSeconds ?? 0);
    this.sampledAt.reset();
    this.sampledAt.set({ hostname: host }, sample.at / 1000);
  }
}

function setIf<K extends string>(m: Gauge<K>, labels: Labels<K>, value: number | null): void {
  if (value !== null) m.set(labels, value);
}

/** A counter's total as the source counted it: prom-client counters only go up, so from a reset. */
function incIf<K extends string>(m: Counter<K>, labels: Labels<K>, value: number | null): void {
  if (value !== null) m.inc(labels, value);
}
