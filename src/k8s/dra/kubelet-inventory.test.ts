import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../domain/gpu.js';
import { gpu } from '../../../test/k8s/dra-kubelet-fixtures.js';
import { PollingInventory } from './kubelet-inventory.js';

describe('PollingInventory', () => {
  it('tells subscribers when health or the GPU list changes, not when a sample moves', () => {
    let reading: Gpu[] = [gpu(0), gpu(1)];
    const inventory = new PollingInventory(() => reading, 0);
    let heard = 0;
    inventory.subscribe(() => heard++);
    reading = [{ ...gpu(0), utilizationGpu: 0.9, memoryUsedBytes: 123 }, gpu(1)];
    inventory.poll();
    expect(heard).toBe(0);
    reading = [gpu(0), { ...gpu(1), health: 'lost' }];
    inventory.poll();
    expect(heard).toBe(1);
    expect(inventory.current()[1]?.health).toBe('lost');
    reading = [gpu(0)];
    inventory.poll();
    expect(heard).toBe(2);
    inventory.close();
  });

  it('keeps the last reading when a read fails', () => {
    let fail = false;
    const inventory = new PollingInventory(() => {
      if (fail) throw new Error('NVML: GPU is lost');
      return [gpu(0)];
    }, 0);
    fail = true;
    inventory.poll();
    expect(inventory.current()).toHaveLength(1);
    inventory.close();
  });
});
