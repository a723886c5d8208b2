import { describe, expect, it } from 'vitest';
import type { Gpu } from './gpu.js';
import { modelName } from './gpu.js';
import { checkRequestAgainstGpus, matchesSelectors, parseSliceRequest, PRIORITY_LEVELS, type SliceRequestInput } from './request.js';

function gpu(index: number, over: Partial<Gpu> = {}): Gpu {
  return {
    index, uuid: `GPU-${index}`, name: 'NVIDIA H100 80GB HBM3', model: 'H100-80GB', health: 'ok',
    memoryTotalBytes: 81559 * 2 ** 20, memoryUsedBytes: 0, memoryFreeBytes: 81559 * 2 ** 20, memoryReservedBytes: null,
    utilizationGpu: 0, utilizationMemory: 0, temperatureC: 30, powerDrawWatts: 70, powerLimitWatts: 700,
    clockSmMHz: 1980, clockMemoryMHz: 2619, maxClockSmMHz: 1980, maxClockMemoryMHz: 2619, pciBusId: null,
    numaNode: 0, computeCapability: '9.0', multiprocessorCount: 132, migMode: 'disabled', migDevices: [],
    processes: [], eccErrors: null, clockEventReasons: [], energyJoules: null, pcieReplays: null, xidErrors: null, lastXid: null, topology: [],
    ...over,
  };
}

