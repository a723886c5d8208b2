/** GPUs as the daemon reports them: the inventory, plus the slices placed on each. Part of the API contract. */
import type { Gpu } from '../domain/index.js';

/** A GPU with what the daemon has placed on it. */
export interface GpuWithSlices extends Gpu {
  readonly slices: GpuSlice[];
  readonly allocatedMemoryBytes: number;
  readonly allocatedComputeMilli: number;
  /** An admin's cordon (`gpushare gpu cordon`): no new placements here; running work stays. */
  readonly cordoned: boolean;
  readonly cordon: GpuCordon | null;
  /** An XID or uncorrectable ECC fault seen here and not yet recovered or cleared: no new placements either. */
  readonly fault: GpuFaultInfo | null;
}

/** Who cordoned a GPU, when (UTC epoch ms) and why. */
export interface GpuCordon {
  readonly by: string;
  readonly at: number;
  readonly note: string | null;
}

/** A fault seen on a GPU: an XID (code: its number) or uncorrectable ECC errors (code: the count), when (UTC epoch ms). */
export interface GpuFaultInfo {
  readonly kind: 'xid' | 'ecc';
  readonly code: number | null;
  readonly at: number;
}

/** One running task's slice of a GPU: what it reserved, and what libgpushare says it uses. */
export interface GpuSlice {
  /** null (with tenant) for another tenant's task, when a user token asks. */
  readonly taskId: string | null;
  readonly tenant: string | null;
  readonly priority: number;
  readonly memoryBytes: number;
  readonly computeMilli: number;
  /** From the task's region, sampled about once a second; null before its first CUDA call. */
  readonly usedMemoryBytes: number | null;
  /** Achieved share of the GPU's compute, 0..1; null as above. */
  readonly computeShare: number | null;
  /** Isolation sm-partition: its SMs on this GPU (GPUSHARE_SM_OFFSET and the count); null otherwise. */
  readonly smRange: { readonly offset: number; readonly count: number } | null;
}
