/** The node's GPUs as the kubelet plugin sees them: the list now, and word when it changes. */
import type { Gpu } from '../../domain/gpu.js';

export interface InventorySource {
  current(): readonly Gpu[];
  /** Calls `listener` after each change; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
}

/** An inventory that changes when told (tests, and callers that poll a backend themselves). */
export class StaticInventory implements InventorySource {
  private gpus: readonly Gpu[];
  private readonly listeners = new Set<() => void>();

  constructor(gpus: readonly Gpu[]) {
    this.gpus = gpus;
  }

  current(): readonly Gpu[] {
    return this.gpus;
  }

  /** Replaces the list and tells every subscriber. */
  set(gpus: readonly Gpu[]): void {
    this.gpus = gpus;
    for (const l of [...this.listeners]) l();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * An inventory read from the GPU backend (`read`, e.g. `backend.gpus()`) every `intervalMs`;
 * subscribers hear of a change in what the plugin publishes (which GPUs, their memory, their
 * health), not of every utilization sample. `close()` stops the timer.
 */
export class PollingInventory extends StaticInventory {
  private readonly read: () => readonly Gpu[];
  private timer: NodeJS.Timeout | null = null;

  constructor(read: () => readonly Gpu[], intervalMs: number) {
    super(read());
    this.read = read;
    if (intervalMs > 0) {
      this.timer = setInterval(() => this.poll(), intervalMs);
      this.timer.unref();
    }
  }

  /** Reads once; tells subscribers when what is published changed. A failed read marks nothing (the next one may work). */
  poll(): void {
    let gpus: readonly Gpu[];
    try {
      gpus = this.read();
    } catch {
      return;
    }
    if (publishedKey(gpus) !== publishedKey(this.current())) this.set(gpus);
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

function publishedKey(gpus: readonly Gpu[]): string {
  return gpus.map((g) => `${g.index} ${g.uuid} ${g.memoryTotalBytes} ${g.health}`).join('|');
}
