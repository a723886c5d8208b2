import { describe, expect, it } from 'vitest';
import { parseSliceRequest } from '../domain/index.js';
import { computeLimitPercent, rangesOnto } from './placement.js';
import type { TaskGpu } from '../contract/task.js';

const on = (...uuids: string[]): TaskGpu[] => uuids.map((uuid, index) => ({ index, uuid, memoryBytes: 1, computeMilli: 500 }));
function req(input: Parameters<typeof parseSliceRequest>[0]) {
  const r = parseSliceRequest(input);
  if (!r.ok) throw new Error('fixture');
  return { request: r.value };
}

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

describe('SM ranges', () => {
  it('keeps ranges with their GPUs when a task moves', () => {
    const moved = rangesOnto([{ uuid: 'GPU-a', offset: 64, count: 64 }], on('GPU-b'));
    expect(moved).toEqual([{ uuid: 'GPU-b', offset: 64, count: 64 }]);
  });
});