describe('parseSliceRequest', () => {
  it('fills defaults: one GPU, no limits, normal priority, time-slice', () => {
    expect(parseSliceRequest({})).toEqual({
      ok: true,
      value: {
        gpus: 1, memory: null, compute: null, priority: PRIORITY_LEVELS.normal, isolation: 'time-slice', migProfile: null,
        models: { include: [], exclude: [] }, uuids: { include: [], exclude: [] }, numaNode: null,
      },
    });
  });

  it('parses a full request', () => {
    const r = parseSliceRequest({ gpus: '2', memory: '8Gi', compute: '30%', priority: 'high', models: { include: ['H100'] }, numaNode: '1' });
    expect(r.ok && r.value).toMatchObject({ gpus: 2, memory: { kind: 'bytes', bytes: 8 * 2 ** 30 }, compute: 0.3, priority: 900, numaNode: 1 });
  });

  it('takes a compute accounting for a time-slice limit (absent: none stored, the library defaults to throughput)', () => {
    const r = parseSliceRequest({ compute: '30', computeAccounting: ' Time ' });
    expect(r.ok && r.value.computeAccounting).toBe('time');
    const g = parseSliceRequest({ compute: '30', computeAccounting: 'GPU' });
    expect(g.ok && g.value.computeAccounting).toBe('gpu');
    const d = parseSliceRequest({ compute: '30' });
    expect(d.ok && 'computeAccounting' in d.value).toBe(false);
  });

  it('implies isolation mig from a MIG profile', () => {
    const r = parseSliceRequest({ migProfile: '1G.10GB' });
    expect(r.ok && r.value).toMatchObject({ isolation: 'mig', migProfile: '1g.10gb' });
  });

  const rejected: Array<[string, SliceRequestInput, string, string, RegExp]> = [
    ['negative GPU count', { gpus: -1 }, 'gpus', 'negative', /negative/],
    ['fractional GPU count', { gpus: 1.5 }, 'gpus', 'notInteger', /whole number/],
    ['absurd GPU count', { gpus: 1000 }, 'gpus', 'outOfRange', /more than 64/],
    ['zero GPUs with memory', { gpus: 0, memory: '8Gi' }, 'memory', 'conflict', /gpus is 0/],
    ['zero GPUs with compute', { gpus: 0, compute: 20 }, 'compute', 'conflict', /gpus is 0/],
    ['compute over 100%', { compute: '150%' }, 'compute', 'outOfRange', /over 100%/],
    ['memory over 100%', { memory: '120%' }, 'memory', 'outOfRange', /over 100%/],
    ['unknown unit', { memory: '8Qb' }, 'memory', 'unknownUnit', /unknown unit/],
    ['NaN bytes', { memory: Number.NaN }, 'memory', 'malformed', /not a size/],
    ['unknown priority', { priority: 'urgent' }, 'priority', 'unknownValue', /low, normal, high/],
    ['unknown isolation', { isolation: 'mps' }, 'isolation', 'unknownValue', /time-slice, sm-partition, mig, exclusive/],
    ['bad MIG profile', { migProfile: 'big' }, 'migProfile', 'malformed', /1g\.10gb/],
    ['MIG with compute', { migProfile: '1g.10gb', compute: 30 }, 'compute', 'conflict', /fixed compute/],
    ['profile without mig', { migProfile: '1g.10gb', isolation: 'time-slice' }, 'migProfile', 'conflict', /needs isolation mig/],
    ['sm-partition without compute', { isolation: 'sm-partition' }, 'compute', 'conflict', /required/],
    ['sm-partition with a fractional percent', { isolation: 'sm-partition', compute: '33.3' }, 'compute', 'conflict', /is 33\.3%; isolation sm-partition takes a whole percentage/],
    ['exclusive with a limit', { isolation: 'exclusive', memory: '8Gi' }, 'isolation', 'conflict', /whole GPUs/],
    ['include and exclude the same model', { models: { include: ['A100'], exclude: ['a100'] } }, 'models', 'conflict', /both included and excluded/],
    ['fewer UUIDs than GPUs', { gpus: 2, uuids: { include: ['GPU-1'] } }, 'uuids', 'conflict', /asks for 2 GPUs/],
    ['negative NUMA node', { numaNode: -1 }, 'numaNode', 'negative', /negative/],
    ['unknown compute accounting', { compute: 30, computeAccounting: 'power' }, 'computeAccounting', 'unknownValue', /throughput, gpu, time/],
    ['compute accounting without a limit', { computeAccounting: 'time' }, 'computeAccounting', 'conflict', /time-slice compute limit under 100%/],
    ['compute accounting on an SM partition', { isolation: 'sm-partition', compute: 50, computeAccounting: 'time' }, 'computeAccounting', 'conflict', /SM partition is a number of SMs/],
  ];
  it.each(rejected)('rejects %s', (_name, input, field, code, message) => {
    const r = parseSliceRequest(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toContainEqual({ field, code, message: expect.stringMatching(message) });
  });

  it('reports every problem at once', () => {
    const r = parseSliceRequest({ gpus: -1, memory: '8Xi', priority: 'x' });
    expect(r.ok ? [] : r.issues.map((i) => i.field)).toEqual(['gpus', 'memory', 'priority']);
  });
});

describe('checkRequestAgainstGpus', () => {
  const fleet = [gpu(0), gpu(1, { uuid: 'GPU-1', numaNode: 1 }), gpu(2, { model: 'A100-40GB', name: 'NVIDIA A100-SXM4-40GB', memoryTotalBytes: 40 * 2 ** 30 })];
  const req = (input: SliceRequestInput) => {
    const r = parseSliceRequest(input);
    if (!r.ok) throw new Error('bad fixture');
    return r.value;
  };

  it('accepts what fits', () => {
    expect(checkRequestAgainstGpus(req({ memory: '40Gi' }), fleet)).toEqual([]);
  });
  it('rejects memory over the largest GPU', () => {
    expect(checkRequestAgainstGpus(req({ memory: '100Gi' }), fleet)[0]?.message).toMatch(/100 GiB per GPU but the largest matching GPU \(H100-80GB\) has 79.6 GiB/);
  });
  it('measures against matching GPUs only', () => {
    expect(checkRequestAgainstGpus(req({ memory: '60Gi', models: { include: ['A100'] } }), fleet)[0]?.code).toBe('exceedsCapacity');
  });
  it('rejects more GPUs than match', () => {
    expect(checkRequestAgainstGpus(req({ gpus: 3, models: { include: ['H100'] } }), fleet)[0]?.message).toMatch(/only 2 here match/);
  });
  it('names the models present when no selector matches', () => {
    expect(checkRequestAgainstGpus(req({ models: { include: ['V100'] } }), fleet)[0]?.message).toMatch(/H100-80GB, A100-40GB/);
  });
  it('honours UUID, model and NUMA selectors', () => {
    expect(matchesSelectors(req({ uuids: { include: ['gpu-1'] } }), fleet[1]!)).toBe(true);
    expect(matchesSelectors(req({ uuids: { exclude: ['GPU-1'] } }), fleet[1]!)).toBe(false);
    expect(matchesSelectors(req({ models: { exclude: ['h100'] } }), fleet[0]!)).toBe(false);
    expect(matchesSelectors(req({ numaNode: 1 }), fleet[0]!)).toBe(false);
    expect(matchesSelectors(req({ numaNode: 1 }), fleet[1]!)).toBe(true);
  });
});

describe('modelName', () => {
  it.each([
    ['NVIDIA H100 80GB HBM3', 81559 * 2 ** 20, 'H100-80GB'],
    ['NVIDIA H200', 143771 * 2 ** 20, 'H200-141GB'],
    ['Tesla T4', 15360 * 2 ** 20, 'T4-16GB'],
    ['NVIDIA A100-SXM4-40GB', 40960 * 2 ** 20, 'A100-40GB'],
    ['NVIDIA A10', 23028 * 2 ** 20, 'A10-24GB'],
  ])('%s -> %s', (name, bytes, model) => {
    expect(modelName(name, bytes)).toBe(model);
  });
});
