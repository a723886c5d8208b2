/**
 * The vocabulary for a physical GPU as gpushare sees it. Fields a backend cannot read on a
 * given GPU are `null` (not supported there), never a made-up value.
 */

export type MigMode = 'enabled' | 'disabled' | 'unsupported';

/** How two GPUs reach each other, in nvidia-smi topo's words, best first. */
export type TopologyLevel = 'SELF' | 'NV' | 'PIX' | 'PXB' | 'PHB' | 'NODE' | 'SYS';

/** A MIG instance carved out of a GPU: a GPU instance plus a compute instance. */
export interface MigDevice {
  readonly index: number;
  readonly uuid: string;
  readonly name: string;
  /** e.g. `1g.10gb`, derived from the name where the driver puts it there. */
  readonly profile: string | null;
  readonly gpuInstanceId: number;
  readonly computeInstanceId: number;
  readonly memoryTotalBytes: number;
  readonly memoryUsedBytes: number;
  readonly multiprocessorCount: number | null;
}

/** A process using a GPU, as the driver reports it. */
export interface GpuProcess {
  readonly pid: number;
  /** null where the driver cannot say (e.g. some MIG or WDDM setups). */
  readonly memoryBytes: number | null;
  /** MIG instance ids when the process runs in one; null otherwise. */
  readonly gpuInstanceId: number | null;
  readonly computeInstanceId: number | null;
}

export interface GpuLink {
  /** Index of the other GPU. */
  readonly gpu: number;
  readonly level: TopologyLevel;
  /** Active NVLinks between the two GPUs (0 when they talk over PCIe only). */
  readonly nvlinks: number;
}

export type GpuHealth = 'ok' | 'lost';

export interface Gpu {
  readonly index: number;
  readonly uuid: string;
  readonly name: string;
  /** Short model name used by selectors and the scheduler, e.g. `H100-80GB`. */
  readonly model: string;
  readonly health: GpuHealth;
  readonly memoryTotalBytes: number;
  readonly memoryUsedBytes: number;
  readonly memoryFreeBytes: number;
  /** Memory the driver keeps for itself, where NVML's v2 memory query reports it. */
  readonly memoryReservedBytes: number | null;
  /** Ratios 0-1 over the driver's last sample period. */
  readonly utilizationGpu: number | null;
  readonly utilizationMemory: number | null;
  readonly temperatureC: number | null;
  readonly powerDrawWatts: number | null;
  readonly powerLimitWatts: number | null;
  readonly clockSmMHz: number | null;
  readonly clockMemoryMHz: number | null;
  readonly maxClockSmMHz: number | null;
  readonly maxClockMemoryMHz: number | null;
  /** `00000000:19:00.0`, the form nvidia-smi prints. */
  readonly pciBusId: string | null;
  readonly numaNode: number | null;
  /** `9.0` for Hopper. */
  readonly computeCapability: string | null;
  readonly multiprocessorCount: number | null;
  readonly migMode: MigMode;
  readonly migDevices: readonly MigDevice[];
  readonly processes: readonly GpuProcess[];
  /** Volatile ECC error counts since the driver loaded; null where ECC is off or unsupported. */
  readonly eccErrors: { readonly corrected: number; readonly uncorrected: number } | null;
  /** Why clocks are held down right now (e.g. `sw_power_cap`, `hw_thermal_slowdown`); `[]` when nothing is. */
  readonly clockEventReasons: readonly string[] | null;
  /** Energy used since the driver loaded, in joules (NVML total energy consumption). */
  readonly energyJoules: number | null;
  /** PCIe replays since the driver loaded (link errors the bus retried). */
  readonly pcieReplays: number | null;
  /** Critical XID errors the backend has seen since it opened, and the last one's code (null: none yet, or not watched). */
  readonly xidErrors: number | null;
  readonly lastXid: number | null;
  readonly topology: readonly GpuLink[];
}

/** Driver-wide facts that sit beside the GPU list. */
export interface GpuSystem {
  readonly backend: 'nvml' | 'simulated';
  readonly driverVersion: string | null;
  /** CUDA driver API version as `13.0`. */
  readonly cudaDriverVersion: string | null;
  readonly nvmlVersion: string | null;
}

/** Board memory sizes as marketed, in GB; drivers report a little less (an H100 80GB shows 79.6 GiB). */
const MARKETED_MEMORY_GB = [4, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 64, 80, 94, 96, 141, 180, 192, 288];

/**
 * A short, stable model name from a marketing name and memory size, so selectors read like
 * `H100-80GB` whatever the driver calls the board (`NVIDIA H100 80GB HBM3`, `Tesla T4`).
 */
export function modelName(name: string, memoryTotalBytes: number): string {
  const words = name.replace(/^(NVIDIA|Tesla|Quadro|GeForce)\s+/i, '').trim().split(/\s+/);
  const family = (words[0] ?? name).replace(/-(SXM|PCIE)\d*.*$/i, '');
  const named = /^(\d+)GB$/i.exec(words.find((w) => /^\d+GB$/i.test(w)) ?? '');
  if (named) return `${family}-${named[1]}GB`;
  if (memoryTotalBytes <= 0) return family;
  const gib = memoryTotalBytes / 2 ** 30;
  const gb = MARKETED_MEMORY_GB.reduce((best, size) => (Math.abs(size - gib) < Math.abs(best - gib) ? size : best));
  return `${family}-${gb}GB`;
}
