import type { V1Device, V1ResourceSlice } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { GsError } from '../../domain/errors.js';
import { DRIVER_FACTS, h100 } from '../../../test/k8s/gpus.js';
import { checkTyped } from '../../../test/k8s/typed.js';
import { ATTRIBUTE, CAPACITY, DRIVER_NAME } from './names.js';
import { architectureOf, quantity, semverOf, sysfsPciAddress } from './slices-attributes.js';
import { checkPoolLimits, checkSliceLimits } from './slices-limits.js';
import { buildResourceSlices, layoutConfig, sliceName, type LayoutConfig } from './slices.js';

const MIB = 2 ** 20;
const consumable = layoutConfig({ layout: 'consumable' });
const fixed = layoutConfig({ layout: 'fixed' });

function slices(gpuCount: number, layout: LayoutConfig, generation = 1): V1ResourceSlice[] {
  const gpus = Array.from({ length: gpuCount }, (_, i) => h100(i));
  return buildResourceSlices({ nodeName: 'node-a', inventory: { gpus, driver: DRIVER_FACTS }, layout, generation });
}

function devices(all: V1ResourceSlice[]): V1Device[] {
  return all.flatMap((s) => s.spec.devices ?? []);
}

function errorOf(fn: () => unknown): GsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GsError) return err;
    throw err;
  }
  throw new Error('expected a GsError');
}

