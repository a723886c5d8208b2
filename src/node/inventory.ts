/**
 * The machine's GPUs as the daemon decides with them: read from the backend at most every
 * `maxAgeMs`, and this machine as the scheduler sees it (placement.ts localNode) built once per
 * read. A burst of submissions and the queue passes between them ask once, not once each (a
 * real backend's read is many NVML calls per GPU; the simulated one's was 2% of the daemon's
 * time at 500 starts a second). A GPU's health is at most that much behind.
 */
import type { Gpu, SmGroups } from '../domain/index.js';
import type { NodeSpec } from '../scheduler/index.js';
import { localNode } from './placement.js';

/** How old the daemon's view of the GPUs may be. */
export const INVENTORY_MAX_AGE_MS = 250;

export interface GpuSource {
  gpus(): Gpu[] | readonly Gpu[];
}

export class GpuInventory {
  private read: { readonly at: number; readonly gpus: readonly Gpu[]; readonly node: NodeSpec; readonly feasible: Set<string> } | null = null;

  constructor(
    private readonly backend: GpuSource,
    private readonly smGroups: ReadonlyMap<string, SmGroups> | undefined,
    private readonly maxAgeMs = INVENTORY_MAX_AGE_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** The GPUs as last read (the same array until the next read). */
  gpus(): readonly Gpu[] {
    return this.current().gpus;
  }

  /** This machine as the scheduler sees it (the same object until the next read). */
  node(): NodeSpec {
    return this.current().node;
  }

  /**
   * Request shapes admission found able to run on this machine alone (admission.ts), valid
   * while this read is: what the machine can ever hold changes only with its GPUs.
   */
  feasible(): Set<string> {
    return this.current().feasible;
  }

  private current(): { readonly gpus: readonly Gpu[]; readonly node: NodeSpec; readonly feasible: Set<string> } {
    const now = this.clock();
    if (this.read === null || now - this.read.at >= this.maxAgeMs) {
      const gpus = this.backend.gpus();
      this.read = { at: now, gpus, node: localNode(gpus, this.smGroups), feasible: new Set() };
    }
    return this.read;
  }
}
