import { describe, expect, it } from 'vitest';
import { describeIssues, type Result } from '../../domain/result.js';
import { claimJson, GIB, gpu, validConfig, type ClaimFixture } from '../../../test/k8s/dra-kubelet-fixtures.js';
import { decidePrepare, deviceCatalog, usageOnGpu, type PreparedClaim } from './prepare.js';
import { decodeClaim, parseK8sQuantity } from './prepare-claim.js';
import { layoutConfig } from './slices.js';

const gpus = [gpu(0), gpu(1)];
const consumable = deviceCatalog('node-a', gpus, layoutConfig({ layout: 'consumable' }));
const fixed = deviceCatalog('node-a', gpus, layoutConfig({ layout: 'fixed' }));

function decide(f: ClaimFixture, catalog = consumable, prepared: PreparedClaim[] = []): Result<PreparedClaim> {
  const claim = decodeClaim(claimJson(f));
  if (!claim.ok) throw new Error(describeIssues(claim.issues));
  return decidePrepare({ namespace: f.namespace ?? 'ml', name: f.name ?? 'train-gpu', uid: f.uid }, claim.value, catalog, prepared);
}

function decided(f: ClaimFixture, catalog = consumable, prepared: PreparedClaim[] = []): PreparedClaim {
  const r = decide(f, catalog, prepared);
  if (!r.ok) throw new Error(describeIssues(r.issues));
  return r.value;
}

function refusal(f: ClaimFixture, catalog = consumable, prepared: PreparedClaim[] = []): string {
  const r = decide(f, catalog, prepared);
  if (r.ok) throw new Error('expected a refusal');
  return describeIssues(r.issues);
}

describe('parseK8sQuantity', () => {
  it.each([['8Gi', 8 * GIB], ['80G', 80e9], ['8589934592', 8589934592], ['1500m', 1.5], ['1e3', 1000], ['30', 30], [42, 42], ['0.5Ki', 512]] as const)('%s is %d', (q, n) => {
    expect(parseK8sQuantity(q, 'x')).toEqual({ ok: true, value: n });
  });
  it.each(['8GiB', 'lots', '', '8 Gi'])('refuses %j', (q) => {
    expect(parseK8sQuantity(q, 'x').ok).toBe(false);
  });
});

describe('decidePrepare, consumable layout', () => {
  it('takes memory and cores from the allocation\'s consumed capacity, the GPU by the device name', () => {
    const c = decided({ uid: 'u1', results: [{ device: 'gpu-1', shareID: 's-1', consumedCapacity: { memory: '12Gi', cores: '25' } }], parameters: validConfig });
    expect(c).toEqual({
      uid: 'u1', namespace: 'ml', name: 'train-gpu',
      devices: [{ request: 'gpu', pool: 'node-a', device: 'gpu-1', shareId: 's-1', gpuUuid: gpus[1]?.uuid, gpuIndex: 1, gpuMemoryBytes: 80 * GIB, deviceNode: '/dev/nvidia1', memoryBytes: 12 * GIB, cores: 25 }],
      config: { isolation: 'time-slice', priority: 900, computePolicy: 'share' },
      smRanges: [],
    });
  });

  it('gives the whole device when the allocation consumed nothing', () => {
    const c = decided({ uid: 'u1', results: [{ device: 'gpu-0' }] });
    expect(c.devices[0]).toMatchObject({ memoryBytes: 80 * GIB, cores: 100, shareId: null });
  });

  it('ignores other drivers\' results and configs', () => {
    const c = decided({ uid: 'u1', results: [{ device: 'gpu-0', consumedCapacity: { memory: '1Gi' } }, { driver: 'gpu.nvidia.com', pool: 'node-a', device: 'gpu-0' }] });
    expect(c.devices).toHaveLength(1);
  });

  it('merges the class config, then the claim\'s', () => {
    const c = decided({ uid: 'u1', classParameters: { ...validConfig, isolation: 'sm-partition', priority: 'low' }, parameters: { apiVersion: validConfig.apiVersion, kind: validConfig.kind, priority: 'high' } });
    expect(c.config).toEqual({ isolation: 'sm-partition', priority: 900, computePolicy: 'share' });
  });
});

