/**
 * Optional name sets for dashboards built on other exporters (config `metrics.compat`, off by
 * default). They repeat the sample's figures under those exporters' names, labels and units;
 * gpushare_* stays the source of truth.
 *
 * Sources of the names, labels and units (read, not copied):
 * - dcgm-exporter's default counters, NVIDIA/dcgm-exporter etc/default-counters.csv (clocks in
 *   MHz, energy in mJ since boot, utilization in %, framebuffer in MiB, DCGM_FI_DEV_XID_ERRORS
 *   the last XID's value) and its labels `gpu`, `UUID`, `device`, `modelName`, `Hostname`; the
 *   ECC and throttle fields it lists commented out there (DCGM_FI_DEV_ECC_SBE_VOL_TOTAL,
 *   DCGM_FI_DEV_ECC_DBE_VOL_TOTAL) and DCGM_FI_DEV_CLOCK_THROTTLE_REASONS (the NVML bitmask).
 * - HAMi's device monitor, Project-HAMi/website docs/userguide/monitoring/real-time-device-usage.md
 *   (v2.10 names): hami_host_gpu_utilization_ratio and hami_host_gpu_memory_used_bytes with
 *   `device_index`, `device_type`, `device_uuid`, `zone`; hami_container_device_utilization_ratio,
 *   hami_container_device_memory_bytes, hami_vgpu_memory_used_bytes, hami_vgpu_memory_limit_bytes
 *   and hami_vgpu_memory_context_bytes with `container`, `device_uuid`, `namespace`, `pod`,
 *   `vdevice_index`, `zone`. Its ratios are 0-100 (promql-recipes.md says so), not 0-1.
 *
 * A daemon task (not a pod) shows as namespace = its tenant, pod = container = its task id, so
 * HAMi's per-pod panels list it.
 */
import { Counter, Gauge } from 'prom-client';
import type { AnyRegistry } from './registry.js';
import type { GpuSample, MonitorSample, SliceSample } from '../../contract/monitor.js';
import { CLOCK_EVENT_REASONS } from '../../gpu/nvml/codes.js';

/** Name sets /metrics can add (config `metrics.compat`; src/node/config.ts lists the same). */
export type MetricsCompatSet = 'dcgm' | 'hami';

const MIB = 2 ** 20;
const REASON_BITS = new Map(CLOCK_EVENT_REASONS.map(([bit, name]) => [name, bit]));

type Read<T> = (x: T) => number | null;

