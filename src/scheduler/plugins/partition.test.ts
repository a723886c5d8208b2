/**
 * SM partitions in the scheduler (partition.ts): where a partition goes, and the reason each
 * GPU gives when it cannot take one. (These were node/placement.ts's fitPartitions tests, before partitions became this filter.)
 */
import { describe, expect, it } from 'vitest';
import { schedule } from '../engine.js';
import { describeDecision, describeGpuReason } from '../explain.js';
import { policy } from '../policy.js';
import { createPrng } from '../prng.js';
import { buildSnapshot } from '../snapshot.js';
import { GIB, gpu, node, request } from '../testing/fixtures.js';
import type { Decision, GpuReason, Placement, PlacementRequest } from '../types.js';

const A100 = gpu(2, { uuid: 'GPU-old', model: 'A100-80GB', name: 'NVIDIA A100-SXM4-80GB', sm: { ok: false, cause: 'computeCapability', computeCapability: '8.0' } });
const H200_GROUPS = { ok: true, layout: { total: 132, min: 8, step: 8, groupable: 120 } } as const;
const nodes = (h200 = false) => [node('n', [gpu(0, { uuid: 'GPU-a', ...(h200 ? { sm: H200_GROUPS } : {}) }), gpu(1, { uuid: 'GPU-b' }), A100])];

/** A task holding `compute` of GPU `g`, as a partition on `range` or time-sliced (range null). */
function held(id: string, g: number, compute: number, range: { offset: number; count: number } | null): Placement {
  const share = { gpu: g, memoryBytes: 8 * GIB, computeMilli: compute * 10, mig: null, ...(range ? { smRange: range } : {}) };
  return { id, node: 'n', gpus: [share], cpuMilli: 0, memoryBytes: 0, priority: 0, tenant: null, exclusive: false, suspendable: false, gang: null };
}

const partition = (compute: number, gpus = 1, extra: Partial<PlacementRequest> = {}): PlacementRequest =>
  request({ gpus, isolation: 'sm-partition', compute: compute / 100, memory: { kind: 'fraction', fraction: 0.1 } }, extra);

function decide(req: PlacementRequest, placements: Placement[], h200 = false, uuids: string[] = []): Decision {
  const r = uuids.length > 0 ? { ...req, slice: { ...req.slice, uuids: { include: uuids, exclude: [] } } } : req;
  return schedule(buildSnapshot(nodes(h200), placements), r, { policy: policy('binpack'), rng: createPrng(1) });
}

/** The reason each selected GPU gave, by GPU index. */
function reasons(d: Decision): GpuReason[] {
  if (d.status !== 'unschedulable') throw new Error(`expected unschedulable, got ${d.status}`);
  const r = d.rejections[0]?.reason;
  return r?.kind === 'tooFewGpus' ? r.gpus.filter((g) => g.kind !== 'uuidNotSelected') : [];
}

