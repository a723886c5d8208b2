import { describe, expect, it } from 'vitest';
import { parseSliceRequest, type Gpu } from '../domain/index.js';
import { computeLimitPercent, fitPartitions, heldSmRanges, rangesOnto, type Holder } from './placement.js';
import type { TaskGpu } from '../contract/task.js';

const gpu = (uuid: string, name = 'NVIDIA H100 80GB HBM3', cc = '9.0', sms: number | null = 132) => ({ uuid, name, computeCapability: cc, multiprocessorCount: sms }) as Gpu;
const devices = [gpu('GPU-a'), gpu('GPU-b'), gpu('GPU-old', 'NVIDIA A100-SXM4-80GB', '8.0', 108)];
const on = (...uuids: string[]): TaskGpu[] => uuids.map((uuid, index) => ({ index, uuid, memoryBytes: 1, computeMilli: 500 }));
function req(input: Parameters<typeof parseSliceRequest>[0]) {
  const r = parseSliceRequest(input);
  if (!r.ok) throw new Error('fixture');
  return { request: r.value };
}
const part = (id: string, uuid: string, offset: number, count: number): Holder => ({ id, isolation: 'sm-partition', gpus: on(uuid), smRanges: [{ uuid, offset, count }] });

describe('computeLimitPercent', () => {
  const limit = (input: Parameters<typeof parseSliceRequest>[0]): number | null => computeLimitPercent(req(input));
  it('gives libgpushare the whole percent it reads, never more than reserved and at least 1', () => {
    expect(limit({ compute: 30 })).toBe(30);
    expect(limit({ compute: '33.3' })).toBe(33);
    expect(limit({ compute: '99.9' })).toBe(99);
    expect(limit({ compute: '0.4' })).toBe(1);
    expect(limit({ compute: '57%' })).toBe(57);
    expect(limit({ memory: '8Gi' })).toBeNull();
  });
});

describe('fitPartitions', () => {
  const half = req({ isolation: 'sm-partition', compute: 50 });

  it('places a partition after those held, per GPU, in the order of its GPUs', () => {
    const holders = [part('x', 'GPU-a', 0, 64)];
    expect(fitPartitions(req({ isolation: 'sm-partition', compute: 50, gpus: 2 }), on('GPU-b', 'GPU-a'), devices, holders)).toEqual({
      ok: true,
      ranges: [
        { uuid: 'GPU-b', offset: 0, count: 64 },
        { uuid: 'GPU-a', offset: 64, count: 64 },
      ],
    });
  });

  it('names the GPU that cannot take it, and why', () => {
    expect(fitPartitions(half, on('GPU-a'), devices, [part('x', 'GPU-a', 32, 64)])).toEqual({ ok: false, uuid: 'GPU-a', why: 'GPU 0: no 64 SMs in a row are free (64 of the 128 SMs its driver can partition are free)' });
    expect(fitPartitions(half, on('GPU-old'), devices, [])).toMatchObject({ ok: false, uuid: 'GPU-old', why: expect.stringMatching(/compute capability 9\.0/) });
    const sliced: Holder = { id: 'ts', isolation: 'time-slice', gpus: on('GPU-a'), smRanges: null };
    expect(fitPartitions(half, on('GPU-a'), devices, [sliced])).toMatchObject({ ok: false, why: 'GPU 0 runs time-sliced task ts, and SM partitions do not share a GPU with time-sliced work' });
    expect(fitPartitions(req({ compute: 30 }), on('GPU-a'), devices, [part('p', 'GPU-a', 0, 64)])).toMatchObject({ ok: false, why: 'GPU 0 runs SM partitions (task p); time-sliced work would slow them' });
    expect(fitPartitions(req({ compute: 30 }), on('GPU-b'), devices, [part('p', 'GPU-a', 0, 64)])).toEqual({ ok: true, ranges: null });
  });

  it('keeps partitions within the SMs the driver groups (an H200: 120 of 132), and says so', () => {
    const h200 = new Map([['GPU-a', { min: 8, step: 8, groupable: 120 }]]);
    // 50% is 64 SMs: one half fits at 0, the other would need SMs 64-127, past the 120 grouped.
    expect(fitPartitions(half, on('GPU-a'), devices, [], null, h200)).toEqual({ ok: true, ranges: [{ uuid: 'GPU-a', offset: 0, count: 64 }] });
    expect(fitPartitions(half, on('GPU-a'), devices, [part('x', 'GPU-a', 0, 64)], null, h200)).toEqual({ ok: false, uuid: 'GPU-a', why: 'GPU 0: no 64 SMs in a row are free (56 of the 120 SMs its driver can partition are free)' });
    expect(fitPartitions(req({ compute: 40, isolation: 'sm-partition' }), on('GPU-a'), devices, [part('x', 'GPU-a', 0, 64)], null, h200)).toEqual({ ok: true, ranges: [{ uuid: 'GPU-a', offset: 64, count: 56 }] });
    expect(fitPartitions(req({ compute: 97, isolation: 'sm-partition' }), on('GPU-a'), devices, [], null, h200)).toEqual({ ok: false, uuid: 'GPU-a', why: 'GPU 0: 97% is 128 SMs, more than the 120 of 132 SMs its driver can group into partitions' });
    // A suspended partition resumes only where it fits in the groups.
    expect(fitPartitions(half, on('GPU-a'), devices, [], [{ uuid: 'GPU-a', offset: 64, count: 64 }], h200)).toMatchObject({ ok: false });
  });

  it('resumes a partition only onto its own offsets, on its GPU or another', () => {
    const fixed = [{ uuid: 'GPU-a', offset: 64, count: 64 }];
    expect(fitPartitions(half, on('GPU-b'), devices, [], fixed)).toEqual({ ok: true, ranges: [{ uuid: 'GPU-b', offset: 64, count: 64 }] });
    expect(fitPartitions(half, on('GPU-a'), devices, [part('y', 'GPU-a', 96, 32)], fixed)).toMatchObject({ ok: false, why: 'GPU 0: SMs 64-127, where its partition was, are taken' });
    // Free at 0 but not at 64: first fit would fit it, its own SMs do not.
    expect(fitPartitions(half, on('GPU-a'), devices, [part('z', 'GPU-a', 120, 8)], fixed)).toMatchObject({ ok: false });
  });

  it('keeps ranges with their GPUs when a task moves', () => {
    const moved = rangesOnto([{ uuid: 'GPU-a', offset: 64, count: 64 }], on('GPU-b'));
    expect(moved).toEqual([{ uuid: 'GPU-b', offset: 64, count: 64 }]);
    expect(heldSmRanges([part('p', 'GPU-a', 0, 32), part('q', 'GPU-a', 32, 32)]).get('GPU-a')).toEqual([
      { offset: 0, count: 32 },
      { offset: 32, count: 32 },
    ]);
  });
});
