import { describe, expect, it } from 'vitest';
import { parseSliceRequest } from '../domain/index.js';
import { libraryPriority, taskEnvironment } from './launcher.js';
import type { Task } from './task.js';

const request = parseSliceRequest({ memory: '8Gi', compute: '30' });
if (!request.ok) throw new Error('fixture');

const task = {
  id: 'abc123',
  env: { GPUSHARE_MEMORY_LIMIT: '80Gi', CUDA_DEVICE_MEMORY_LIMIT_0: '80g', GPUSHARE_OVERSUBSCRIBE: '1', GPUSHARE_LOG_LEVEL: 'debug', MINE: 'yes' },
  request: request.value,
  priority: 900,
  regionPath: '/state/tasks/abc123/region',
} as unknown as Task;

describe('taskEnvironment', () => {
  it('puts the slice in the form libgpushare reads, over anything the task set itself', () => {
    const env = taskEnvironment({ PATH: '/bin', GPUSHARE_COMPUTE_LIMIT: '100' }, task, [{ index: 0, uuid: 'GPU-a', memoryBytes: 8 * 2 ** 30, computeMilli: 300 }], 30);
    expect(env).toEqual({
      PATH: '/bin',
      MINE: 'yes',
      GPUSHARE_LOG_LEVEL: 'debug',
      GPUSHARE_TASK_ID: 'abc123',
      CUDA_VISIBLE_DEVICES: 'GPU-a',
      GPUSHARE_MEMORY_LIMIT: String(8 * 2 ** 30),
      GPUSHARE_COMPUTE_LIMIT: '30',
      GPUSHARE_PRIORITY: 'high',
      GPUSHARE_ISOLATION: 'time-slice',
      GPUSHARE_REGION: '/state/tasks/abc123/region',
    });
  });

  it('lists per-device limits when the GPUs differ, numbered as CUDA will see them', () => {
    const env = taskEnvironment({}, task, [
      { index: 3, uuid: 'GPU-b', memoryBytes: 100, computeMilli: 0 },
      { index: 1, uuid: 'GPU-a', memoryBytes: 200, computeMilli: 0 },
    ], null);
    expect(env['CUDA_VISIBLE_DEVICES']).toBe('GPU-b,GPU-a');
    expect(env['GPUSHARE_MEMORY_LIMIT']).toBe('0=100,1=200');
    expect(env['GPUSHARE_COMPUTE_LIMIT']).toBeUndefined();
  });

  it('hides every GPU from a CPU-only task', () => {
    const env = taskEnvironment({}, task, [], null);
    expect(env['CUDA_VISIBLE_DEVICES']).toBe('');
    expect(env['GPUSHARE_MEMORY_LIMIT']).toBeUndefined();
  });

  it.each([
    [0, 'low'],
    [300, 'low'],
    [500, 'normal'],
    [700, 'high'],
    [1000, 'high'],
  ])('priority %d is %s for the library', (p, name) => {
    expect(libraryPriority(p)).toBe(name);
  });
});