describe('sm-partition in the scheduler', () => {
  it('places a partition after those held, per GPU, and carries its ranges', () => {
    const d = decide(partition(50, 2), [held('x', 0, 50, { offset: 0, count: 64 })]);
    expect(d.status).toBe('ok');
    if (d.status !== 'ok') return;
    expect(d.placement.gpus.map((g) => [g.gpu, g.smRange])).toEqual([
      [0, { offset: 64, count: 64 }],
      [1, { offset: 0, count: 64 }],
    ]);
  });

  it('says why each GPU cannot take it', () => {
    const d = decide(partition(50), [held('x', 0, 50, { offset: 32, count: 64 }), held('ts', 1, 10, null)]);
    expect(reasons(d)).toEqual([
      { kind: 'noFreeSmRun', gpu: 0, wantSms: 64, largestFreeRun: 32, freeSms: 64, groupableSms: 128 },
      { kind: 'isolationMix', gpu: 1, holding: 'time-slice' },
      { kind: 'notPartitionable', gpu: 2, name: 'NVIDIA A100-SXM4-80GB', cause: 'computeCapability', computeCapability: '8.0' },
    ]);
    expect(reasons(d).map(describeGpuReason)).toEqual([
      'GPU 0: no 64 SMs in a row are free (64 of the 128 SMs its driver can partition are free); the longest free run is 32',
      'GPU 1 runs time-sliced work, and SM partitions do not share a GPU with it',
      'GPU 2 cannot be SM-partitioned: sm-partition needs compute capability 9.0 (Hopper) or newer; NVIDIA A100-SXM4-80GB is 8.0',
    ]);
    expect(describeDecision(d)).toMatch(/n: 0 of the 1 GPU\(s\) asked can take it: GPU 0: no 64 SMs in a row/);
  });

  it('keeps time-sliced work off GPUs that hold partitions, and partitions off time-sliced GPUs', () => {
    const ts = request({ compute: 0.3, memory: { kind: 'fraction', fraction: 0.3 } });
    const d = decide(ts, [held('p', 0, 50, { offset: 0, count: 64 })], false, ['GPU-a']);
    expect(reasons(d)).toEqual([{ kind: 'isolationMix', gpu: 0, holding: 'sm-partition' }]);
    expect(describeGpuReason({ kind: 'isolationMix', gpu: 0, holding: 'sm-partition' })).toBe('GPU 0 runs SM partitions; time-sliced work would slow them');
    const e = decide(ts, [held('p', 0, 50, { offset: 0, count: 64 })]);
    expect(e.status).toBe('ok');
    if (e.status === 'ok') expect(e.placement.gpus.map((g) => [g.gpu === 0, g.smRange])).toEqual([[false, undefined]]);
    // An A100 takes time-sliced work as before.
    expect(decide(ts, [], false, ['GPU-old']).status).toBe('ok');
  });

  it('keeps partitions within the SMs the driver groups (an H200: 120 of 132), and says so', () => {
    const one = (r: PlacementRequest, ps: Placement[]) => decide(r, ps, true, ['GPU-a']);
    const first = one(partition(50), []);
    expect(first.status === 'ok' && first.placement.gpus[0]?.smRange).toEqual({ offset: 0, count: 64 });
    const x = held('x', 0, 50, { offset: 0, count: 64 });
    expect(reasons(one(partition(50), [x]))).toEqual([{ kind: 'noFreeSmRun', gpu: 0, wantSms: 64, largestFreeRun: 56, freeSms: 56, groupableSms: 120 }]);
    const forty = one(partition(40), [x]);
    expect(forty.status === 'ok' && forty.placement.gpus[0]?.smRange).toEqual({ offset: 64, count: 56 });
    const big = reasons(one(partition(97), []));
    expect(big).toEqual([{ kind: 'partitionTooLarge', gpu: 0, percent: 97, wantSms: 128, groupableSms: 120, totalSms: 132, largestPercent: 93 }]);
    expect(describeGpuReason(big[0] as GpuReason)).toBe("GPU 0: 97% is 128 SMs, but the driver groups only 120 of the GPU's 132 SMs into partitions: ask for at most 93%, or 100% for the whole GPU");
    // 100% is the whole GPU, no partition: every SM.
    const whole = one(partition(100), []);
    expect(whole.status === 'ok' && whole.placement.gpus[0]?.smRange).toEqual({ offset: 0, count: 132 });
    // A suspended partition resumes only where it fits in the groups.
    expect(reasons(one(partition(50, 1, { smRanges: [{ offset: 64, count: 64 }] }), []))).toEqual([{ kind: 'smRangeTaken', gpu: 0, offset: 64, count: 64 }]);
  });

  it('resumes a partition only onto its own offsets, on its GPU or another', () => {
    const fixed = { smRanges: [{ offset: 64, count: 64 }] };
    const moved = decide(partition(50, 1, fixed), [], false, ['GPU-b']);
    expect(moved.status === 'ok' && moved.placement.gpus[0]?.smRange).toEqual({ offset: 64, count: 64 });
    const taken = reasons(decide(partition(50, 1, fixed), [held('y', 0, 25, { offset: 96, count: 32 })], false, ['GPU-a']));
    expect(taken).toEqual([{ kind: 'smRangeTaken', gpu: 0, offset: 64, count: 64 }]);
    expect(describeGpuReason(taken[0] as GpuReason)).toBe('GPU 0: SMs 64-127, where its partition was, are taken');
    // Free at 0 but not at 64: first fit would fit it, its own SMs do not.
    expect(decide(partition(50, 1, fixed), [held('z', 0, 5, { offset: 120, count: 8 })], false, ['GPU-a']).status).toBe('unschedulable');
  });

  it('says when a GPU cannot be partitioned for want of an SM count', () => {
    const r: GpuReason = { kind: 'notPartitionable', gpu: 3, name: 'NVIDIA Hxyz', cause: 'smCountUnknown' };
    expect(describeGpuReason(r)).toBe("GPU 3 cannot be SM-partitioned: the number of SMs of NVIDIA Hxyz is unknown (the driver does not report it and it is not in gpushare's table)");
  });
});
