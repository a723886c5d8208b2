import { describe, expect, it } from 'vitest';
import { openBackend } from '../gpu/open.js';
import { GpuInventory } from './inventory.js';

describe('GpuInventory', () => {
  it('reads the backend at most once per max age, the same objects meanwhile, and a new read after it', () => {
    const { backend } = openBackend({ backend: 'simulated', simulate: '2xH100-80GB' });
    let reads = 0;
    const counted = { gpus: () => (reads++, backend.gpus()) };
    let now = 1000;
    const inventory = new GpuInventory(counted, undefined, 250, () => now);
    const node = inventory.node();
    const gpus = inventory.gpus();
    const feasible = inventory.feasible();
    feasible.add('x');
    now += 249;
    expect(inventory.node()).toBe(node);
    expect(inventory.gpus()).toBe(gpus);
    expect(inventory.feasible().has('x')).toBe(true);
    expect(reads).toBe(1);
    now += 1;
    expect(inventory.node()).not.toBe(node);
    expect(inventory.node().gpus.map((g) => g.uuid)).toEqual(gpus.map((g) => g.uuid));
    // What admission learnt of the old read is not carried to the new one.
    expect(inventory.feasible().has('x')).toBe(false);
    expect(reads).toBe(2);
    backend.close();
  });
});