describe('decidePrepare, fixed layout', () => {
  it('takes the partition device\'s own capacity, as published', () => {
    const c = decided({ uid: 'u1', results: [{ device: 'gpu-1-part4-2' }] }, fixed);
    expect(c.devices[0]).toMatchObject({ device: 'gpu-1-part4-2', gpuIndex: 1, memoryBytes: 20 * GIB, cores: 25 });
    expect(decided({ uid: 'u2', results: [{ device: 'gpu-0-part8-7' }] }, fixed).devices[0]).toMatchObject({ gpuIndex: 0, memoryBytes: 10 * GIB, cores: 12 });
    expect(decided({ uid: 'u3', results: [{ device: 'gpu-0' }] }, fixed).devices[0]).toMatchObject({ gpuIndex: 0, memoryBytes: 80 * GIB, cores: 100 });
  });
  it('refuses a partition another claim holds', () => {
    const holder = decided({ uid: 'u1', name: 'a', results: [{ device: 'gpu-0-part2-0' }] }, fixed);
    expect(refusal({ uid: 'u2', results: [{ device: 'gpu-0-part2-0' }] }, fixed, [holder])).toMatch(/device node-a\/gpu-0-part2-0: is already prepared for ResourceClaim ml\/a \(uid u1\)/);
  });
  it('refuses a partition that overlaps a prepared one (the whole GPU beside its half), by the GPU\'s ledger', () => {
    const whole = decided({ uid: 'u1', name: 'a', results: [{ device: 'gpu-0' }] }, fixed);
    expect(refusal({ uid: 'u2', results: [{ device: 'gpu-0-part2-1' }] }, fixed, [whole])).toMatch(/gpu 0 \(GPU-0[^)]*\): cannot hold 40 GiB more: 80 GiB of its 80 GiB are prepared/);
  });
  it('refuses a name of another layout, listing the devices it has', () => {
    expect(refusal({ uid: 'u1', results: [{ device: 'gpu-0-slice-0' }] }, fixed)).toMatch(/device node-a\/gpu-0-slice-0: is not a device of this node; its devices are gpu-0, gpu-0-part2-0, gpu-0-part2-1, gpu-0-part4-0,/);
  });
});

