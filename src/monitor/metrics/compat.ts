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
import type { GpuSample, MonitorSample, SliceSample } from '../../contract/monitor.js';
import { CLOCK_EVENT_REASONS } from '../../gpu/nvml/codes.js';
import { labelText, writeFamilies, type Family } from './text.js';

/** Name sets /metrics can add (config `metrics.compat`, the daemon's and the node agent's; src/node/config.ts lists the same). */
export const METRICS_COMPAT_SETS = ['dcgm', 'hami'] as const;
export type MetricsCompatSet = (typeof METRICS_COMPAT_SETS)[number];

const MIB = 2 ** 20;
const REASON_BITS = new Map(CLOCK_EVENT_REASONS.map(([bit, name]) => [name, bit]));

const DCGM: readonly Family<GpuSample>[] = [
  ['DCGM_FI_DEV_SM_CLOCK', 'SM clock frequency (in MHz).', 'gauge', (g) => (g.clockSmHz === null ? null : g.clockSmHz / 1e6)],
  ['DCGM_FI_DEV_MEM_CLOCK', 'Memory clock frequency (in MHz).', 'gauge', (g) => (g.clockMemoryHz === null ? null : g.clockMemoryHz / 1e6)],
  ['DCGM_FI_DEV_GPU_TEMP', 'GPU temperature (in C).', 'gauge', (g) => g.temperatureCelsius],
  ['DCGM_FI_DEV_POWER_USAGE', 'Power draw (in W).', 'gauge', (g) => g.powerWatts],
  ['DCGM_FI_DEV_GPU_UTIL', 'GPU utilization (in %).', 'gauge', (g) => percent(g.utilizationGpu)],
  ['DCGM_FI_DEV_MEM_COPY_UTIL', 'Memory utilization (in %).', 'gauge', (g) => percent(g.utilizationMemory)],
  ['DCGM_FI_DEV_XID_ERRORS', 'Value of the last XID error encountered.', 'gauge', (g) => (g.xidErrors === null ? null : (g.lastXid ?? 0))],
  ['DCGM_FI_DEV_FB_FREE', 'Framebuffer memory free (in MiB).', 'gauge', (g) => g.memoryFreeBytes / MIB],
  ['DCGM_FI_DEV_FB_USED', 'Framebuffer memory used (in MiB).', 'gauge', (g) => g.memoryUsedBytes / MIB],
  ['DCGM_FI_DEV_FB_RESERVED', 'Framebuffer memory reserved (in MiB).', 'gauge', (g) => (g.memoryReservedBytes === null ? null : g.memoryReservedBytes / MIB)],
  ['DCGM_FI_DEV_CLOCK_THROTTLE_REASONS', 'Current clock throttle reasons (NVML bitmask).', 'gauge', throttleMask],
  ['DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'Total energy consumption since boot (in mJ).', 'counter', (g) => (g.energyJoules === null ? null : Math.round(g.energyJoules * 1000))],
  ['DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'Total number of PCIe retries.', 'counter', (g) => g.pcieReplays],
  ['DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'Total number of single-bit volatile ECC errors.', 'counter', (g) => g.eccCorrectedErrors],
  ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'Total number of double-bit volatile ECC errors.', 'counter', (g) => g.eccUncorrectedErrors],
];

const HAMI_HOST: readonly Family<GpuSample>[] = [
  ['hami_host_gpu_utilization_ratio', 'GPU core utilization ratio on host (0-100)', 'gauge', (g) => percent(g.utilizationGpu)],
  ['hami_host_gpu_memory_used_bytes', 'GPU real-time device memory usage on host', 'gauge', (g) => g.memoryUsedBytes],
];
const HAMI_SLICE: readonly Family<SliceSample>[] = [
  ['hami_container_device_utilization_ratio', 'Container device SM utilization ratio (0-100)', 'gauge', (s) => percent(s.computeShare)],
  ['hami_container_device_memory_bytes', 'Container device memory usage in bytes', 'gauge', (s) => s.memoryUsedBytes],
  ['hami_vgpu_memory_used_bytes', 'vGPU device memory usage in bytes', 'gauge', (s) => s.memoryUsedBytes],
  ['hami_vgpu_memory_limit_bytes', 'vGPU device memory limit in bytes', 'gauge', (s) => s.memoryLimitBytes],
  ['hami_vgpu_memory_context_bytes', 'Container device memory context size in bytes', 'gauge', (s) => s.memoryByKind.context],
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

/** Every family of the sets asked for, appended to `out`. */
export function writeCompatFamilies(out: string[], sample: MonitorSample, sets: readonly MetricsCompatSet[], openMetrics: boolean): void {
  if (sets.includes('dcgm')) {
    const gpus = sample.gpus.map((g) => [labelText({ gpu: String(g.index), UUID: g.uuid, device: `nvidia${g.index}`, modelName: g.model, Hostname: sample.hostname }), g] as const);
    writeFamilies(out, openMetrics, gpus, DCGM);
  }
  if (!sets.includes('hami')) return;
  const hosts = sample.gpus.map((g) => [labelText({ device_index: String(g.index), device_type: `NVIDIA-${g.model}`, device_uuid: g.uuid, zone: 'vGPU' }), g] as const);
  writeFamilies(out, openMetrics, hosts, HAMI_HOST);
  // A slice's vdevice_index is its ordinal inside its task: slices come in each task's GPU order.
  const ordinals = new Map<string, number>();
  const slices = sample.slices.map((s) => {
    const ordinal = ordinals.get(s.task) ?? 0;
    ordinals.set(s.task, ordinal + 1);
    const k = s.kubernetes;
    return [labelText({ container: k?.container ?? s.task, device_uuid: s.uuid, namespace: k?.namespace ?? s.tenant, pod: k?.pod ?? s.task, vdevice_index: String(ordinal), zone: 'vGPU' }), s] as const;
  });
  writeFamilies(out, openMetrics, slices, HAMI_SLICE);
}