describe('device attributes', () => {
  const device = devices(slices(1, consumable))[0]!;
  const attr = (name: string) => device.attributes?.[name];
  it.each([
    [ATTRIBUTE.uuid, { string: h100(0).uuid }],
    [ATTRIBUTE.model, { string: 'NVIDIA H100 80GB HBM3' }],
    [ATTRIBUTE.architecture, { string: 'Hopper' }],
    [ATTRIBUTE.computeCapability, { version: '9.0.0' }],
    [ATTRIBUTE.driverVersion, { version: '580.65.6' }],
    [ATTRIBUTE.cudaDriverVersion, { version: '13.0.0' }],
    [ATTRIBUTE.pciBusId, { string: '0000:19:00.0' }],
    [ATTRIBUTE.numaNode, { _int: 0 }],
    [ATTRIBUTE.migEnabled, { bool: false }],
    [ATTRIBUTE.multiprocessors, { _int: 132 }],
    [ATTRIBUTE.index, { _int: 0 }],
  ])('%s', (name, value) => {
    expect(attr(name)).toEqual(value);
  });

  it('leaves out what the inventory does not know, rather than inventing it', () => {
    const gpu = h100(0, { numaNode: null, pciBusId: null, computeCapability: null, multiprocessorCount: null });
    const [slice] = buildResourceSlices({ nodeName: 'n', inventory: { gpus: [gpu], driver: { driverVersion: null, cudaDriverVersion: null } }, layout: consumable, generation: 0 });
    expect(Object.keys(slice!.spec.devices![0]!.attributes!).sort()).toEqual([ATTRIBUTE.index, ATTRIBUTE.migEnabled, ATTRIBUTE.model, ATTRIBUTE.uuid].sort());
  });

  it('marks a GPU in MIG mode', () => {
    const [slice] = buildResourceSlices({ nodeName: 'n', inventory: { gpus: [h100(0, { migMode: 'enabled' })], driver: DRIVER_FACTS }, layout: consumable, generation: 0 });
    expect(slice!.spec.devices![0]!.attributes![ATTRIBUTE.migEnabled]).toEqual({ bool: true });
  });

  it.each([['9.0', 'Hopper'], ['8.0', 'Ampere'], ['8.6', 'Ampere'], ['8.9', 'Ada Lovelace'], ['7.5', 'Turing'], ['7.0', 'Volta'], ['10.0', 'Blackwell'], ['12.0', 'Blackwell'], ['42.0', null], ['x', null]])(
    'compute capability %s is architecture %s', (cc, arch) => {
      expect(architectureOf(cc)).toBe(arch);
    });

  it.each([['580.65.06', '580.65.6'], ['13.0', '13.0.0'], ['9', '9.0.0'], ['535.104.05', '535.104.5']])('version %s as semver %s', (v, s) => {
    expect(semverOf('v', v)).toBe(s);
  });

  it('refuses a version that is not dotted numbers', () => {
    const err = errorOf(() => semverOf('driverVersion', '580.65-beta'));
    expect(err.code).toBe('GS_ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/driverVersion '580.65-beta'.*one to three dot-separated numbers/);
  });

  it.each([['00000000:19:00.0', '0000:19:00.0'], ['0000:AB:00.1', '0000:ab:00.1']])('PCI %s as %s', (nvml, sysfs) => {
    expect(sysfsPciAddress(nvml)).toBe(sysfs);
  });

  it.each([[0, '0'], [100, '100'], [81559 * MIB, '81559Mi'], [80 * 2 ** 30, '80Gi'], [1024, '1Ki'], [1500, '1500'], [1_500_000, '1500k'], [1023, '1023']])('quantity %d is %s', (n, q) => {
    expect(quantity(n)).toBe(q);
  });
});

describe('consumable layout', () => {
  const all = slices(8, consumable, 3);

  it('is one slice of one pool named after the node, one shared device per GPU', () => {
    expect(all).toHaveLength(1);
    const spec = all[0]!.spec;
    expect(all[0]!.metadata?.name).toBe(sliceName('node-a', 0));
    expect(spec.driver).toBe(DRIVER_NAME);
    expect(spec.nodeName).toBe('node-a');
    expect(spec.pool).toEqual({ name: 'node-a', generation: 3, resourceSliceCount: 1 });
    expect(spec.sharedCounters).toBeUndefined();
    expect(spec.devices!.map((d) => d.name)).toEqual(Array.from({ length: 8 }, (_, i) => `gpu-${i}`));
    expect(spec.devices!.every((d) => d.allowMultipleAllocations === true)).toBe(true);
  });

  it('offers memory in 256 MiB steps up to the whole GPU, and cores in steps of 1', () => {
    const capacity = all[0]!.spec.devices![0]!.capacity!;
    const grantable = Math.floor(81559 / 256) * 256;
    expect(capacity[CAPACITY.memory]).toEqual({
      value: '81559Mi',
      requestPolicy: { _default: `${grantable}Mi`, validRange: { min: '256Mi', step: '256Mi', max: `${grantable}Mi` } },
    });
    expect(capacity[CAPACITY.cores]).toEqual({
      value: '100',
      requestPolicy: { _default: '100', validRange: { min: '1', step: '1', max: '100' } },
    });
  });

  it('takes other steps from configuration', () => {
    const layout = layoutConfig({ layout: 'consumable', memoryStepBytes: 1024 * MIB, coresStep: 5 });
    const capacity = devices(slices(1, layout))[0]!.capacity!;
    expect(capacity[CAPACITY.memory]!.requestPolicy!.validRange).toEqual({ min: '1Gi', step: '1Gi', max: '79Gi' });
    expect(capacity[CAPACITY.cores]!.requestPolicy!.validRange).toEqual({ min: '5', step: '5', max: '100' });
  });

  it('splits more than 128 GPUs into several slices of one pool', () => {
    const many = slices(130, consumable, 7);
    expect(many.map((s) => s.spec.devices!.length)).toEqual([128, 2]);
    expect(many.map((s) => s.spec.pool)).toEqual([0, 1].map(() => ({ name: 'node-a', generation: 7, resourceSliceCount: 2 })));
    expect(many.map((s) => s.metadata?.name)).toEqual([sliceName('node-a', 0), sliceName('node-a', 1)]);
  });

  it('round-trips through client-node\'s typed serializer without loss', () => {
    for (const slice of [...all, ...slices(130, consumable)]) {
      const wire = checkTyped(slice, 'V1ResourceSlice');
      const memory = (wire.spec as { devices: { capacity: Record<string, { requestPolicy: Record<string, unknown> }> }[] }).devices[0]!.capacity[CAPACITY.memory]!;
      expect(memory.requestPolicy.default).toBe(`${Math.floor(81559 / 256) * 256}Mi`);
    }
  });
});

describe('fixed layout', () => {
  const all = slices(8, fixed);

  it('gives each GPU a counter set and the whole, halves, quarters and eighths consuming from it', () => {
    const gpu0 = devices(all).filter((d) => d.consumesCounters![0]!.counterSet === 'gpu-0');
    expect(gpu0.map((d) => d.name)).toEqual([
      'gpu-0', 'gpu-0-part2-0', 'gpu-0-part2-1',
      ...[0, 1, 2, 3].map((j) => `gpu-0-part4-${j}`),
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((j) => `gpu-0-part8-${j}`),
    ]);
    expect(all[0]!.spec.sharedCounters![0]).toEqual({ name: 'gpu-0', counters: { [CAPACITY.memory]: { value: '81559Mi' }, [CAPACITY.cores]: { value: '100' } } });
    const half = gpu0[1]!;
    expect(half.capacity).toEqual({ [CAPACITY.memory]: { value: `${Math.floor(81559 / 2 / 256) * 256}Mi` }, [CAPACITY.cores]: { value: '50' } });
    expect(half.consumesCounters).toEqual([{ counterSet: 'gpu-0', counters: half.capacity }]);
    expect(gpu0[7]!.capacity![CAPACITY.cores]).toEqual({ value: '12' });
    expect(half.allowMultipleAllocations).toBeUndefined();
  });

  it('never offers parts that add up to more than the GPU', () => {
    const bytes = (q: string) => Number(q.replace('Mi', '')) * MIB;
    for (const parts of [2, 4, 8]) {
      const some = devices(all).filter((d) => d.name.startsWith(`gpu-3-part${parts}-`));
      expect(some).toHaveLength(parts);
      const memory = some.reduce((n, d) => n + bytes(d.capacity![CAPACITY.memory]!.value), 0);
      const cores = some.reduce((n, d) => n + Number(d.capacity![CAPACITY.cores]!.value), 0);
      expect(memory).toBeLessThanOrEqual(81559 * MIB);
      expect(cores).toBeLessThanOrEqual(100);
    }
  });

  it('puts the counter sets in a slice of their own, then the devices in slices of at most 64', () => {
    expect(all.map((s) => s.spec.sharedCounters?.map((c) => c.name) ?? null)).toEqual([['gpu-0', 'gpu-1', 'gpu-2', 'gpu-3', 'gpu-4', 'gpu-5', 'gpu-6', 'gpu-7'], null, null]);
    expect(all.map((s) => s.spec.devices?.length ?? 0)).toEqual([0, 60, 60]);
    expect(all.every((s) => s.spec.pool.resourceSliceCount === 3)).toBe(true);
    checkPoolLimits(all);
  });

  it('puts at most 8 counter sets in a slice, and never a GPU\'s devices in two slices', () => {
    const many = slices(20, fixed);
    expect(many.map((s) => s.spec.sharedCounters?.length ?? 0)).toEqual([8, 8, 4, 0, 0, 0, 0, 0]);
    expect(many.map((s) => s.spec.devices?.length ?? 0)).toEqual([0, 0, 0, 60, 60, 60, 60, 60]);
  });

  it('takes other partitions from configuration', () => {
    const layout = layoutConfig({ layout: 'fixed', partitions: [3, 1] });
    const names = devices(slices(1, layout)).map((d) => d.name);
    expect(names).toEqual(['gpu-0', 'gpu-0-part3-0', 'gpu-0-part3-1', 'gpu-0-part3-2']);
    expect(devices(slices(1, layout))[1]!.capacity![CAPACITY.cores]).toEqual({ value: '33' });
  });

  it('round-trips through client-node\'s typed serializer without loss', () => {
    for (const slice of all) checkTyped(slice, 'V1ResourceSlice');
  });

  it('without shared counters, cuts each GPU one way only, into parts that never overlap', () => {
    const layout = layoutConfig({ layout: 'fixed', partitions: [4], sharedCounters: false });
    const some = slices(40, layout);
    expect(some.map((s) => s.spec.devices!.length)).toEqual([128, 32]);
    expect(some.every((s) => s.spec.sharedCounters === undefined)).toBe(true);
    expect(devices(some).every((d) => d.consumesCounters === undefined)).toBe(true);
    expect(devices(some).slice(0, 4).map((d) => d.name)).toEqual([0, 1, 2, 3].map((j) => `gpu-0-part4-${j}`));
  });
});

describe('inventory changes', () => {
  it('leaves an unhealthy GPU out, keeping the other devices\' names', () => {
    const gpus = [h100(0), h100(1, { health: 'lost' }), h100(2)];
    const [slice] = buildResourceSlices({ nodeName: 'n', inventory: { gpus, driver: DRIVER_FACTS }, layout: consumable, generation: 2 });
    expect(slice!.spec.devices!.map((d) => d.name)).toEqual(['gpu-0', 'gpu-2']);
  });

  it('makes no slice for a node without a healthy GPU', () => {
    expect(buildResourceSlices({ nodeName: 'n', inventory: { gpus: [h100(0, { health: 'lost' })], driver: DRIVER_FACTS }, layout: fixed, generation: 0 })).toEqual([]);
  });
});

describe('bad input', () => {
  it.each([
    ['a layout name not known', () => layoutConfig({ layout: 'timeslice' }), /slice layout 'timeslice' is not known: accepted are consumable, fixed/],
    ['a memory step that is not whole MiB', () => layoutConfig({ layout: 'consumable', memoryStepBytes: 1000 * 1000 }), /memory step 1000000 bytes.*whole number of MiB/],
    ['a cores step that does not divide 100', () => layoutConfig({ layout: 'consumable', coresStep: 3 }), /cores step 3 is not accepted: it must divide 100.*1, 2, 4, 5, 10, 20, 25, 50/],
    ['a cores step of the whole GPU', () => layoutConfig({ layout: 'consumable', coresStep: 100 }), /cores step 100/],
    ['zero parts', () => layoutConfig({ layout: 'fixed', partitions: [0, 2] }), /partitions \[0, 2\] are not accepted/],
    ['no partitions', () => layoutConfig({ layout: 'fixed', partitions: [] }), /partitions \[\] are not accepted/],
    ['a count twice', () => layoutConfig({ layout: 'fixed', partitions: [2, 2] }), /name a count twice/],
    ['too many devices per GPU', () => layoutConfig({ layout: 'fixed', partitions: [1, 2, 4, 8, 16, 32, 3] }), /make 66 devices per GPU: the API allows at most 64/],
    ['partitions for the consumable layout', () => layoutConfig({ layout: 'consumable', partitions: [2] }), /partitions and sharedCounters apply to the fixed layout only/],
    ['overlapping partitions without counters', () => layoutConfig({ layout: 'fixed', partitions: [1, 2], sharedCounters: false }), /overlap without shared counters: give one partition count/],
    ['a cores step for the fixed layout', () => layoutConfig({ layout: 'fixed', coresStep: 5 }), /coresStep applies to the consumable layout only/],
  ])('%s', (_what, fn, message) => {
    const err = errorOf(fn);
    expect(err.code).toBe('GS_ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
  });

  it('refuses an inventory with one UUID twice', () => {
    const gpus = [h100(0), h100(1, { uuid: h100(0).uuid })];
    const err = errorOf(() => buildResourceSlices({ nodeName: 'n', inventory: { gpus, driver: DRIVER_FACTS }, layout: consumable, generation: 0 }));
    expect(err.message).toMatch(/lists UUID GPU-006f1c2a.* twice \(GPUs 0 and 1\)/);
  });

  it('refuses an inventory with one index twice', () => {
    const err = errorOf(() => buildResourceSlices({ nodeName: 'n', inventory: { gpus: [h100(0), { ...h100(1), index: 0 }], driver: DRIVER_FACTS }, layout: consumable, generation: 0 }));
    expect(err.message).toMatch(/index 0 twice/);
  });

  it('refuses a node name the API would refuse', () => {
    const err = errorOf(() => buildResourceSlices({ nodeName: 'Node_A', inventory: { gpus: [h100(0)], driver: DRIVER_FACTS }, layout: consumable, generation: 0 }));
    expect(err.message).toMatch(/name 'Node_A-gpu.gpushare.io-0' is not a DNS subdomain/);
  });

  it('refuses a product name longer than an attribute may be', () => {
    const err = errorOf(() => buildResourceSlices({ nodeName: 'n', inventory: { gpus: [h100(0, { name: 'N'.repeat(65) })], driver: DRIVER_FACTS }, layout: consumable, generation: 0 }));
    expect(err.message).toMatch(/longer than the API's 64-character limit/);
  });

  it('refuses a memory step a GPU cannot hold twice', () => {
    const err = errorOf(() => buildResourceSlices({ nodeName: 'n', inventory: { gpus: [h100(0, { memoryTotalBytes: 300 * MIB })], driver: DRIVER_FACTS }, layout: consumable, generation: 0 }));
    expect(err.message).toMatch(/less than two memory steps/);
  });
});

describe('API limits', () => {
  const pool = slices(1, fixed);
  const counterSlice = pool[0]!;
  const base = pool[1]!;
  it.each([
    ['more than 64 devices consuming counters', { ...base.spec, devices: Array.from({ length: 65 }, (_, i) => ({ ...base.spec.devices![0]!, name: `d-${i}` })) }, /65 devices: at most 64 where devices consume counters/],
    ['more than 128 devices', { ...base.spec, devices: Array.from({ length: 129 }, (_, i) => ({ name: `d-${i}` })) }, /129 devices: at most 128/],
    ['a device name that is no DNS label', { ...base.spec, devices: [{ name: 'GPU_0' }] }, /device name 'GPU_0' is not a DNS label/],
    ['devices and counter sets in one slice', { ...base.spec, sharedCounters: counterSlice.spec.sharedCounters }, /both devices and counter sets/],
    ['more than 8 counter sets', { ...counterSlice.spec, sharedCounters: Array.from({ length: 9 }, (_, i) => ({ name: `c-${i}`, counters: { a: { value: '1' } } })) }, /9 counter sets: at most 8/],
    ['more than 32 counters in a set', { ...counterSlice.spec, sharedCounters: [{ name: 'c', counters: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, { value: '1' }])) }] }, /counter set 'c' has 33 counters: at most 32/],
    ['an attribute name too long', { ...base.spec, devices: [{ name: 'd', attributes: { ['x'.repeat(33)]: { bool: true } } }] }, /C identifiers of at most 32/],
  ])('catch %s', (_what, spec, message) => {
    const err = errorOf(() => checkSliceLimits({ ...base, spec: spec as V1ResourceSlice['spec'] }));
    expect(err.message).toMatch(message);
  });

  it('catch a device consuming a counter set the pool does not define', () => {
    expect(errorOf(() => checkPoolLimits([base])).message).toMatch(/consumes from counter set 'gpu-0', which pool 'node-a' does not define/);
  });

  it('catch a device name twice in the pool', () => {
    expect(errorOf(() => checkPoolLimits([counterSlice, base, { ...base, metadata: { name: 'other' } }])).message).toMatch(/lists device 'gpu-0' twice/);
  });
});
