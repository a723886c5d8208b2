/**
 * The machine's GPUs as the daemon decides with them: read from the backend at most every
 * `maxAgeMs`, and this machine as the scheduler sees it (placement.ts localNode) built once per
 * read. A burst of submissions and the queue passes between them ask once, not once each (a
 * real backend's read is many NVML calls per GPU; the simulated one's was 2% of the daemon's
 * time at 500 starts a second). A GPU's health is at most that much behind; a cordon or a fault
 * (gpu-health.ts) is seen at once: the node is rebuilt, from the same read, when the book changes.
 */
import type { Gpu, SmGroups } from '../domain/index.js';
import type { NodeSpec } from '../scheduler/index.js';
import { holdOf, readingOf, type GpuHealthState, type GpuReading } from './gpu-health.js';
import { localNode } from './placement.js';

/** How old the daemon's view of the GPUs may be. */
export const INVENTORY_MAX_AGE_MS = 250;

export interface GpuSource {
  gpus(): Gpu[] | readonly Gpu[];
}

/** What the inventory needs of the GPU health book (GpuHealthBook). */
export interface GpuHealthView {
  version(): number;
  state(uuid: string): GpuHealthState;
  /** Hears every backend read, so faults recover (a reset, ECC back to 0) without another reader. */
  observe(readings: readonly GpuReading[]): void;
}

interface Read {
  readonly at: number;
  readonly gpus: readonly Gpu[];
  /** The machine as its GPUs are, holds left out (admission: what it could ever run). */
  readonly machine: NodeSpec;
  readonly feasible: Set<string>;
  /** The machine with the book's holds, as of `version`. */
  node: NodeSpec;
  version: number;
}

export class GpuInventory {
  private read: Read | null = null;

  constructor(
    private readonly backend: GpuSource,
    private readonly smGroups: ReadonlyMap<string, SmGroups> | undefined,
    private readonly maxAgeMs = INVENTORY_MAX_AGE_MS,
    private readonly clock: () => number = () => performance.now(),
    private readonly health: GpuHealthView | null = null,
    /** Memory overcommit: the ratio of the GPU at an index (1: none). */
    private readonly ratioOf: (index: number) => number = () => 1,
  ) {}

  /** The GPUs as last read (the same array until the next read). */
  gpus(): readonly Gpu[] {
    return this.current().gpus;
  }

  /** This machine as the scheduler places on it now: cordoned and faulted GPUs held (the same object until the next read or change). */
  node(): NodeSpec {
    const read = this.current();
    const version = this.health?.version() ?? 0;
    if (read.version !== version) {
      read.node = this.heldNode(read.gpus, read.machine);
      read.version = version;
    }
    return read.node;
  }

  /**
   * This machine as its GPUs are, cordons and faults left out: what admission asks "could it
   * ever run here" of (a hold is lifted some day; a task that fits only a held GPU waits).
   */
  machine(): NodeSpec {
    return this.current().machine;
  }

  /**
   * Request shapes admission found able to run on this machine alone (admission.ts), valid
   * while this read is: what the machine can ever hold changes only with its GPUs.
   */
  feasible(): Set<string> {
    return this.current().feasible;
  }

  private current(): Read {
    const now = this.clock();
    if (this.read === null || now - this.read.at >= this.maxAgeMs) {
      const gpus = this.backend.gpus();
      this.health?.observe(gpus.map(readingOf));
      const machine = localNode(gpus, this.smGroups, undefined, this.ratioOf);
      this.read = { at: now, gpus, machine, feasible: new Set(), node: this.heldNode(gpus, machine), version: this.health?.version() ?? 0 };
    }
    return this.read;
  }

  /** The machine with the book's holds; the machine itself when nothing is held. */
  private heldNode(gpus: readonly Gpu[], machine: NodeSpec): NodeSpec {
    const health = this.health;
    if (health === null || gpus.every((g) => holdOf(health.state(g.uuid)) === null)) return machine;
    return localNode(gpus, this.smGroups, (uuid) => holdOf(health.state(uuid)), this.ratioOf);
  }
}