const DCGM_LABELS = ['gpu', 'UUID', 'device', 'modelName', 'Hostname'] as const;
const DCGM_GAUGES: ReadonlyArray<readonly [string, string, Read<GpuSample>]> = [
  ['DCGM_FI_DEV_SM_CLOCK', 'SM clock frequency (in MHz).', (g) => (g.clockSmHz === null ? null : g.clockSmHz / 1e6)],
  ['DCGM_FI_DEV_MEM_CLOCK', 'Memory clock frequency (in MHz).', (g) => (g.clockMemoryHz === null ? null : g.clockMemoryHz / 1e6)],
  ['DCGM_FI_DEV_GPU_TEMP', 'GPU temperature (in C).', (g) => g.temperatureCelsius],
  ['DCGM_FI_DEV_POWER_USAGE', 'Power draw (in W).', (g) => g.powerWatts],
  ['DCGM_FI_DEV_GPU_UTIL', 'GPU utilization (in %).', (g) => percent(g.utilizationGpu)],
  ['DCGM_FI_DEV_MEM_COPY_UTIL', 'Memory utilization (in %).', (g) => percent(g.utilizationMemory)],
  ['DCGM_FI_DEV_XID_ERRORS', 'Value of the last XID error encountered.', (g) => (g.xidErrors === null ? null : (g.lastXid ?? 0))],
  ['DCGM_FI_DEV_FB_FREE', 'Framebuffer memory free (in MiB).', (g) => g.memoryFreeBytes / MIB],
  ['DCGM_FI_DEV_FB_USED', 'Framebuffer memory used (in MiB).', (g) => g.memoryUsedBytes / MIB],
  ['DCGM_FI_DEV_FB_RESERVED', 'Framebuffer memory reserved (in MiB).', (g) => (g.memoryReservedBytes === null ? null : g.memoryReservedBytes / MIB)],
  ['DCGM_FI_DEV_CLOCK_THROTTLE_REASONS', 'Current clock throttle reasons (NVML bitmask).', throttleMask],
];
const DCGM_COUNTERS: ReadonlyArray<readonly [string, string, Read<GpuSample>]> = [
  ['DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'Total energy consumption since boot (in mJ).', (g) => (g.energyJoules === null ? null : Math.round(g.energyJoules * 1000))],
  ['DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'Total number of PCIe retries.', (g) => g.pcieReplays],
  ['DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'Total number of single-bit volatile ECC errors.', (g) => g.eccCorrectedErrors],
  ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'Total number of double-bit volatile ECC errors.', (g) => g.eccUncorrectedErrors],
];

const HAMI_HOST_LABELS = ['device_index', 'device_type', 'device_uuid', 'zone'] as const;
const HAMI_HOST: ReadonlyArray<readonly [string, string, Read<GpuSample>]> = [
  ['hami_host_gpu_utilization_ratio', 'GPU core utilization ratio on host (0-100)', (g) => percent(g.utilizationGpu)],
  ['hami_host_gpu_memory_used_bytes', 'GPU real-time device memory usage on host', (g) => g.memoryUsedBytes],
];
const HAMI_SLICE_LABELS = ['container', 'device_uuid', 'namespace', 'pod', 'vdevice_index', 'zone'] as const;
const HAMI_SLICE: ReadonlyArray<readonly [string, string, Read<SliceSample>]> = [
  ['hami_container_device_utilization_ratio', 'Container device SM utilization ratio (0-100)', (s) => percent(s.computeShare)],
  ['hami_container_device_memory_bytes', 'Container device memory usage in bytes', (s) => s.memoryUsedBytes],
  ['hami_vgpu_memory_used_bytes', 'vGPU device memory usage in bytes', (s) => s.memoryUsedBytes],
  ['hami_vgpu_memory_limit_bytes', 'vGPU device memory limit in bytes', (s) => s.memoryLimitBytes],
  ['hami_vgpu_memory_context_bytes', 'Container device memory context size in bytes', (s) => s.memoryByKind.context],
];

function percent(ratio: number | null): number | null {
  return ratio === null ? null : ratio * 100;
}

function throttleMask(g: GpuSample): number | null {
  if (g.throttleReasons === null) return null;
  let mask = 0n;
  for (const r of g.throttleReasons) mask |= REASON_BITS.get(r) ?? 0n;
  return Number(mask);
}

type Family<T, L extends string> = { metric: Gauge<L> | Counter<L>; read: Read<T> };

function families<T, L extends string>(registry: AnyRegistry, labelNames: readonly L[], gauges: ReadonlyArray<readonly [string, string, Read<T>]>, counters: ReadonlyArray<readonly [string, string, Read<T>]> = []): Family<T, L>[] {
  const registers = [registry];
  return [
    ...gauges.map(([name, help, read]) => ({ metric: new Gauge<L>({ name, help, labelNames, registers }), read })),
    ...counters.map(([name, help, read]) => ({ metric: new Counter<L>({ name, help, labelNames, registers }), read })),
  ];
}

function put<T, L extends string>(f: Family<T, L>, labels: Record<L, string>, x: T): void {
  const v = f.read(x);
  if (v === null) return;
  if (f.metric instanceof Gauge) f.metric.set(labels, v);
  else f.metric.inc(labels, v);
}

/** The compat sets asked for, on one registry. */
export class CompatMetrics {
  private readonly dcgm: Family<GpuSample, (typeof DCGM_LABELS)[number]>[];
  private readonly hamiHost: Family<GpuSample, (typeof HAMI_HOST_LABELS)[number]>[];
  private readonly hamiSlice: Family<SliceSample, (typeof HAMI_SLICE_LABELS)[number]>[];

  constructor(registry: AnyRegistry, sets: readonly MetricsCompatSet[]) {
    this.dcgm = sets.includes('dcgm') ? families(registry, DCGM_LABELS, DCGM_GAUGES, DCGM_COUNTERS) : [];
    const hami = sets.includes('hami');
    this.hamiHost = hami ? families(registry, HAMI_HOST_LABELS, HAMI_HOST) : [];
    this.hamiSlice = hami ? families(registry, HAMI_SLICE_LABELS, HAMI_SLICE) : [];
  }

  apply(sample: MonitorSample): void {
    for (const f of [...this.dcgm, ...this.hamiHost, ...this.hamiSlice]) f.metric.reset();
    for (const g of sample.gpus) {
      const dcgm = { gpu: String(g.index), UUID: g.uuid, device: `nvidia${g.index}`, modelName: g.model, Hostname: sample.hostname };
      for (const f of this.dcgm) put(f, dcgm, g);
      const host = { device_index: String(g.index), device_type: `NVIDIA-${g.model}`, device_uuid: g.uuid, zone: 'vGPU' };
      for (const f of this.hamiHost) put(f, host, g);
    }
    if (this.hamiSlice.length === 0) return;
    // A slice's vdevice_index is its ordinal inside its task: slices come in each task's GPU order.
    const ordinals = new Map<string, number>();
    for (const s of sample.slices) {
      const ordinal = ordinals.get(s.task) ?? 0;
      ordinals.set(s.task, ordinal + 1);
      const k = s.kubernetes;
      const labels = { container: k?.container ?? s.task, device_uuid: s.uuid, namespace: k?.namespace ?? s.tenant, pod: k?.pod ?? s.task, vdevice_index: String(ordinal), zone: 'vGPU' };
      for (const f of this.hamiSlice) put(f, labels, s);
    }
  }
}
