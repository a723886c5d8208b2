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