describe('decidePrepare refuses bad input, saying what is wrong and what is accepted', () => {
  it.each<[string, ClaimFixture, RegExp]>([
    ['a claim not allocated', { uid: 'u1', results: null }, /is not allocated/],
    ['a claim with no device of ours', { uid: 'u1', results: [{ driver: 'gpu.nvidia.com', device: 'gpu-0' }] }, /no device allocated by driver gpu\.gpushare\.io \(its devices: gpu\.nvidia\.com\/node-a\/gpu-0\)/],
    ['a device of another pool', { uid: 'u1', results: [{ pool: 'node-b', device: 'gpu-0' }] }, /device node-b\/gpu-0: is in pool "node-b"; this node's pool is "node-a"/],
    ['an unknown device', { uid: 'u1', results: [{ device: 'gpu-7' }] }, /device node-a\/gpu-7: is not a device of this node; its devices are gpu-0, gpu-1/],
    ['an unknown mode in the config', { uid: 'u1', parameters: { ...validConfig, isolation: 'mps' } }, /ResourceClaim ml\/train-gpu: isolation must be one of time-slice, sm-partition \(got "mps"\)/],
    ['gpumem over the GPU', { uid: 'u1', results: [{ device: 'gpu-0', consumedCapacity: { memory: '96Gi' } }] }, /device node-a\/gpu-0 memory: asks for 96 GiB; the device has 80 GiB/],
    ['an unknown capacity', { uid: 'u1', results: [{ device: 'gpu-0', consumedCapacity: { bandwidth: '10' } }] }, /consumedCapacity\.bandwidth: is not a capacity of driver gpu\.gpushare\.io; its capacities are memory, cores/],
    ['cores over 100', { uid: 'u1', results: [{ device: 'gpu-0', consumedCapacity: { cores: '150' } }] }, /consumedCapacity\.cores: is 150; expected a whole number from 0 to 100/],
    ['a malformed quantity', { uid: 'u1', results: [{ device: 'gpu-0', consumedCapacity: { memory: 'eight' } }] }, /"eight" is not a Kubernetes quantity/],
  ])('%s', (_name, f, message) => {
    expect(refusal(f)).toMatch(message);
  });

  it('a claim whose uid is not the one the kubelet names', () => {
    const claim = decodeClaim(claimJson({ uid: 'new' }));
    if (!claim.ok) throw new Error('fixture');
    const r = decidePrepare({ namespace: 'ml', name: 'train-gpu', uid: 'old' }, claim.value, consumable, []);
    expect(r.ok || describeIssues(r.issues)).toMatch(/has uid new, not old: the claim the kubelet means was deleted/);
  });

  it('a claim that is not a ResourceClaim', () => {
    const r = decodeClaim({ metadata: { name: 'x' } });
    expect(r.ok || describeIssues(r.issues)).toMatch(/claim\.metadata\.namespace: is not what a resource\.k8s\.io\/v1 ResourceClaim has there/);
  });
});

describe('decidePrepare, isolation sm-partition', () => {
  const sm = { ...validConfig, isolation: 'sm-partition' };
  const claimOf = (uid: string, cores: string, device = 'gpu-0'): ClaimFixture => ({ uid, name: uid, results: [{ device, consumedCapacity: { memory: '1Gi', cores } }], parameters: sm });

  it('places partitions side by side, first fit, never sharing an SM', () => {
    const a = decided(claimOf('a', '30'));
    const b = decided(claimOf('b', '30'), consumable, [a]);
    expect(a.smRanges).toEqual([{ gpuUuid: gpus[0]?.uuid, offset: 0, count: 40 }]);
    expect(b.smRanges).toEqual([{ gpuUuid: gpus[0]?.uuid, offset: 40, count: 40 }]);
    // Another GPU's partitions are its own.
    expect(decided(claimOf('c', '30', 'gpu-1'), consumable, [a, b]).smRanges[0]?.offset).toBe(0);
  });

  it('has no partition for a whole GPU\'s compute, and none for time-slice', () => {
    expect(decided(claimOf('a', '100')).smRanges).toEqual([]);
    expect(decided({ uid: 'x' }).smRanges).toEqual([]);
  });

  it('refuses a share without compute, and a partition that does not fit in a row', () => {
    expect(refusal(claimOf('z', '0'))).toMatch(/isolation sm-partition needs a compute share \(cores 1-99\)/);
    const a = decided(claimOf('a', '48'));
    const b = decided(claimOf('b', '48'), consumable, [a]);
    // 4% left in cores, but the 128 groupable SMs are all taken (2 x 64): no group of 8 is free.
    expect(refusal(claimOf('c', '3'), consumable, [a, b])).toMatch(/has no room for a partition of 8 SMs \(3%\): 0 SMs are free, the largest free run is 0/);
  });

  it('refuses a GPU that cannot be partitioned, saying why', () => {
    const old = deviceCatalog('node-a', [gpu(0, { name: 'Tesla V100-SXM2-32GB', computeCapability: '7.0' })], layoutConfig({ layout: 'consumable' }));
    expect(refusal(claimOf('a', '30'), old)).toMatch(/sm-partition needs compute capability 9\.0 \(Hopper\) or newer; Tesla V100-SXM2-32GB is 7\.0/);
  });
});

describe('the ledger: what prepared claims hold per GPU', () => {
  const first = decided({ uid: 'u1', name: 'a', results: [{ device: 'gpu-0', consumedCapacity: { memory: '60Gi', cores: '70' } }] });

  it('refuses memory beyond what the GPU has left, saying how much is free', () => {
    expect(refusal({ uid: 'u2', results: [{ device: 'gpu-0', consumedCapacity: { memory: '24Gi', cores: '10' } }] }, consumable, [first]))
      .toMatch(/gpu 0 \(GPU-0[^)]*\): cannot hold 24 GiB more: 60 GiB of its 80 GiB are prepared for other claims \(20 GiB free\)/);
  });
  it('refuses compute beyond 100% of the GPU', () => {
    expect(refusal({ uid: 'u2', results: [{ device: 'gpu-0', consumedCapacity: { memory: '1Gi', cores: '40' } }] }, consumable, [first]))
      .toMatch(/cannot give 40% more compute: 70% is prepared for other claims \(30% free\)/);
  });
  it('accepts what fits, and another GPU is not affected', () => {
    expect(decide({ uid: 'u2', results: [{ device: 'gpu-0', consumedCapacity: { memory: '20Gi', cores: '30' } }] }, consumable, [first]).ok).toBe(true);
    expect(decide({ uid: 'u2', results: [{ device: 'gpu-1', consumedCapacity: { memory: '80Gi' } }] }, consumable, [first]).ok).toBe(true);
  });
  it('does not count the claim against itself (a prepare again after a restart)', () => {
    expect(decide({ uid: 'u1', name: 'a', results: [{ device: 'gpu-0', consumedCapacity: { memory: '60Gi', cores: '70' } }] }, consumable, [first]).ok).toBe(true);
  });
  it('sums per GPU', () => {
    expect(usageOnGpu([first], gpus[0]?.uuid ?? '')).toEqual({ memory: 60 * GIB, cores: 70 });
    expect(usageOnGpu([first], gpus[1]?.uuid ?? '')).toEqual({ memory: 0, cores: 0 });
  });
});
