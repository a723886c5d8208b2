import { describe, expect, it } from 'vitest';
import { TaskSchema } from '../../contract/schemas.js';
import type { WaitReason } from '../../contract/task.js';
import { shortWait } from './ps.js';

describe('shortWait (the WAITING column of gpushare ps)', () => {
  const cases: readonly [string, WaitReason, string][] = [
    ['the first refusing GPU and its filter, and how many more', { kind: 'noRoom', preemption: 'off', text: '', gpus: [{ gpu: 0, reason: 'insufficientGpuMemory', text: '' }, { gpu: 1, reason: 'insufficientCompute', text: '' }] }, 'GPU 0 memory +1'],
    ['one GPU', { kind: 'noRoom', preemption: 'noVictims', text: '', gpus: [{ gpu: 3, reason: 'heldExclusively', text: '' }] }, 'GPU 3 held exclusively'],
    ['a reason kind it has no word for, as is', { kind: 'noRoom', preemption: 'noVictims', text: '', gpus: [{ gpu: 1, reason: 'noFreeSmRun', text: '' }] }, 'GPU 1 noFreeSmRun'],
    ['no GPU named', { kind: 'noRoom', preemption: 'noVictims', text: '', gpus: [] }, 'no room'],
    ['which quota', { kind: 'quota', tenant: 't', resource: 'memoryBytes', requested: 1, remaining: 0, text: '' }, 'quota: memory'],
    ['the GPU quota', { kind: 'quota', tenant: 't', resource: 'gpus', requested: 1, remaining: 0, text: '' }, 'quota: GPUs'],
    ['the head it waits behind, by id prefix', { kind: 'behind', taskId: '3f2a1c9d8e7f', text: '' }, 'behind 3f2a1c'],
    ["another tenant's head, not named to a user token", { kind: 'behind', taskId: null, text: '' }, 'behind other'],
    ['a preemption under way for it', { kind: 'preempting', victims: [{ taskId: 'a', action: 'suspend' }, { taskId: 'b', action: 'kill' }], text: '' }, 'preempting 2'],
    ['SM partitions', { kind: 'smPartition', gpus: [], text: '' }, 'SMs'],
  ];
  it.each(cases)('%s', (_, reason, column) => {
    expect(shortWait(reason)).toBe(column);
  });
});

describe('TaskSchema.waiting (the wire record)', () => {
  const waiting = TaskSchema.shape.waiting;
  it('takes null and each kind of reason', () => {
    expect(waiting.parse(null)).toBeNull();
    expect(waiting.parse({ kind: 'behind', taskId: 'abc', text: 'x' })).toEqual({ kind: 'behind', taskId: 'abc', text: 'x' });
    expect(waiting.parse({ kind: 'noRoom', gpus: [{ gpu: 0, reason: 'insufficientCompute', text: 't' }], preemption: 'needsKill', text: 'x' })).toMatchObject({ kind: 'noRoom' });
  });
  it('refuses an unknown kind and a malformed reason', () => {
    expect(waiting.safeParse({ kind: 'sleepy', text: 'x' }).success).toBe(false);
    expect(waiting.safeParse({ kind: 'quota', tenant: 't', resource: 'disks', requested: 1, remaining: 0, text: '' }).success).toBe(false);
    expect(waiting.safeParse({ kind: 'noRoom', gpus: [], preemption: 'maybe', text: '' }).success).toBe(false);
  });
});
