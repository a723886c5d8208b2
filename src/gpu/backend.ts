import type { Gpu, GpuSystem } from '../domain/index.js';

export type BackendKind = 'nvml' | 'simulated';

/**
 * One machine's GPUs, read through some backend. Every implementation passes the same
 * conformance suite (backend.case.ts).
 */
export interface GpuBackend {
  readonly kind: BackendKind;
  /** One line for people: what is being read, e.g. `NVML 12.580 (driver 580.95.05)` or `simulated fleet 2xH100-80GB`. */
  readonly description: string;
  system(): GpuSystem;
  /** A fresh reading of every GPU, ordered by index. */
  gpus(): Gpu[];
  /** Releases the library or timers behind the backend; later calls throw. */
  close(): void;
}
