/**
 * The publisher and the kubelet plugin agree on the node's devices: for an inventory in each
 * layout, the ResourceSlices built for it (read back from their wire JSON, as the API server and
 * the scheduler see them) name exactly the devices the kubelet plugin's catalog has, with the
 * same memory bytes and cores.
 */
import type { V1ResourceSlice } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DRIVER_FACTS, h100 } from '../../../test/k8s/gpus.js';
import { checkTyped } from '../../../test/k8s/typed.js';
import type { Gpu } from '../../domain/gpu.js';
import { describeIssues } from '../../domain/result.js';
import { CAPACITY } from './names.js';
import { deviceCatalog } from './prepare.js';
import { parseK8sQuantity } from './prepare-claim.js';
import { buildResourceSlices, layoutConfig, type LayoutConfig } from './slices.js';

const MIB = 2 ** 20;

/** Three GPUs of different sizes (none a whole number of memory steps), listed out of index order. */
const inventory: Gpu[] = [h100(2, { memoryTotalBytes: 40537 * MIB }), h100(0), h100(1, { memoryTotalBytes: 95830 * MIB })];

interface Capacities {
  readonly memoryBytes: number;
  readonly cores: number;
}

function amount(value: string | number | undefined, what: string): number {
  if (value === undefined) throw new Error(`${what} is missing`);
  const q = parseK8sQuantity(value, what);
  if (!q.ok) throw new Error(describeIssues(q.issues));
  return q.value;
}

/** Every published device's capacities, from the slices' wire JSON (client-node's serializer). */
function publishedCapacities(slices: readonly V1ResourceSlice[]): Map<string, Capacities> {
  const out = new Map<string, Capacities>();
  for (const slice of slices) {
    const wire = checkTyped(slice, 'V1ResourceSlice') as { spec: { devices?: { name: string; capacity?: Record<string, { value: string }> }[] } };
    for (const d of wire.spec.devices ?? []) {
      expect(out.has(d.name), `${d.name} published twice`).toBe(false);
      out.set(d.name, { memoryBytes: amount(d.capacity?.[CAPACITY.memory]?.value, `${d.name} memory`), cores: amount(d.capacity?.[CAPACITY.cores]?.value, `${d.name} cores`) });
    }
  }
  return out;
}

const layouts: [string, LayoutConfig][] = [
  ['consumable, default steps', layoutConfig({ layout: 'consumable' })],
  ['consumable, 1 GiB and 5-core steps', layoutConfig({ layout: 'consumable', memoryStepBytes: 1024 * MIB, coresStep: 5 })],
  ['fixed, default partitions (1, 2, 4, 8) with counters', layoutConfig({ layout: 'fixed' })],
  ['fixed, partitions 3 and 1, 1 GiB steps', layoutConfig({ layout: 'fixed', partitions: [3, 1], memoryStepBytes: 1024 * MIB })],
  ['fixed, quarters without counters', layoutConfig({ layout: 'fixed', partitions: [4], sharedCounters: false })],
];

describe('the kubelet plugin\'s catalog is the published pool', () => {
  it.each(layouts)('%s: the same device names with the same memory and cores', (_name, layout) => {
    const slices = buildResourceSlices({ nodeName: 'node-a', inventory: { gpus: inventory, driver: DRIVER_FACTS }, layout, generation: 1 });
    const published = publishedCapacities(slices);
    const catalog = deviceCatalog('node-a', inventory, layout);
    expect([...catalog.names()].sort()).toEqual([...published.keys()].sort());
    for (const name of catalog.names()) {
      const d = catalog.get(name);
      expect({ name, memoryBytes: d?.memoryBytes, cores: d?.cores }).toEqual({ name, ...published.get(name) });
      // The device's attributes name its GPU: the catalog maps the name to that GPU.
      const uuid = slices.flatMap((s) => s.spec.devices ?? []).find((p) => p.name === name)?.attributes?.['uuid']?.string;
      expect(d?.gpu.uuid).toBe(uuid);
    }
  });

  it('keeps an unhealthy GPU\'s devices (claims allocated before it failed are still answered for), as published while it was healthy', () => {
    const layout = layoutConfig({ layout: 'fixed' });
    const healthy = deviceCatalog('node-a', inventory, layout);
    const failed = deviceCatalog('node-a', inventory.map((g) => (g.index === 1 ? { ...g, health: 'lost' as const } : g)), layout);
    expect(failed.names()).toEqual(healthy.names());
    expect(failed.get('gpu-1-part4-2')).toMatchObject({ memoryBytes: healthy.get('gpu-1-part4-2')?.memoryBytes, cores: 25 });
    const published = publishedCapacities(buildResourceSlices({ nodeName: 'node-a', inventory: { gpus: inventory.filter((g) => g.index !== 1), driver: DRIVER_FACTS }, layout, generation: 2 }));
    expect([...published.keys()].some((n) => n.startsWith('gpu-1'))).toBe(false);
  });

  it('refuses a layout the inventory cannot be published in, as the publisher does', () => {
    const layout = layoutConfig({ layout: 'fixed', partitions: [32], memoryStepBytes: 1024 * MIB });
    const small = [h100(0, { memoryTotalBytes: 24 * 1024 * MIB })];
    expect(() => buildResourceSlices({ nodeName: 'node-a', inventory: { gpus: small, driver: DRIVER_FACTS }, layout, generation: 1 })).toThrow(/cut in 32 leaves less than one memory step/);
    expect(() => deviceCatalog('node-a', small, layout)).toThrow(/cut in 32 leaves less than one memory step/);
  });
});
