import { describe, expect, it } from 'vitest';
import { parseSliceRequest } from '../domain/index.js';
import { libraryPriority, taskEnvironment } from './launcher.js';
import type { Task } from '../contract/task.js';

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
      GPUSHARE_COMPUTE_ACCOUNTING: 'throughput',
      GPUSHARE_PRIORITY: 'high',
      GPUSHARE_ISOLATION: 'time-slice',
      GPUSHARE_REGION: '/state/tasks/abc123/region',
    });
  });

  it("sets the request's compute accounting; the task's own accounting and saturated clock are dropped (a clock it named could lift its limit)", () => {
    const timeReq = parseSliceRequest({ compute: '30', computeAccounting: 'time' });
    if (!timeReq.ok) throw new Error('fixture');
    const own = { ...task, request: timeReq.value, env: { GPUSHARE_COMPUTE_ACCOUNTING: 'throughput', GPUSHARE_COMPUTE_CLOCK: '10000' } } as unknown as Task;
    const env = taskEnvironment({ PATH: '/bin' }, own, [{ index: 0, uuid: 'GPU-a', memoryBytes: 8 * 2 ** 30, computeMilli: 300 }], 30);
    expect(env['GPUSHARE_COMPUTE_ACCOUNTING']).toBe('time');
    expect(env['GPUSHARE_COMPUTE_CLOCK']).toBeUndefined();
    const gpuReq = parseSliceRequest({ compute: '30', computeAccounting: 'gpu' });
    if (!gpuReq.ok) throw new Error('fixture');
    const gpuEnv = taskEnvironment({ PATH: '/bin' }, { ...own, request: gpuReq.value } as unknown as Task, [{ index: 0, uuid: 'GPU-a', memoryBytes: 8 * 2 ** 30, computeMilli: 300 }], 30);
    expect(gpuEnv['GPUSHARE_COMPUTE_ACCOUNTING']).toBe('gpu');
  });

  it('never lets the task ask the wrapper for its sandbox (GPUSHARE_EXEC_*): only the daemon adds those, after', () => {
    // nor name grants of its own: gpushare-exec gives it the entries it took (native/exec/grant.h)
    const own = { ...task, env: { GPUSHARE_EXEC_UID: '0', GPUSHARE_EXEC_CGROUP: '/', GPUSHARE_EXEC_PRELOAD: '/x.so', GPUSHARE_EXEC_GRANT: '1000000,2,2', GPUSHARE_COMPUTE_GRANTS: 'GPU-a=0', KEEP: '1' } } as unknown as Task;
    const env = taskEnvironment({ PATH: '/bin' }, own, [], null);
    expect(Object.keys(env).filter((k) => k.startsWith('GPUSHARE_EXEC_') || k === 'GPUSHARE_COMPUTE_GRANTS')).toEqual([]);
    expect(env['KEEP']).toBe('1');
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

  it('gives an sm-partition task its SM offsets by device ordinal and the daemon\'s MPS pipe, over its own', () => {
    const smReq = parseSliceRequest({ memory: '8Gi', compute: '50', isolation: 'sm-partition' });
    if (!smReq.ok) throw new Error('fixture');
    const sm = { ...task, request: smReq.value, env: { GPUSHARE_SM_OFFSET: '0', CUDA_MPS_PIPE_DIRECTORY: '/tmp/theirs', CUDA_MPS_LOG_DIRECTORY: '/tmp/theirs-log' } } as Task;
    const gpus = [
      { index: 1, uuid: 'GPU-b', memoryBytes: 100, computeMilli: 500 },
      { index: 0, uuid: 'GPU-a', memoryBytes: 100, computeMilli: 500 },
    ];
    const env = taskEnvironment({}, sm, gpus, 50, { ranges: [{ uuid: 'GPU-a', offset: 0, count: 64 }, { uuid: 'GPU-b', offset: 64, count: 64 }], mpsPipeDir: '/state/mps/pipe' });
    expect(env).toMatchObject({ GPUSHARE_ISOLATION: 'sm-partition', GPUSHARE_COMPUTE_LIMIT: '50', GPUSHARE_SM_OFFSET: '0=64,1=0', CUDA_MPS_PIPE_DIRECTORY: '/state/mps/pipe' });
    expect(env['CUDA_MPS_LOG_DIRECTORY']).toBeUndefined();
    const one = taskEnvironment({}, sm, gpus.slice(0, 1), 50, { ranges: [{ uuid: 'GPU-b', offset: 64, count: 64 }], mpsPipeDir: null });
    expect(one['GPUSHARE_SM_OFFSET']).toBe('64');
    expect(one['CUDA_MPS_PIPE_DIRECTORY']).toBeUndefined(); // no MPS: not someone else's either
    expect(() => taskEnvironment({}, sm, gpus, 50, { ranges: [], mpsPipeDir: null })).toThrow(/no SM range/);
  });

  it('never passes a task\'s own GPUSHARE_SM_OFFSET through', () => {
    const env = taskEnvironment({ GPUSHARE_SM_OFFSET: '64' }, task, [{ index: 0, uuid: 'GPU-a', memoryBytes: 1, computeMilli: 0 }], null);
    expect(env['GPUSHARE_SM_OFFSET']).toBeUndefined();
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
